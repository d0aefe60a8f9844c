"""The HTTP edge: `create_app(settings)`, error middleware, thin handlers."""
