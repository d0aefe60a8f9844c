from __future__ import annotations

from tokenserver.domain.memo import Memo
from tokenserver.domain.scopes import Scope, scopes_bytes


def test_a_memo_keeps_the_newest_within_its_entries_and_bytes() -> None:
    memo: Memo[str, int] = Memo(max_entries=3, max_bytes=100, max_entry_bytes=60)
    for i in range(5):
        assert memo.put(f"k{i}", i, 10)
    assert list(memo) == ["k2", "k3", "k4"] and memo.bytes == 30
    assert memo.get("k4") == 4 and memo.get("k0") is None
    assert memo.put("big", 9, 60)  # one entry too many: the oldest goes
    assert list(memo) == ["k3", "k4", "big"] and memo.bytes == 80
    assert memo.put("k4", 44, 40)  # replaced, counted once, the newest; 110 bytes: k3 goes
    assert list(memo) == ["big", "k4"] and memo.bytes == 100 and memo.get("k4") == 44
    assert memo.bytes <= memo.max_bytes


def test_an_entry_over_the_limit_is_not_kept_and_pushes_nothing_out() -> None:
    memo: Memo[str, int] = Memo(max_entries=3, max_bytes=100, max_entry_bytes=60)
    memo.put("a", 1, 10)
    assert not memo.put("huge", 2, 61)
    assert list(memo) == ["a"] and memo.bytes == 10 and "huge" not in memo
    memo.clear()
    assert len(memo) == 0 and memo.bytes == 0


def test_scopes_bytes_grows_with_names_and_count() -> None:
    one = scopes_bytes([Scope("repository", "p/a", ("pull",))])
    assert one > len("repositoryp/apull")
    long = scopes_bytes([Scope("repository", "p/" + "a" * 500, ("pull",))])
    assert long - one == 499
    assert scopes_bytes([Scope("repository", "p/a", ("pull",))] * 10) == 10 * one
