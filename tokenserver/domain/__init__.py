"""Pure domain code: names, scopes, permissions, secrets and models. No I/O, no async."""
