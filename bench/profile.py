"""Sampling the chat server's hot path with py-spy while a scenario runs.

`py-spy` is an optional tool (`pip install py-spy`); without it, or without permission to attach,
profiling is skipped and the report says so. The summary lists the functions that hold the most
samples (own time) and the most inclusive samples (time below them), from py-spy's raw
(collapsed-stack) output.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any


class Sampler:
    """`py-spy record` attached to one pid until `stop()`."""

    def __init__(self, pid: int, output: Path, rate: int = 200) -> None:
        self.output = output
        self.process: subprocess.Popen | None = None
        self.error = ""
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(exe).exists():
            self.error = "py-spy is not installed"
            return
        output.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--output",
                str(output),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> dict[str, Any]:
        """Stop sampling (SIGINT makes py-spy write its file) and summarise it."""
        if self.process is None:
            return {"error": self.error}
        self.process.send_signal(signal.SIGINT)
        try:
            _out, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _out, err = self.process.communicate()
        if not self.output.exists():
            return {"error": f"py-spy wrote nothing: {err.decode(errors='replace')[-300:]}"}
        return summarise(self.output)


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/module.py:123)"; keep function + file.
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def summarise(path: Path, top: int = 15) -> dict[str, Any]:
    """Own and inclusive sample shares of the busiest functions in a collapsed-stack file."""
    own: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    if not total:
        return {"error": "no samples"}

    def share(counter: Counter) -> list[list[Any]]:
        return [[name, round(100 * n / total, 1)] for name, n in counter.most_common(top)]

    # The reactor's spine (run, doPoll, ...) is under nearly every sample and says nothing.
    below_spine = Counter({name: n for name, n in inclusive.items() if n < 0.8 * total})
    return {"samples": total, "own_pct": share(own), "inclusive_pct": share(below_spine)}


def merged_summary(paths: list[Path], directory: Path, label: str) -> dict[str, Any]:
    """Several processes' collapsed stacks in one file (`profile-<label>.txt`), summarised."""
    merged = directory / f"profile-{label}.txt"
    merged.write_text("".join(p.read_text() for p in paths if p.exists()))
    return summarise(merged)
