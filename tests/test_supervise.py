"""scripts/supervise.py with small real processes: back-off, giving up, dying with its parent.

The whole `make run` (gunicorn and twistd under the supervisor) is tested in
tests/integration/test_make_run.py; these cover what that test cannot wait for.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.live import ROOT, free_port, wait_until

spec = importlib.util.spec_from_file_location("supervise", ROOT / "scripts" / "supervise.py")
supervise = importlib.util.module_from_spec(spec)
sys.modules["supervise"] = supervise  # dataclasses look their module up there
spec.loader.exec_module(supervise)


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_process_that_never_answers_is_retried_with_backoff_then_given_up(caplog):
    """Each exit is logged with its status and the next back-off (doubling); the fifth exit in
    a row without answering stops the run with status 1."""
    nowhere = f"http://127.0.0.1:{free_port()}/"
    child = supervise.Child("broken", [sys.executable, "-c", "raise SystemExit(3)"], nowhere)
    supervisor = supervise.Supervisor([child], dict(os.environ), "banner\n", first_backoff=0.01)
    with caplog.at_level(logging.INFO, logger="run"):
        assert supervisor.run() == 1
    text = caplog.text
    assert text.count("exited (status 3)") == supervise.GIVE_UP_AFTER
    assert re.findall(r"broken: restarting in ([\d.]+) s", text) == ["0.01", "0.02", "0.04", "0.08"]
    assert "broken exited 5 times in a row without answering: giving up" in text
    assert child.starts == supervise.GIVE_UP_AFTER


PARENT = textwrap.dedent(
    """
    import importlib.util, os, sys
    spec = importlib.util.spec_from_file_location("supervise", sys.argv[1])
    supervise = importlib.util.module_from_spec(spec)
    sys.modules["supervise"] = supervise
    spec.loader.exec_module(supervise)
    import logging
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    child = supervise.Child(
        "sleeper", [sys.executable, "-c", "import time; time.sleep(600)"], sys.argv[2]
    )
    supervise.Supervisor([child], dict(os.environ), "").run()
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_die_with_a_killed_supervisor(tmp_path: Path):
    """SIGKILL to the supervisor (no chance to stop anything) still ends its children."""
    log_path = tmp_path / "supervisor.log"
    with open(log_path, "wb") as log:
        parent = subprocess.Popen(
            [
                sys.executable,
                "-c",
                PARENT,
                str(ROOT / "scripts" / "supervise.py"),
                f"http://127.0.0.1:{free_port()}/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    child_pid = None
    try:
        found = wait_until(
            lambda: re.search(r"sleeper started \(pid (\d+)\)", log_path.read_text()), timeout=30
        )
        child_pid = int(found.group(1))
        assert alive(child_pid)
        parent.kill()
        parent.wait(10)
        wait_until(lambda: not alive(child_pid), timeout=30)
    finally:
        parent.kill()
        parent.wait(10)
        if child_pid and alive(child_pid):
            os.kill(child_pid, signal.SIGKILL)
