"""An outside review of the federation rule guards (tokenserver/domain/federation_rules.py)."""

from __future__ import annotations

import pytest

from tokenserver.domain.federation import Condition
from tokenserver.domain.federation_rules import GITHUB_ISSUER, rule_warning


@pytest.mark.parametrize(
    "conditions",
    [
        (Condition("repository_owner_id", ("[0-9]*",)),),
        (Condition("repository_owner_id", ("1*",)),),
        (Condition("repository_id", ("*0", "*1", "*2", "*3", "*4", "*5", "*6", "*7", "*8", "*9")),),
        (Condition("repository", ("acme/app",)), Condition("repository_owner_id", ("[!x]*",))),
    ],
)
def test_attack_a_glob_on_an_immutable_id_does_not_silence_the_warning(
    conditions: tuple[Condition, ...],
) -> None:
    """The warning exists because a rule that pins no repository_owner_id/repository_id admits
    whoever holds the name later (or, pinning only `ref`, every repository on github.com). A
    glob on the id pins no id: `repository_owner_id=[0-9]*` admits every owner in the world,
    yet counts today as pinned, so the rule is taken without a word (`repository_owner_id=*`
    alone is a 400). An id is pinned only by exact patterns."""
    assert rule_warning(GITHUB_ISSUER, conditions) is not None
