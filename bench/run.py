"""One command for the HTTP benchmarks: ``make bench`` (or ``.venv/bin/python bench/run.py``).

In one run on this machine it measures, at each concurrency level:

* ``floor read``  the same gunicorn command line serving a constant Patient from a bare Flask
                  view (bench/floor_app.py): the best any Flask view can do here;
* ``read``        ``GET /fhir/Patient/{id}`` over the seeded Patients;
* ``create``      ``POST /fhir/Patient`` (a new MRN per request);
* ``update``      ``PUT /fhir/Patient/{id}``, each client on its own Patients (no contention);

with throughput, latency percentiles, the store's share of the latency (``Server-Timing``)
and of the CPU, prints a markdown table and appends a dated section to docs/benchmarks.md.
Every process it starts is stopped on the way out, also on Ctrl-C or error.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/run.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    FHIR_JSON,
    LOOPBACK,
    RESULTS_DIR,
    BenchError,
    Server,
    append_report,
    command_line,
    free_port,
    gunicorn_config,
    http_request,
    machine,
    sigterm_as_exit,
    start_bench_store,
    tear_down,
    wait_ready,
)
from bench.loadgen_runs import Run, build_loadgen, run_loadgen  # noqa: E402
from bench.patients import create_template, dumps, patient, update_template  # noqa: E402
from bench.run_report import detail_table, main_table, verdict  # noqa: E402
from fhir_server.settings import Settings  # noqa: E402
from interop.cli import gunicorn_argv  # noqa: E402

SERVER_APP = "fhir_server:create_app()"
FLOOR_APP = "bench.floor_app:create_app()"


# --- seeding --------------------------------------------------------------------------------


def seed(port: int, count: int) -> list[str]:
    local = threading.local()

    def post(i: int) -> str:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
        conn.request(
            "POST",
            "/fhir/Patient",
            body=dumps(patient(i)).encode(),
            headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON},
        )
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 201:
            raise BenchError(f"seeding: POST /fhir/Patient answered {resp.status}: {body[:500]!r}")
        return str(json.loads(body)["id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(post, range(count)))


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="measured seconds per test [%(default)s]"
    )
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="warm-up seconds before each test [%(default)s]"
    )
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",") if x.strip()],
        default=[1, 8, 32],
        help="comma-separated client counts [1,8,32]",
    )
    parser.add_argument(
        "--seed", type=int, default=1000, help="Patients created before measuring [%(default)s]"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "benchmarks.md", help="markdown file to append to"
    )
    parser.add_argument("--no-append", action="store_true", help="print the results only")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a target is missed or a request failed"
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="read",
        choices=["read", "create", "update"],
        help="also record py-spy stacks (time holding the GIL) of the server during this test "
        "[read] at the highest concurrency (into bench/results/; perturbs the figures, so "
        "nothing is appended)",
    )
    args = parser.parse_args(argv)
    if not args.concurrency or min(args.concurrency) < 1:
        parser.error("--concurrency needs positive integers")
    if args.seed < max(args.concurrency):
        parser.error(
            "--seed must be at least the highest concurrency (updates give every client its own Patients)"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="interop-bench-"))
    cleanup: list[Any] = []  # stopped in reverse order
    external_db: tuple[str, str] | None = None
    try:
        with sigterm_as_exit():
            print("building loadgen ...", file=sys.stderr)
            loadgen = build_loadgen(RESULTS_DIR)

            bench_store = start_bench_store(work, stamp, cleanup)
            store_pid, store_text = bench_store.pid, bench_store.description
            external_db = bench_store.external
            port, floor_port = free_port(), free_port()
            env = {**os.environ, "INTEROP_HTTP_PORT": str(port)}
            settings = Settings.from_env(env)
            server_argv = gunicorn_argv(settings)
            print(f"starting the server: {shlex.join(server_argv)}", file=sys.stderr)
            server = Server("server", server_argv, env, work / "server.log")
            cleanup.append(server)
            wait_ready(server, port, "/readyz")

            print(f"seeding {args.seed} Patients ...", file=sys.stderr)
            t0 = time.monotonic()
            ids = seed(port, args.seed)
            print(f"  seeded in {time.monotonic() - t0:.1f} s", file=sys.stderr)
            ids_file = work / "ids.txt"
            ids_file.write_text("\n".join(ids) + "\n")
            status, _, read_body = http_request(port, "GET", f"/fhir/Patient/{ids[0]}")
            if status != 200:
                raise BenchError(f"GET /fhir/Patient/{ids[0]} answered {status}: {read_body[:500]!r}")
            patient_file = work / "patient.json"
            patient_file.write_bytes(read_body)
            create_file, update_file = work / "create.json", work / "update.json"
            update_file.write_text(update_template())

            floor_settings = settings.with_overrides(http_port=floor_port)
            floor_argv = [FLOOR_APP if a == SERVER_APP else a for a in gunicorn_argv(floor_settings)]
            if FLOOR_APP not in floor_argv:
                raise BenchError(f"cannot find {SERVER_APP!r} in gunicorn_argv(): {floor_argv}")
            floor_env = {
                **env,
                "INTEROP_HTTP_PORT": str(floor_port),
                "INTEROP_BENCH_PATIENT_FILE": str(patient_file),
            }
            print(f"starting the floor: {shlex.join(floor_argv)}", file=sys.stderr)
            floor = Server("floor", floor_argv, floor_env, work / "floor.log")
            cleanup.append(floor)
            wait_ready(floor, floor_port, f"/fhir/Patient/{ids[0]}")
            _, _, floor_body = http_request(floor_port, "GET", f"/fhir/Patient/{ids[0]}")
            if floor_body != read_body:
                raise BenchError("the floor does not serve the same bytes as our read")

            base = f"http://{LOOPBACK}:{port}/fhir/Patient"
            tests = [
                (
                    "floor read",
                    f"http://{LOOPBACK}:{floor_port}/fhir/Patient/{{id}}",
                    "GET",
                    ids_file,
                    None,
                    floor,
                ),
                ("read", base + "/{id}", "GET", ids_file, None, server),
                ("create", base, "POST", None, create_file, server),
                ("update", base + "/{id}", "PUT", ids_file, update_file, server),
            ]
            runs: list[Run] = []
            top = max(args.concurrency)
            for clients in args.concurrency:
                for op, url, method, idf, body, target in tests:
                    server.check_alive()
                    floor.check_alive()
                    if op == "create":  # new MRNs in every run (create_template)
                        create_file.write_text(create_template(f"{stamp}-{len(runs)}"))
                    profile = (
                        RESULTS_DIR / f"profile-{stamp}-{op}-{clients}.txt"
                        if (op == args.profile and clients == top)
                        else None
                    )
                    run = run_loadgen(
                        loadgen,
                        op=op,
                        url=url,
                        method=method,
                        clients=clients,
                        duration=args.duration,
                        warmup=args.warmup,
                        ids_file=idf,
                        body_file=body,
                        server_pid=target.pid,
                        store_pid=store_pid,
                        profile=profile,
                    )
                    runs.append(run)
                    res = run.result
                    print(
                        f"  {op:<10} x{clients:<3} {res['throughput_rps']:>9,.1f} rps  "
                        f"p50 {res['p50_ms']:.2f} ms  "
                        f"p99 {res['p99_ms']:.2f} ms  errors {res['errors']}"
                        + (f"  ({res.get('error_sample')})" if res["errors"] else "")
                        + (f"  profile: {profile}" if profile else ""),
                        file=sys.stderr,
                    )
                    time.sleep(0.5)

            raw = {
                "started_at": started_at.isoformat(),
                "command": command_line(),
                "store": store_text,
                "server_argv": server_argv,
                "floor_argv": floor_argv,
                "runs": [
                    {"op": r.op, "clients": r.clients, "cpu": r.cpu.__dict__, "result": r.result}
                    for r in runs
                ],
            }
            raw_path = RESULTS_DIR / f"bench-{stamp}.json"
            raw_path.write_text(json.dumps(raw, indent=1))

            summary, passed = verdict(runs, args.duration)
            section = "\n".join(
                [
                    f"## {started_at.strftime('%Y-%m-%d %H:%M UTC')}",
                    "",
                    f"- command: `{command_line()}`",
                    f"- machine: {machine()}",
                    f"- store: {store_text}",
                    f"- gunicorn: {gunicorn_config(settings)}",
                    f"- server: `{shlex.join([Path(server_argv[0]).name, *server_argv[1:]])}`; "
                    f"floor: same with `{FLOOR_APP}`",
                    f"- workload: {args.seed} seeded Patients ({len(read_body):,} B read body), "
                    f"{args.duration:g} s measured after {args.warmup:g} s warm-up per test, "
                    "closed loop, one keep-alive connection per client",
                    "",
                    main_table(runs),
                    "",
                    "<details><summary>Details: latency, Server-Timing and CPU per request</summary>",
                    "",
                    detail_table(runs, args.duration),
                    "",
                    "</details>",
                    "",
                    "Targets:",
                    "",
                    summary,
                ]
            )
            print(section)
            if args.profile or args.no_append:
                print(f"\n(not appended; raw results in {raw_path})", file=sys.stderr)
            else:
                append_report(args.out, section)
                print(f"\nappended to {args.out}; raw results in {raw_path}", file=sys.stderr)
            return 1 if args.check and not passed else 0
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; stopping what was started", file=sys.stderr)
        return 130
    finally:
        tear_down(cleanup, external_db, work)


if __name__ == "__main__":
    sys.exit(main())
