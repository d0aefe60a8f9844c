"""Request input read without trusting it: JSON bodies and forms decoded and checked for
what no database can hold (their fields are checked by their declarations, domain/bodies.py),
query parameters parsed, every problem a 400 that says what is wrong.

Whatever a body holds, what comes out of here can be stored: no string holds a lone
surrogate (JSON's `"\ud800"` decodes to one, and no database can encode it) and no integer
is past 64 bits (the databases' integers)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from tokenserver.domain.text import truncate
from tokenserver.errors import BadRequest

T = TypeVar("T")

MAX_BODY_BYTES = 64 * 1024
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
MIN_INT64, MAX_INT64 = -(2**63), 2**63 - 1


def check_text(text: str, where: str) -> str:
    """`text` if it is valid Unicode; BadRequest for a lone surrogate."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(f"{where} is not valid Unicode (a lone surrogate)") from None
    return text


def _check_values(data: Any) -> None:
    """Raise BadRequest for a string (value or key) holding a lone surrogate or an integer
    past 64 bits anywhere in the decoded JSON `data`, naming where it is."""
    pending: list[tuple[Any, str]] = [(data, "the body")]
    while pending:  # NOTE: a loop, not recursion: nesting is as deep as the body allows
        value, where = pending.pop()
        if isinstance(value, str):
            check_text(value, where)
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int):
            if not MIN_INT64 <= value <= MAX_INT64:
                raise BadRequest(f"{where}: integers must fit in 64 bits")
        elif isinstance(value, dict):
            for key, item in value.items():
                check_text(key, f"a field name in {where}")
                pending.append((item, key if where == "the body" else f"{where}.{key}"))
        elif isinstance(value, list):
            pending.extend((item, f"{where}[{i}]") for i, item in enumerate(value))


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, every string valid Unicode and every integer
    within 64 bits. Raises BadRequest (413 comes from aiohttp)."""
    raw = await request.read()
    try:
        data = json.loads(raw, parse_constant=_not_a_number)
    except RecursionError:
        raise BadRequest("the body is not valid JSON: nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise BadRequest(f"the body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    _check_values(data)
    return data


async def form_fields(request: web.Request) -> MultiDictProxy[str]:
    """An application/x-www-form-urlencoded body, in UTF-8: every field text, valid
    Unicode. Raises BadRequest (another charset, bytes that are not UTF-8, a file)."""
    # NOTE: aiohttp decodes the form with the charset the caller names: an unknown one
    # raised LookupError, and unicode_escape turned `\ud800` into a lone surrogate.
    if request.charset is not None and request.charset.lower() not in ("utf-8", "utf8"):
        raise BadRequest("the form must be UTF-8")
    try:
        form = await request.post()
    except UnicodeDecodeError:
        raise BadRequest("the form is not valid UTF-8") from None
    fields: MultiDict[str] = MultiDict()
    for name, value in form.items():
        if not isinstance(value, str):
            raise BadRequest(f"form field {name!r} must be text")
        fields.add(check_text(name, "a form field name"), check_text(value, f"form field {name!r}"))
    return MultiDictProxy(fields)


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
    if not (text.isascii() and text.isdigit()):
        raise BadRequest(f"{name} must be a positive integer")
    # NOTE: the databases' ids are 64-bit integers: the largest is an id no row has (404);
    # past it, no row can have it. Leading zeros are cut before int() counts the digits.
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(MAX_INT64)) or int(digits) > MAX_INT64:
        raise BadRequest(f"{name} {truncate(text, 40)} is larger than any id ({MAX_INT64})")
    return int(digits)


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
