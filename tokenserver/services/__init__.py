"""Async use cases over the storage ports: projects, robots, authentication, tokens."""
