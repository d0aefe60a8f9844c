"""Kubernetes image pull secrets (`kubernetes.io/dockerconfigjson`) for a robot.

The manifest holds what `kubectl create secret docker-registry NAME --docker-server=REGISTRY
--docker-username=ROBOT --docker-password=SECRET [--namespace NS] --dry-run=client -o json`
makes, byte for byte in `.data`, without a shell in between: a robot's name holds `$`, which
a shell expands in an unquoted or double-quoted argument (goharbor/harbor #13116).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from tokenserver.errors import BadRequest

# Kubernetes names: a Secret's name is a DNS subdomain (RFC 1123), a namespace a DNS label.
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
MAX_SUBDOMAIN = 253
MAX_LABEL = 63
# A registry as docker's config names it: host[:port], optionally with a scheme and a path
# (`https://index.docker.io/v1/`). No space, quote or control character.
_REGISTRY = re.compile(
    r"(https?://)?([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[A-Za-z0-9._\-/]*)?"
)
MAX_REGISTRY = 255

# Go's encoding/json escapes these even in a string that needs no escaping (HTML safety, and
# the two JavaScript line terminators); Python's json leaves them as they are.
_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def secret_name_error(name: str) -> str | None:
    """Why `name` cannot name a Kubernetes Secret (a DNS subdomain); None if it can."""
    if len(name) > MAX_SUBDOMAIN or not _SUBDOMAIN.fullmatch(name):
        return (
            f"{name!r} is not a Kubernetes object name: lower-case letters, digits, '-' and "
            f"'.', starting and ending with a letter or digit, at most {MAX_SUBDOMAIN} "
            "characters"
        )
    return None


def namespace_error(namespace: str) -> str | None:
    """Why `namespace` cannot be a Kubernetes namespace (a DNS label); None if it can."""
    if len(namespace) > MAX_LABEL or not _LABEL.fullmatch(namespace):
        return (
            f"{namespace!r} is not a Kubernetes namespace: lower-case letters, digits and "
            f"'-', starting and ending with a letter or digit, at most {MAX_LABEL} characters"
        )
    return None


def registry_error(registry: str) -> str | None:
    """Why `registry` cannot be a registry's name in a docker config; None if it can."""
    if len(registry) > MAX_REGISTRY or not _REGISTRY.fullmatch(registry):
        return (
            f"{registry!r} is not a registry: host[:port] (letters, digits, '.', '-'; an IPv6 "
            "address in brackets), optionally with http:// or https:// and a path"
        )
    return None


def _go_json(value: Any) -> str:
    """`value` as Go's json.Marshal writes it: compact, UTF-8, with Go's extra escapes."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: _GO_ESCAPES[m.group()], text)


def dockerconfigjson(registry: str, username: str, password: str) -> bytes:
    """The `.dockerconfigjson` kubectl writes: one registry, its username, password and
    `auth` (base64 of `username:password`), no email."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    config = {"auths": {registry: {"username": username, "password": password, "auth": auth}}}
    return _go_json(config).encode()


def pull_secret(
    name: str, registry: str, username: str, password: str, namespace: str | None = None
) -> dict[str, Any]:
    """The Secret manifest (apply it with `kubectl apply -f`). Raises BadRequest, naming
    what is wrong, for a name, namespace or registry Kubernetes or docker would refuse."""
    for error in (
        secret_name_error(name),
        None if namespace is None else namespace_error(namespace),
        registry_error(registry),
    ):
        if error is not None:
            raise BadRequest(error)
    metadata: dict[str, str] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    data = base64.b64encode(dockerconfigjson(registry, username, password)).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": data},
    }
