"""tokenserver: a token service for OCI/Docker registries with Harbor-style robot accounts."""

__version__ = "0.1.0"
