"""The event loop `tokenserver serve` runs on (`server.event_loop`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from tokenserver.errors import ConfigError


@dataclass(frozen=True, slots=True)
class EventLoop:
    name: str  # "uvloop" or "asyncio", as the start-up line says it
    new: Callable[[], asyncio.AbstractEventLoop]


def event_loop(choice: str) -> EventLoop:
    """The loop `choice` asks for: "uvloop", "asyncio", or "auto" (uvloop where it can be
    imported, else asyncio). Raises ConfigError naming server.event_loop when "uvloop" is
    asked for and cannot be imported."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError as e:
            if choice == "uvloop":
                raise ConfigError(
                    "server.event_loop",
                    f"uvloop cannot be imported ({e}): install it (pip install uvloop; it is "
                    'a dependency of tokenserver on Linux and macOS), or set "auto" or "asyncio"',
                ) from None
        else:
            return EventLoop("uvloop", uvloop.new_event_loop)
    return EventLoop("asyncio", asyncio.new_event_loop)
