"""Registries a pull secret must not name (outside review of the Kubernetes pull secrets):
`robot create/refresh-secret --k8s-secret NAME --registry HOST` refuses a HOST docker would
refuse, before the secret changes (README: "A NAME, NS or HOST Kubernetes or docker would
refuse ... is exit 2 naming the flag, before anything changes")."""

from __future__ import annotations

import pytest

from tokenserver.domain.pull_secrets import registry_error


@pytest.mark.parametrize(
    "registry",
    [
        "-",  # no host at all: a dash
        ".",
        "..",
        "-registry.example.com",  # a label starting with '-'
        "registry.example.com:99999",  # no such port
        "registry.example.com:0",
        "registry.example.com:",
        "https://registry.example.com/a/../../b",  # dot segments climb out of the path
    ],
)
def test_a_registry_docker_would_refuse_is_refused(registry: str) -> None:
    assert registry_error(registry) is not None


@pytest.mark.parametrize(
    "registry",
    [
        "registry.example.com",
        "registry.example.com:5000",
        "127.0.0.1:18742",
        "[::1]:5000",
        "https://index.docker.io/v1/",
        "localhost",
    ],
)
def test_a_registry_docker_takes_is_taken(registry: str) -> None:
    assert registry_error(registry) is None
