"""Repository patterns: which repositories of a project a permission entry's repository
actions reach.

A pattern is relative to the project and made of path segments joined by `/`: a segment is
a repository name component (`app`, `team-a`), `*` (exactly one component) or, last only,
`**` (one or more components). `app` matches `<project>/app` only, `team-a/*` matches
`team-a/app` but neither `team-a` nor `team-a/x/app`, `team-a/**` matches every repository
under `team-a` (not `team-a` itself), and `**` alone matches every repository: what an entry
without patterns means, Harbor's meaning.

Patterns are compiled once per distinct list into one regular expression, so that matching
a repository costs one `fullmatch`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tokenserver.errors import BadRequest

EVERY_REPOSITORY = "**"
ONE_SEGMENT = "*"
MAX_PATTERNS = 64
MAX_PATTERN_LENGTH = 255

# distribution's path component, lower case (domain/names.py's, without a host part).
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_SHOWN = 80


def _shown(pattern: str) -> str:
    return repr(pattern if len(pattern) <= _SHOWN else pattern[:_SHOWN] + "...")


def pattern_error(pattern: str) -> str | None:
    """Why `pattern` is not a repository pattern (a sentence that names it), None if it is
    one."""
    shown = _shown(pattern)
    if not pattern:
        return "a repository pattern must not be empty"
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"repository pattern {shown} is longer than {MAX_PATTERN_LENGTH} characters"
    segments = pattern.split("/")
    for i, segment in enumerate(segments):
        if not segment:
            return (
                f"repository pattern {shown} has an empty path segment (a leading, trailing "
                "or doubled '/'); patterns are relative to the project"
            )
        if segment in (".", ".."):
            return f"repository pattern {shown} holds {segment!r}: name the repositories"
        if segment == EVERY_REPOSITORY:
            if i != len(segments) - 1:
                return f"repository pattern {shown}: '**' may only be the last segment"
            continue
        if segment == ONE_SEGMENT:
            continue
        if segment.lower() != segment:
            return f"repository pattern {shown} holds upper case: repository names are lower case"
        if not _COMPONENT.fullmatch(segment):
            return (
                f"repository pattern {shown}: segment {_shown(segment)} is neither a "
                "repository name component (lower-case letters and digits, separated by "
                "'.', '_', '__' or dashes) nor '*' nor a final '**'"
            )
    return None


def check_patterns(patterns: Iterable[str]) -> tuple[str, ...]:
    """Validate an entry's `repositories` list and return it normalised: without repeats,
    and empty when it covers every repository (it holds `**`). BadRequest names the bad
    pattern."""
    given = list(patterns)
    if not given:
        raise BadRequest(
            "bad request permission: 'repositories' must not be empty; leave it out for every "
            "repository"
        )
    if len(given) > MAX_PATTERNS:
        raise BadRequest(
            f"bad request permission: at most {MAX_PATTERNS} repository patterns per entry "
            f"(got {len(given)})"
        )
    kept: list[str] = []
    for pattern in given:
        error = pattern_error(pattern)
        if error is not None:
            raise BadRequest(f"bad request permission: {error}")
        if pattern not in kept:
            kept.append(pattern)
    if EVERY_REPOSITORY in kept:
        return ()
    return tuple(kept)


@dataclass(frozen=True, slots=True)
class Shape:
    """A parsed pattern: its segments before a final `**` (each a component or `*`) and
    whether one or more segments may follow (`tail`)."""

    segments: tuple[str, ...]
    tail: bool

    @classmethod
    def of(cls, pattern: str) -> Shape:
        parts = tuple(pattern.split("/"))
        if parts[-1] == EVERY_REPOSITORY:
            return cls(parts[:-1], True)
        return cls(parts, False)

    def __str__(self) -> str:
        return "/".join(self.segments + ((EVERY_REPOSITORY,) if self.tail else ()))

    def within(self, other: Shape) -> bool:
        """Every repository this matches, `other` matches too."""
        if other.tail:
            # other: len(other) fixed segments, then one or more.
            if self.tail:
                if len(self.segments) < len(other.segments):
                    return False
            elif len(self.segments) <= len(other.segments):
                return False
        elif self.tail or len(self.segments) != len(other.segments):
            return False
        return all(
            o in (ONE_SEGMENT, s) for s, o in zip(self.segments, other.segments, strict=False)
        )

    def meet(self, other: Shape) -> Shape | None:
        """The pattern matching what both match; None when they have nothing in common."""
        short, long = sorted((self, other), key=lambda s: len(s.segments))
        if len(short.segments) < len(long.segments) and not short.tail:
            return None
        if len(short.segments) == len(long.segments) and short.tail != long.tail:
            return None
        segments = []
        for a, b in zip(short.segments, long.segments, strict=False):
            if a == ONE_SEGMENT:
                segments.append(b)
            elif b == ONE_SEGMENT or a == b:
                segments.append(a)
            else:
                return None
        segments += long.segments[len(short.segments) :]
        return Shape(tuple(segments), short.tail and long.tail)


EVERYTHING = Shape((), True)


def shapes(patterns: Sequence[str]) -> tuple[Shape, ...]:
    """The shapes of an entry's patterns; () (every repository) is `**`'s."""
    return tuple(Shape.of(p) for p in patterns) if patterns else (EVERYTHING,)


def _regex(pattern: str) -> str:
    shape = Shape.of(pattern)
    parts = ["[^/]+" if s == ONE_SEGMENT else re.escape(s) for s in shape.segments]
    body = "/".join(parts)
    if not shape.tail:
        return body
    return f"{body}(?:/[^/]+)+" if body else "[^/]+(?:/[^/]+)*"


@functools.lru_cache(maxsize=4096)
def compile_patterns(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One regular expression matching a repository (relative to its project) that any of
    `patterns` matches. Remembered per distinct list: robots sharing a list, and every
    request of a robot, compile it once."""
    return re.compile("|".join(f"(?:{_regex(p)})" for p in patterns))


def relative_name(repository: str) -> str:
    """A repository's name relative to its project (`demo/team-a/app` -> `team-a/app`)."""
    return repository.partition("/")[2]
