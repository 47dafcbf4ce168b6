"""Supervisor semantics with plain Python children: stop order, unexpected exits, idempotence."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from interop.supervisor import Child, ProcessChild, Supervisor

# Runs until SIGTERM (the default action ends it); writes a marker on the way out when asked.
SLEEPER = "import signal, sys; signal.pause()"
RECORDER = (
    "import pathlib, signal, sys\n"
    "def bye(*_):\n"
    "    open(sys.argv[1], 'a').write(sys.argv[2] + '\\n'); sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, bye)\n"
    "pathlib.Path(sys.argv[1] + '.' + sys.argv[2]).touch()\n"
    "signal.pause()\n"
)


def _wait_for(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout} s"
        time.sleep(0.01)


def test_an_unexpected_exit_stops_the_others_and_is_reported() -> None:
    with Supervisor() as sup:
        sleeper = sup.spawn("sleeper", [sys.executable, "-c", SLEEPER])
        sup.spawn("crasher", [sys.executable, "-c", "import sys; sys.exit(3)"])
        code = sup.run()
    assert code == 3
    assert sleeper.poll() is not None


def test_a_clean_exit_of_a_child_is_still_a_failure() -> None:
    with Supervisor() as sup:
        sup.spawn("quitter", [sys.executable, "-c", "pass"])
        assert sup.run() == 1


def test_requested_stop_stops_children_in_reverse_order(tmp_path: Path) -> None:
    record = tmp_path / "order"
    with Supervisor() as sup:
        for name in ("store", "http", "mllp"):
            sup.spawn(name, [sys.executable, "-c", RECORDER, str(record), name])
        for name in ("store", "http", "mllp"):  # handlers installed, so SIGTERM is recorded
            _wait_for(tmp_path / f"order.{name}")
        sup.request_stop("test")
        assert sup.stop_requested
        assert sup.run() == 0
    assert record.read_text().split() == ["mllp", "http", "store"]
    assert all(isinstance(child, Child) for child in sup.children)


def test_a_child_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    stubborn = ProcessChild(
        "stubborn",
        [
            sys.executable,
            "-c",
            "import pathlib, signal, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "pathlib.Path(sys.argv[1]).touch(); signal.pause()",
            str(ready),
        ],
        stop_timeout=0.5,
    )
    with Supervisor() as sup:
        stubborn.start()
        sup.add(stubborn)
        _wait_for(ready)
        sup.request_stop()
        assert sup.run() == 0
    assert stubborn.poll() == -signal.SIGKILL


def test_stop_is_idempotent() -> None:
    child = ProcessChild("sleeper", [sys.executable, "-c", SLEEPER])
    child.stop()  # never started: nothing to do
    child.start()
    child.stop()
    child.stop()
    assert child.poll() is not None
