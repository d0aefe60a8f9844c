"""The benchmark keeps working: every case runs and every request it sends succeeds. Its
speed is read from its table, never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_runs_every_case_without_errors(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    result = subprocess.run(
        # One turn of each row: this checks that every case runs, not the numbers.
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--seconds", "1", "--turns", "1",
         "--robots", "300", "--projects", "3", "--large-requests", "2000",
         "--output", str(output)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(output.read_text())
    cases = [row["case"] for row in report["rows"]]
    assert cases[0] == "ceiling (minimal aiohttp, same body size), uvloop, median of samples"
    assert {
        "warm robot ES256",
        "warm robot ES256, default logging (info)",
        "warm robot ES256, asyncio",
        "ceiling (minimal aiohttp, same body size), asyncio, median of samples",
        "warm robot ES256, 10 repository patterns",
        "warm robot RS256",
        "POST refresh_token",
        "warm robot ES256, PostgreSQL, 1 replica",
        "warm robot ES256, PostgreSQL, 2 replicas (unpinned)",
    } <= set(cases)
    for row in report["rows"]:
        assert row["rps"] > 0, row
        assert row["errors"] == 0, row
    assert report["rows"][0]["ratio"] == 1.0
    assert "300 robots in 3 projects" in cases[-1]
    [large] = [row for row in report["rows"] if "2,000 unique large requests" in row["case"]]
    assert large["rss_before_mb"] > 0 and large["rss_mb"] > 0
    assert 0 < report["rows"][-1]["rss_mb"] < 250
    assert report["growth_ratio"] > 0
