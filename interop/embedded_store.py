"""The embedded document store: FerretDB on SQLite, run as a child process.

``make run`` and the test suite must work on a bare machine without a MongoDB server, so when
``INTEROP_MONGODB_URI`` is unset we start FerretDB (MongoDB wire protocol, SQLite files under
the data directory) on free loopback ports and hand its URI to the server. Production points
``INTEROP_MONGODB_URI`` at a real MongoDB replica set instead; nothing else changes.

Files under ``data_dir``::

    ferretdb/sqlite/   one SQLite file per database
    ferretdb/state/    FerretDB's own state
    ferretdb/lock      held while a store runs, so two stores never share the SQLite files
    logs/ferretdb.log  FerretDB's output (appended)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from interop.supervisor import die_with_parent_preexec

BINARY_ENV = "INTEROP_FERRETDB_BIN"
BUILD_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "build-ferretdb.sh"

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_START_ATTEMPTS = 5
_LOG_TAIL_LINES = 30
_LOOPBACK = "127.0.0.1"


class EmbeddedStoreError(RuntimeError):
    """The embedded store could not be built, started or reached; the message says why."""


class _PortTaken(Exception):
    """Another process won the race for a port we picked; start again on new ports."""


class EmbeddedStore:
    """One FerretDB process serving the SQLite files under ``data_dir``.

    ``start()`` returns the MongoDB URI; ``stop()`` (or leaving the ``with`` block) ends the
    process. It also satisfies :class:`interop.supervisor.Child`, so ``interop run`` stops it
    after the servers that use it.
    """

    name = "store"

    def __init__(self, data_dir: Path, *, binary: Path | None = None, log_file: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.log_file = Path(log_file) if log_file is not None else self.data_dir / "logs" / "ferretdb.log"
        self._binary = Path(binary) if binary is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[bytes] | None = None
        self._port: int | None = None

    # --- public API ------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """``mongodb://127.0.0.1:PORT/?directConnection=true`` of the running store."""
        if self._port is None:
            raise EmbeddedStoreError("the embedded store is not running")
        return _uri(self._port)

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmbeddedStoreError("the embedded store is not running")
        return self._port

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def ensure_binary(self) -> Path:
        """Path of the FerretDB binary: the constructor's, ``$INTEROP_FERRETDB_BIN``, or built once.

        Building goes through ``scripts/build-ferretdb.sh`` (Go toolchain, cached outside the
        clone), which patches FerretDB so ``_id`` lookups use the index.
        """
        if self._binary is None:
            override = os.environ.get(BINARY_ENV, "").strip()
            self._binary = Path(override) if override else _build_binary()
        if not (self._binary.is_file() and os.access(self._binary, os.X_OK)):
            raise EmbeddedStoreError(f"FerretDB binary {self._binary} does not exist or is not executable")
        return self._binary

    def start(self) -> str:
        """Start FerretDB on free loopback ports, wait until it answers ``ping``, return its URI."""
        if self._process is not None:
            raise EmbeddedStoreError(f"the embedded store is already running at {self.uri}")
        binary = self.ensure_binary()
        home = self.data_dir / "ferretdb"
        for sub in ("sqlite", "state"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._acquire_lock(home / "lock")
        try:
            for _ in range(_START_ATTEMPTS - 1):
                with contextlib.suppress(_PortTaken):
                    return self._start_once(binary, home)
                self._reap()
            try:
                return self._start_once(binary, home)
            except _PortTaken:
                raise EmbeddedStoreError(
                    f"no free port for the embedded store after {_START_ATTEMPTS} attempts"
                ) from None
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM, wait up to 10 s, then SIGKILL; release the data directory. Idempotent."""
        self._reap()
        if self._lock is not None:
            self._lock.close()  # the lock is released once FerretDB, which inherited it, is gone too
            self._lock = None

    def wait(self) -> int:
        """Block until FerretDB exits; return its status (for the supervisor)."""
        proc = self._process
        if proc is None:
            raise EmbeddedStoreError("the embedded store is not running")
        return proc.wait()

    def kill(self) -> None:
        """SIGKILL without waiting (second Ctrl-C); :meth:`stop` still reaps it."""
        proc = self._process
        if proc is not None and proc.poll() is None:
            proc.kill()

    def __enter__(self) -> EmbeddedStore:
        if self._process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at {_uri(self._port)}" if self._port is not None else "stopped"
        return f"<EmbeddedStore {self.data_dir} {state}>"

    # --- internals -------------------------------------------------------------------

    def _acquire_lock(self, path: Path) -> None:
        # Two FerretDB processes on the same SQLite files would race on the files and on
        # FerretDB's cached metadata; refuse with a clear message instead.
        lock = path.open("a+b")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().decode(errors="replace").strip() or "unknown"
            lock.close()
            raise EmbeddedStoreError(
                f"the embedded store in {self.data_dir} is already running (pid {holder}); "
                "stop it or set INTEROP_DATA_DIR to another directory"
            ) from None
        self._lock = lock

    def _start_once(self, binary: Path, home: Path) -> str:
        port, debug_port = _free_ports(2)
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        argv = [
            str(binary),
            "--handler=sqlite",
            f"--sqlite-url={(home / 'sqlite').resolve().as_uri()}/",
            f"--state-dir={(home / 'state').resolve()}",
            f"--listen-addr={_LOOPBACK}:{port}",
            f"--debug-addr={_LOOPBACK}:{debug_port}",
            "--telemetry=disable",
            # warn logs a block for every pymongo client close (FerretDB lacks endSessions).
            "--log-level=error",
        ]
        # Trade memory for CPU: the store's garbage collector ran ~11 % of its CPU at GOGC=100.
        env = {**os.environ, "GOGC": os.environ.get("GOGC", "400")}
        assert self._lock is not None
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                argv,
                cwd=home,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(self._lock.fileno(),),  # FerretDB keeps the data dir locked while it lives
                start_new_session=True,  # Ctrl-C reaches the supervisor, which stops us last
                preexec_fn=die_with_parent_preexec(),
            )
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"{self._process.pid}\n".encode())
        self._lock.flush()
        try:
            self._wait_ready(self._process, port, time.monotonic() + START_TIMEOUT)
        except _ExitedEarly as exc:
            tail = _tail(self.log_file, log_offset)
            if "address already in use" in tail:
                raise _PortTaken from exc
            raise EmbeddedStoreError(
                f"FerretDB ({binary}) exited with status {exc.status} while starting; "
                f"last lines of {self.log_file}:\n{tail}"
            ) from None
        except TimeoutError:
            tail = _tail(self.log_file, log_offset)
            raise EmbeddedStoreError(
                f"FerretDB did not answer ping on port {port} within {START_TIMEOUT:.0f} s; "
                f"last lines of {self.log_file}:\n{tail}"
            ) from None
        self._port = port
        return _uri(port)

    def _wait_ready(self, proc: subprocess.Popen[bytes], port: int, deadline: float) -> None:
        # Poll the TCP port first: cheap, and pymongo's monitor would add up to 500 ms per retry.
        while True:
            if proc.poll() is not None:
                raise _ExitedEarly(proc.returncode)
            with contextlib.suppress(OSError), socket.create_connection((_LOOPBACK, port), timeout=1.0):
                break
            if time.monotonic() >= deadline:
                raise TimeoutError
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.02)  # doubles as the pause between polls and exit detection
        # Then ask for a MongoDB answer in short rounds, so that a process that exits (lost the
        # port race) or a port held by something that never answers is noticed quickly.
        client: MongoClient[dict[str, object]] = MongoClient(
            _uri(port), serverSelectionTimeoutMS=1000, connectTimeoutMS=1000, socketTimeoutMS=5000
        )
        try:
            while True:
                if proc.poll() is not None:
                    raise _ExitedEarly(proc.returncode)
                try:
                    client.admin.command("ping")
                    status = client.admin.command("serverStatus")
                    break
                except PyMongoError:
                    if time.monotonic() >= deadline:
                        raise TimeoutError from None
        finally:
            client.close()
        # Whoever answered must be our process, not something that grabbed the port first.
        answered = status.get("pid")
        if isinstance(answered, int) and answered != proc.pid:
            raise _PortTaken

    def _reap(self) -> None:
        proc, self._process, self._port = self._process, None, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class _ExitedEarly(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _uri(port: int) -> str:
    return f"mongodb://{_LOOPBACK}:{port}/?directConnection=true"


def _free_ports(count: int) -> list[int]:
    """Distinct ports the kernel considers free right now (a race remains; start() retries)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind((_LOOPBACK, 0))
        return [sock.getsockname()[1] for sock in socks]


def _tail(path: Path, offset: int, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError as exc:
        return f"(log unavailable: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


def _build_binary() -> Path:
    if not BUILD_SCRIPT.is_file():
        raise EmbeddedStoreError(
            f"cannot build FerretDB: {BUILD_SCRIPT} not found (installed without the source tree?); "
            f"set {BINARY_ENV} to a FerretDB binary"
        )
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, check=False)
    output = result.stdout.decode(errors="replace").strip()
    if result.returncode != 0 or not output:
        raise EmbeddedStoreError(f"{BUILD_SCRIPT} failed (status {result.returncode}); see its output above")
    return Path(output.splitlines()[-1].strip())


__all__ = ["BINARY_ENV", "BUILD_SCRIPT", "EmbeddedStore", "EmbeddedStoreError"]
