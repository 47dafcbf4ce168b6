"""Building the Go load generator and running it against a server, with CPU accounting."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/run.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    BenchError,
    ProcStat,
    machine_cpu,
    other_processes,
    process_cpu,
    snapshot,
    tree_cpu,
)

LOADGEN_SRC = ROOT / "bench" / "loadgen"


# --- the load generator ---------------------------------------------------------------------


def build_loadgen(out_dir: Path) -> Path:
    go = shutil.which("go")
    if go is None:
        raise BenchError("the Go toolchain (go) is needed to build bench/loadgen")
    binary = out_dir / "loadgen"
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    subprocess.run([go, "build", "-trimpath", "-o", str(binary), "."], cwd=LOADGEN_SRC, env=env, check=True)
    return binary


@dataclass
class Sample:
    """CPU seconds over the measurement window: the server tree under test, the store, and
    the whole machine (so that load from processes outside the benchmark is visible)."""

    app_cpu: float = float("nan")
    store_cpu: float = float("nan")
    machine_cpu: float = float("nan")
    other_top: str = ""  # the busiest processes outside the benchmark, with cores used


@dataclass
class Run:
    op: str
    clients: int
    result: dict[str, Any]
    cpu: Sample = field(default_factory=Sample)


def run_loadgen(
    loadgen: Path,
    *,
    op: str,
    url: str,
    method: str,
    clients: int,
    duration: float,
    warmup: float,
    ids_file: Path | None,
    body_file: Path | None,
    server_pid: int,
    store_pid: int | None,
    profile: Path | None = None,
) -> Run:
    argv = [
        str(loadgen),
        f"-url-template={url}",
        f"-method={method}",
        f"-concurrency={clients}",
        f"-duration={duration}s",
        f"-warmup={warmup}s",
        f"-label={op}",
    ]
    if ids_file is not None:
        argv.append(f"-ids={ids_file}")
    if body_file is not None:
        argv.append(f"-body={body_file}")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sample = Sample()
    profiler: subprocess.Popen[bytes] | None = None
    messages: list[str] = []
    try:
        snap0: dict[int, ProcStat] = {}
        machine0 = 0.0
        assert proc.stderr is not None
        for line in proc.stderr:  # the markers bracket exactly the measurement window
            line = line.rstrip("\n")
            if line == "# measure-start":
                snap0, machine0 = snapshot(), machine_cpu()
                if profile is not None:
                    profiler = start_profiler(server_pid, duration, profile)
            elif line == "# measure-end":
                snap1, machine1 = snapshot(), machine_cpu()
                sample = Sample(
                    app_cpu=tree_cpu(snap1, server_pid) - tree_cpu(snap0, server_pid),
                    store_cpu=process_cpu(snap1, store_pid) - process_cpu(snap0, store_pid),
                    machine_cpu=machine1 - machine0,
                    other_top=other_processes(snap0, snap1, duration, store_pid),
                )
            else:
                messages.append(line)
        out = proc.stdout.read() if proc.stdout is not None else ""
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if profiler is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                profiler.wait(timeout=duration + 30)
            if profiler.poll() is None:
                profiler.terminate()
                profiler.wait()
    if code != 0:
        raise BenchError(f"loadgen failed ({code}) for {op} x{clients}: {' '.join(messages)}")
    return Run(op, clients, json.loads(out.strip().splitlines()[-1]), sample)


def start_profiler(server_pid: int, duration: float, out: Path) -> subprocess.Popen[bytes]:
    """py-spy over the whole gunicorn tree for the measurement window (collapsed stacks of
    the thread holding the GIL: where the Python CPU goes, not where threads wait)."""
    pyspy = shutil.which(
        "py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    if pyspy is None:
        raise BenchError("--profile needs py-spy (pip install py-spy)")
    argv = [pyspy, "record", "--pid", str(server_pid), "--subprocesses", "--nonblocking", "--gil"]
    argv += ["--rate", "200"]
    argv += ["--duration", str(max(1, int(duration))), "--format", "raw", "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
