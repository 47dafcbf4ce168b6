"""HL7 v2 listener benchmark: ``.venv/bin/python bench/hl7_run.py`` (``make bench-hl7``).

In one run, on loopback, with the embedded store (or INTEROP_MONGODB_URI, fresh database):

* **throughput**: N connections each send in a closed loop (next message when the ACK is
  back) for ``--duration`` seconds; ADT^A01 and ORU^R01 (with ``--obx`` OBX segments)
  alternate; every ACK is checked to be AA, i.e. after the durable inbox write;
* **latency at a fixed rate**: ``--rate`` messages/s spread over the connections on a fixed
  schedule; latency runs from the *scheduled* send time to the ACK (no coordinated
  omission), p50/p99/max;
* **floor**: the same closed loop against ``bench/hl7_echo.py``, a bare asyncio MLLP server
  that answers a constant ACK without parsing or storing;
* **processing throughput**: a second listener (own database) with the real processing
  (``--drain-process``, by default ``hl7_listener.processing:process``: mappings and the FHIR
  transaction) takes ``--drain-messages`` messages from ``--senders`` senders as fast as it
  acknowledges them; the backlog builds up behind the ACKs and the benchmark reads the
  listener's metrics until it has drained: messages processed per second, from the first
  send until the last outcome.

The listener is the real process (``interop hl7 listen``, ``INTEROP_MLLP_ACK_AFTER=stored``
unless ``--ack-after processed``: AA once the message is durably stored, the processor
behind it runs ``--process``: ``none`` records the outcome only, a module:function adds its
work). Each row also gives the backlog the processor had left when the load stopped. CPU
seconds of the listener and the store are read from /proc. Prints a markdown section and
appends it to docs/benchmarks.md unless ``--no-append``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    append_report,
    free_port,
    machine,
    machine_cpu,
    process_cpu,
    snapshot,
)
from hl7_listener.client import MllpClient, ack_code  # noqa: E402
from interop.embedded_store import EmbeddedStore  # noqa: E402


def adt(control_id: str, facility: str = "HOSP") -> bytes:
    return (
        f"MSH|^~\\&|ADT|{facility}|EHR|MAIN|20240101120000||ADT^A01^ADT_A01|{control_id}|P|2.5.1\r"
        "EVN|A01|20240101120000\r"
        f"PID|1||MRN{control_id}^^^HOSP^MR||Nguyen^An^B||19840309|F|||"
        "12 Main St^^Springfield^IL^62701||555-0100\r"
        "NK1|1|Nguyen^Binh|SPO\r"
        f"PV1|1|I|W^101^1^HOSP||||1234^Smith^John^^^Dr|||MED|||||||||V{control_id}\r"
    ).encode()


def oru(control_id: str, obx: int, facility: str = "HOSP") -> bytes:
    # Each result has its own order numbers (ORC/OBR-2, -3), as in real lab feeds.
    segments = [
        f"MSH|^~\\&|LAB|{facility}|EHR|MAIN|20240101120000||ORU^R01^ORU_R01|{control_id}|P|2.5.1",
        f"PID|1||MRN{control_id}^^^HOSP^MR||Nguyen^An||19840309|F",
        f"OBR|1|ORD{control_id}|FIL{control_id}|24323-8^Comprehensive metabolic panel^LN|||20240101110000",
    ]
    segments += [
        f"OBX|{i}|NM|2345-7^Glucose^LN||{90 + i}|mg/dL|70-99|N|||F|||20240101113000"
        for i in range(1, obx + 1)
    ]
    return ("\r".join(segments) + "\r").encode()


class Messages:
    """ADT^A01 and ORU^R01 alternate; ``senders`` sending facilities (MSH-4) take turns."""

    def __init__(self, prefix: str, obx: int, senders: int = 1) -> None:
        self.prefix, self.obx, self.senders, self.n = prefix, obx, senders, 0

    def next(self) -> bytes:
        self.n += 1
        cid = f"{self.prefix}{self.n}"
        facility = f"HOSP{(self.n // 2) % self.senders}" if self.senders > 1 else "HOSP"
        return adt(cid, facility) if self.n % 2 else oru(cid, self.obx, facility)


def start(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], tuple[str, int]]:
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("MLLP listening on "):
        proc.kill()
        raise RuntimeError(f"{argv} did not start: {line!r}")
    host, port = line.split()[-1].rsplit(":", 1)
    return proc, (host, int(port))


async def closed_loop(
    address: tuple[str, int], connections: int, duration: float, messages: Messages
) -> dict:
    latencies: list[float] = []
    bad: list[str] = []
    deadline = time.perf_counter() + duration

    async def one() -> None:
        async with MllpClient(*address) as client:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                reply = await client.send(messages.next())
                latencies.append(time.perf_counter() - sent)
                if ack_code(reply) != "AA":
                    bad.append(ack_code(reply))

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    return {"count": len(latencies), "rate": len(latencies) / elapsed, "not_aa": len(bad), **_pcts(latencies)}


async def fixed_rate(
    address: tuple[str, int], connections: int, rate: float, duration: float, messages: Messages
) -> dict:
    latencies: list[float] = []
    bad: list[str] = []
    interval = connections / rate
    begin = time.perf_counter() + 0.1

    async def one(k: int) -> None:
        async with MllpClient(*address) as client:
            i = 0
            while True:
                scheduled = begin + k * interval / connections + i * interval
                if scheduled > begin + duration:
                    return
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                reply = await client.send(messages.next())
                latencies.append(time.perf_counter() - scheduled)
                if ack_code(reply) != "AA":
                    bad.append(ack_code(reply))
                i += 1

    await asyncio.gather(*(one(k) for k in range(connections)))
    return {
        "count": len(latencies),
        "rate": len(latencies) / duration,
        "not_aa": len(bad),
        **_pcts(latencies),
    }


def metric(port: int, name: str) -> float:
    """One sample of the listener's Prometheus text (0 when absent)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


PROCESSED = 'hl7_processed_messages_total{status="processed"}'
FAILED = 'hl7_processed_messages_total{status="error"}'


async def drain(
    address: tuple[str, int], metrics_port: int, connections: int, total: int, messages: Messages
) -> dict:
    """Send ``total`` messages as fast as they are acknowledged, then wait (deadline) for the
    processor to work off the backlog; rate = processed messages / time to the last one."""
    loop = asyncio.get_running_loop()
    async with MllpClient(*address) as client:  # warm-up: the first message loads the mappings
        for _ in range(2):
            assert ack_code(await client.send(messages.next())) == "AA"
    warm_until = time.perf_counter() + 300
    while await loop.run_in_executor(None, metric, metrics_port, PROCESSED) < 2:
        assert time.perf_counter() < warm_until, "the warm-up messages were not processed"
        await asyncio.sleep(0.1)
    sent = 0
    started = time.perf_counter()

    async def one() -> None:
        nonlocal sent
        async with MllpClient(*address) as client:
            while sent < total:
                sent += 1
                reply = await client.send(messages.next())
                assert ack_code(reply) == "AA", reply

    await asyncio.gather(*(one() for _ in range(connections)))
    acked = time.perf_counter()
    at_ack = await loop.run_in_executor(None, metric, metrics_port, PROCESSED) - 2
    deadline = acked + 3600
    done = errors = 0.0
    while time.perf_counter() < deadline:
        done = await loop.run_in_executor(None, metric, metrics_port, PROCESSED) - 2
        errors = await loop.run_in_executor(None, metric, metrics_port, FAILED)
        if done + errors >= total:
            break
        await asyncio.sleep(0.25)
    finished = time.perf_counter()
    return {
        "count": int(done),
        "errors": int(errors),
        "rate": (done + errors) / (finished - started),
        "intake_s": acked - started,
        "processed_at_last_ack": int(at_ack),
        "drain_s": finished - acked,
        "after_ack_rate": (done + errors - at_ack) / max(finished - acked, 1e-9),
        "p50": float("nan"),
        "p99": float("nan"),
        "max": float("nan"),
    }


def _pcts(latencies: list[float]) -> dict:
    if not latencies:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(latencies)
    return {
        "p50": statistics.median(ordered) * 1000,
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "max": ordered[-1] * 1000,
    }


def measure(label: str, coro_factory, pids: dict[str, int | None]) -> dict:  # type: ignore[no-untyped-def]
    before, busy, t0 = snapshot(), machine_cpu(), time.perf_counter()
    result = asyncio.run(coro_factory())
    after, elapsed = snapshot(), time.perf_counter() - t0
    busy = machine_cpu() - busy
    ours = process_cpu(after, os.getpid()) - process_cpu(before, os.getpid())
    for name, pid in pids.items():
        used = process_cpu(after, pid) - process_cpu(before, pid)
        result[f"cpu_{name}"] = used / elapsed
        ours += used if used == used else 0.0  # NaN when there is no such process
    result["cpu_client"] = (process_cpu(after, os.getpid()) - process_cpu(before, os.getpid())) / elapsed
    # Everything else the machine did meanwhile (other sessions' work skews the figures).
    result["cpu_others"] = max(0.0, busy - ours) / elapsed
    result["label"] = label
    print(f"{label}: {result}", file=sys.stderr)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", default="1,4,16")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--rate-connections", type=int, default=4)
    parser.add_argument("--obx", type=int, default=8)
    parser.add_argument(
        "--process",
        default="none",
        help="the listener's processing: 'none' (durable intake and outcome only, the default) or "
        "module:function, e.g. hl7_listener.processing:process (mapping and FHIR writes)",
    )
    parser.add_argument("--ack-after", choices=["stored", "processed"], default="stored")
    parser.add_argument("--drain-messages", type=int, default=1000, help="0: skip the processing test")
    parser.add_argument("--drain-connections", type=int, default=8)
    parser.add_argument(
        "--senders", default="1,4", help="sending facilities (MSH-4) in the processing tests, one test each"
    )
    parser.add_argument("--drain-process", default="hl7_listener.processing:process")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    levels = [int(c) for c in args.connections.split(",")]

    work = Path(tempfile.mkdtemp(prefix="hl7bench-"))
    uri = os.environ.get("INTEROP_MONGODB_URI", "").strip()
    store = None
    if not uri:
        store = EmbeddedStore(work / "store")
        uri = store.start()
    database = f"hl7bench_{int(time.time())}"
    env = {
        **os.environ,
        "INTEROP_MONGODB_URI": uri,
        "INTEROP_MONGODB_DATABASE": database,
        "INTEROP_MLLP_PORT": "0",
        "INTEROP_MLLP_METRICS_PORT": "0",
        "INTEROP_LOG_LEVEL": "WARNING",
        "INTEROP_MLLP_MAX_CONNECTIONS": "1000",
        "INTEROP_MLLP_ACK_AFTER": args.ack_after,
    }
    metrics_port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    results: list[dict] = []
    try:
        argv = [sys.executable, "-m", "interop.cli", "hl7", "listen", "--process", args.process]
        listener, address = start(argv, {**env, "INTEROP_MLLP_METRICS_PORT": str(metrics_port)})
        procs.append(listener)
        echo, echo_address = start([sys.executable, str(ROOT / "bench" / "hl7_echo.py")], env)
        procs.append(echo)
        pids = {"listener": listener.pid, "store": store.pid if store else None}
        msgs = Messages("W", args.obx)
        asyncio.run(closed_loop(address, 4, 2.0, msgs))  # warm-up (connections, store files)
        for n in levels:
            results.append(
                measure(
                    f"echo floor, {n} conn",
                    lambda n=n: closed_loop(echo_address, n, args.duration, Messages(f"E{n}-", args.obx)),
                    {"listener": echo.pid, "store": None},
                )
            )
            results.append(
                measure(
                    f"listener, {n} conn",
                    lambda n=n: closed_loop(address, n, args.duration, Messages(f"T{n}-", args.obx)),
                    pids,
                )
            )
            _backlog(results[-1], metrics_port)
        results.append(
            measure(
                f"listener at {args.rate:.0f}/s, {args.rate_connections} conn",
                lambda: fixed_rate(
                    address, args.rate_connections, args.rate, args.duration, Messages("R", args.obx)
                ),
                pids,
            )
        )
        _backlog(results[-1], metrics_port)
        listener.terminate()
        listener.wait(60)
        for senders in [int(n) for n in args.senders.split(",")] if args.drain_messages else []:
            drain_port = free_port()
            drain_env = {
                **env,
                "INTEROP_MONGODB_DATABASE": f"{database}_drain{senders}",
                "INTEROP_MLLP_METRICS_PORT": str(drain_port),
                "INTEROP_MLLP_ACK_AFTER": "stored",
            }
            argv = [sys.executable, "-m", "interop.cli", "hl7", "listen", "--process", args.drain_process]
            processor, drain_address = start(argv, drain_env)
            procs.append(processor)
            results.append(
                measure(
                    f"processing {args.drain_messages} msgs ({args.drain_process}), "
                    f"{args.drain_connections} conn, {2 * senders} senders (ADT, LAB x {senders} facilities)",
                    lambda senders=senders, port=drain_port, address=drain_address: drain(
                        address,
                        port,
                        args.drain_connections,
                        args.drain_messages,
                        Messages(f"P{senders}-", args.obx, senders),
                    ),
                    {"listener": processor.pid, "store": store.pid if store else None},
                )
            )
            processor.terminate()
            processor.wait(60)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(60)
            if proc.stdout is not None:
                proc.stdout.close()
        if store is not None:
            store.stop()

    section = report(args, results)
    print(section)
    if not args.no_append:
        append_report(args.out, section)
    return 0


def _backlog(result: dict, port: int) -> None:
    """The processing backlog the load left behind (messages acknowledged, not processed);
    then wait (deadline) until it is worked off, so the next test does not pay for it."""
    result["backlog"] = int(metric(port, "hl7_processing_backlog"))
    started = time.perf_counter()
    while metric(port, "hl7_processing_backlog") > 0:
        if time.perf_counter() - started > 600:
            raise RuntimeError("the processing backlog did not drain within 600 s")
        time.sleep(0.25)
    result["backlog_s"] = time.perf_counter() - started


def report(args: argparse.Namespace, results: list[dict]) -> str:
    lines = [
        f"## HL7 v2 listener, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `.venv/bin/python bench/hl7_run.py --duration {args.duration:g} --connections "
        f"{args.connections} --rate {args.rate:g} --obx {args.obx} --process {args.process} --ack-after "
        f"{args.ack_after} --drain-messages {args.drain_messages} --senders {args.senders}`; {machine()}; "
        f"load average before the run {LOAD_BEFORE}. ADT^A01 and ORU^R01 ({args.obx} OBX) alternate; "
        f"every ACK is checked to be AA (INTEROP_MLLP_ACK_AFTER={args.ack_after}; "
        f"processing: {args.process}).",
        "",
        "| test | messages | msg/s | p50 ms | p99 ms | max ms | not AA | backlog left (drained in) "
        "| server CPU "
        "| store CPU | client CPU | other load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    drains = []
    for r in results:
        if "drain_s" in r:
            drains.append(r)
            continue
        lines.append(
            f"| {r['label']} | {r['count']} | {r['rate']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
            f"{r['max']:.1f} | {r['not_aa']} | {_left(r)} | "
            f"{r.get('cpu_listener', float('nan')):.2f} | "
            f"{r.get('cpu_store', float('nan')):.2f} | {r['cpu_client']:.2f} | {r['cpu_others']:.2f} |"
        )
    if drains:
        lines += [
            "",
            "| processing test | processed | errors | msg/s (first send to last outcome) | intake s "
            "| processed by last ACK | drain after last ACK s | msg/s after last ACK | server CPU "
            "| store CPU | other load |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in drains:
            lines.append(
                f"| {r['label']} | {r['count']} | {r['errors']} | {r['rate']:.1f} | {r['intake_s']:.1f} | "
                f"{r['processed_at_last_ack']} | {r['drain_s']:.1f} | {r['after_ack_rate']:.1f} | "
                f"{r.get('cpu_listener', float('nan')):.2f} | {r.get('cpu_store', float('nan')):.2f} | "
                f"{r['cpu_others']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def _left(r: dict) -> str:
    return f"{r['backlog']} ({r['backlog_s']:.0f} s)" if "backlog" in r else ""


LOAD_BEFORE = "/".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
