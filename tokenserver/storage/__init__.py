"""Adapters implementing `tokenserver.services.ports`."""
