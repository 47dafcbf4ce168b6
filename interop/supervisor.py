"""Run a few long-lived children in the foreground and shut them down in order.

``interop run`` owns several processes (the embedded store, gunicorn, later the MLLP
listener). They live or die together: a signal to the supervisor stops every child in
reverse start order (servers before the store they write to), and a child that exits on
its own stops the rest and makes the supervisor exit non-zero, so a process manager
notices instead of serving half a system.

Children are started in their own session, so a Ctrl-C in the terminal reaches only the
supervisor, which then decides the shutdown order. On Linux they also get SIGTERM if the
supervisor itself dies (``PR_SET_PDEATHSIG``), so a ``kill -9`` leaves no orphans holding
ports or the store's files.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@runtime_checkable
class Child(Protocol):
    """What the supervisor needs from a running child (a process or something that owns one)."""

    @property
    def name(self) -> str:
        """Short label used in log lines."""
        ...

    def wait(self) -> int:
        """Block until the child has exited; return its exit status."""
        ...

    def stop(self) -> None:
        """Ask the child to exit, escalate if it does not, and wait; idempotent."""
        ...

    def kill(self) -> None:
        """Kill the child at once without waiting (second Ctrl-C); idempotent."""
        ...


@functools.cache
def _libc() -> ctypes.CDLL:
    # Loaded in the parent: dlopen after fork in a threaded process can deadlock.
    return ctypes.CDLL(None, use_errno=True)


def die_with_parent_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive SIGTERM when this thread's process dies.

    Returns ``None`` off Linux. The death signal is tied to the *thread* that forks, so
    start long-lived children from a thread that outlives them (normally the main thread).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = _libc().prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


class ProcessChild:
    """A command run as a child: SIGTERM to stop, SIGKILL after ``stop_timeout`` seconds."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_timeout: float = 10.0,
    ) -> None:
        self._name = name
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Spawn the process; output goes to the supervisor's stdout/stderr."""
        if self._process is not None:
            raise RuntimeError(f"{self._name} already started")
        self._process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent_preexec(),
        )
        log.info("started %s (pid %d)", self._name, self._process.pid)

    def poll(self) -> int | None:
        return self._process.poll() if self._process is not None else None

    def wait(self) -> int:
        if self._process is None:
            raise RuntimeError(f"{self._name} was never started")
        return self._process.wait()

    def stop(self) -> None:
        proc = self._process
        if proc is None or proc.poll() is not None:
            return
        log.info("stopping %s (pid %d)", self._name, proc.pid)
        proc.terminate()
        try:
            proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not exit within %.0f s; killing it", self._name, self.stop_timeout)
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        proc = self._process
        if proc is not None and proc.poll() is None:
            proc.kill()


@dataclass(frozen=True)
class _StopRequested:
    reason: str


@dataclass(frozen=True)
class _ChildExited:
    child: Child
    status: int


class Supervisor:
    """Watch children; on a signal or an unexpected exit, stop them all in reverse order.

    Use as a context manager so signal handlers are in place before the first child starts
    (a Ctrl-C during a slow store start is then queued, not lost) and every child is stopped
    on the way out whatever happens::

        with Supervisor() as sup:
            sup.add(store)  # already running
            sup.spawn("http", ["gunicorn", ...])
            code = sup.run()
    """

    def __init__(self) -> None:
        self._children: list[Child] = []
        # SimpleQueue.put is reentrant, so the signal handler may call it at any bytecode.
        self._events: queue.SimpleQueue[_StopRequested | _ChildExited] = queue.SimpleQueue()
        self._stopping = False
        self._stop_requested = False
        self._previous_handlers: dict[int, object] = {}

    # --- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Supervisor:
        self.install_signal_handlers()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.shutdown()
        finally:
            self.restore_signal_handlers()

    def install_signal_handlers(self) -> None:
        """Turn SIGINT/SIGTERM into a stop request; only possible in the main thread."""
        if threading.current_thread() is not threading.main_thread():
            log.debug("not in the main thread; signals are not handled by the supervisor")
            return
        for signum in _HANDLED_SIGNALS:
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def restore_signal_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous_handlers.clear()

    # --- children --------------------------------------------------------------------

    @property
    def children(self) -> tuple[Child, ...]:
        return tuple(self._children)

    @property
    def stop_requested(self) -> bool:
        """True once a stop was asked for; callers can skip starting further children."""
        return self._stop_requested

    def add(self, child: Child) -> Child:
        """Watch an already running child; it is stopped after every child added later."""
        self._children.append(child)
        threading.Thread(target=self._watch, args=(child,), name=f"watch-{child.name}", daemon=True).start()
        return child

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_timeout: float = 10.0,
    ) -> ProcessChild:
        """Start ``argv`` as a child and watch it."""
        child = ProcessChild(name, argv, env=env, cwd=cwd, stop_timeout=stop_timeout)
        child.start()
        self.add(child)
        return child

    def request_stop(self, reason: str = "requested") -> None:
        """Ask :meth:`run` to shut everything down and return 0; safe from any thread."""
        self._stop_requested = True
        self._events.put(_StopRequested(reason))

    # --- main loop -------------------------------------------------------------------

    def run(self) -> int:
        """Block until a stop request or a child's exit, stop all children, return the exit code.

        0 after a requested stop (signal); the child's status (or 1) after an unexpected exit.
        """
        event = self._events.get()
        if isinstance(event, _StopRequested):
            log.info("stopping (%s)", event.reason)
            code = 0
        else:
            name, status = event.child.name, event.status
            log.error("%s exited unexpectedly with status %d; stopping the rest", name, status)
            code = status if status > 0 else 1
        self.shutdown()
        return code

    def shutdown(self) -> None:
        """Stop every child, last added first; idempotent."""
        self._stopping = True
        self._stop_requested = True
        for child in reversed(self._children):
            try:
                child.stop()
            except Exception:
                log.exception("failed to stop %s", child.name)

    # --- internals -------------------------------------------------------------------

    def _watch(self, child: Child) -> None:
        try:
            status = child.wait()
        except Exception:
            log.exception("lost track of %s", child.name)
            status = -1
        if not self._stopping:
            self._events.put(_ChildExited(child, status))

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            # A second Ctrl-C while shutting down: the operator does not want to wait.
            for child in self._children:
                child.kill()
            return
        self.request_stop(signal.Signals(signum).name)


__all__ = ["Child", "ProcessChild", "Supervisor", "die_with_parent_preexec"]
