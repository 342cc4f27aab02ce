"""The `django-cost` scenario runs an older revision's Django beside this checkout's.

The baseline's code only runs on its own schema: the quick scenario (`python -m bench --quick
--scenarios django-cost,longpoll`, a child process: the benchmark raises RLIMIT_NOFILE and installs
signal handlers) against the default baseline, which predates this checkout's newest migration,
must measure both revisions without an error, and leave this checkout's Django on its own database
for the next scenario (longpoll makes a room and a guest session). Nothing here times anything:
the benchmark itself is never a test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.__main__ import DJANGO_BASELINE
from bench.targets import ROOT


def migrations(revision: str | None) -> set[str]:
    """The names of chat/migrations/*.py at `revision` (git), or in the working tree with None."""
    if revision is None:
        return {path.name for path in (ROOT / "chat" / "migrations").glob("0*.py")}
    listing = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "--name-only", revision, "chat/migrations/"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return {Path(line).name for line in listing.splitlines() if Path(line).name.startswith("0")}


def test_quick_django_cost_measures_a_baseline_older_than_the_schema(tmp_path: Path) -> None:
    """The baseline lacks migrations this checkout has (so it cannot share its database); both
    revisions still store every message, each on a database of its own schema, and the scenario
    after it runs on this checkout's database again."""
    assert migrations(None) - migrations(DJANGO_BASELINE), "the baseline has every migration"
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--scenarios",
            "django-cost,longpoll",
            "--json",
            str(out),
            "--plot",
            str(tmp_path / "bench.png"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    result = results["django-cost"]
    assert "error" not in result, result
    assert result["baseline_revision"] == DJANGO_BASELINE
    for label in ("current", "baseline"):
        for row in result[label]:
            assert row["stored"] > 0, (label, row)
            assert (row["lost"], row["duplicated"], row["out_of_order"]) == (0, 0, 0), (label, row)
        for row in result[f"{label}_direct"]:
            assert row["stored"] == row["expected"], (label, row)
            assert not row["failures"], (label, row)
    longpoll = results["longpoll"]
    assert "error" not in longpoll, longpoll
    assert longpoll["chatserver"]["reached"] == longpoll["chatserver"]["held"], longpoll
