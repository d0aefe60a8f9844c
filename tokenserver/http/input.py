"""Request input read without trusting it: JSON bodies checked field by field, query
parameters parsed, every problem a 400 that says what is wrong."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from aiohttp import web

from tokenserver.errors import BadRequest

T = TypeVar("T")

MAX_BODY_BYTES = 64 * 1024
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100

_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    str: "a string",
    dict: "an object",
    list: "an array",
}


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object. Raises BadRequest (413 comes from aiohttp)."""
    raw = await request.read()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as e:
        raise BadRequest(f"the body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def fields(
    data: Mapping[str, Any],
    where: str,
    types: Mapping[str, type],
    *,
    required: Iterable[str] = (),
    ignored: Iterable[str] = (),
) -> dict[str, Any]:
    """Check `data` against `types`; return the known fields present. Unknown fields are
    refused, except `ignored` ones (read-only or not implemented fields real clients send)."""
    skip = set(ignored)
    for key in data:
        if key not in types and key not in skip:
            raise BadRequest(f"{where}: unknown field {key!r}")
    for key in required:
        if data.get(key) is None:
            raise BadRequest(f"{where}: missing field {key!r}")
    result: dict[str, Any] = {}
    for key, kind in types.items():
        value = data.get(key)
        if value is None:
            continue
        # NOTE: bool is a subclass of int in Python; JSON true is not an integer.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BadRequest(f"{where}: {key!r} must be {_TYPE_NAMES[kind]}")
        result[key] = value
    return result


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be an integer") from None
    if not low <= value <= high:
        raise BadRequest(f"query parameter {name!r} must be between {low} and {high}")
    return value


def path_id(request: web.Request, name: str) -> int:
    text = request.match_info[name]
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise BadRequest(f"{name} must be a positive integer")
    return int(text)


def page_of(request: web.Request, items: list[T]) -> tuple[list[T], dict[str, str]]:
    """Harbor's paging: `page` (from 1) and `page_size` (default 10, at most 100); headers
    `X-Total-Count` and `Link` (rel prev/next)."""
    page = int_param(request, "page", 1, 1, 1_000_000)
    size = int_param(request, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    return items[(page - 1) * size : page * size], paging_headers(request, page, size, len(items))


def paging_headers(request: web.Request, page: int, size: int, total: int) -> dict[str, str]:
    links = []
    if page > 1:
        links.append(f'<{_with_page(request, page - 1)}>; rel="prev"')
    if page * size < total:
        links.append(f'<{_with_page(request, page + 1)}>; rel="next"')
    headers = {"X-Total-Count": str(total)}
    if links:
        headers["Link"] = " , ".join(links)
    return headers


def _with_page(request: web.Request, page: int) -> str:
    return str(request.rel_url.update_query(page=page))
