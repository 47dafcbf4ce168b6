"""Per-command cost of FerretDB builds, measured side by side.

For each binary given (``--bin LABEL=PATH``, at least one), in alternating rounds so that
machine noise hits every build alike, this starts an embedded store on a fresh data
directory and times single commands from pymongo: ``insert_one`` of a searchable record,
``find_one`` by ``_id``, ``replace_one`` by ``_id``, ``insert_many`` of 100, and a filter that
scans a 10k-document collection. For each it reports the median over rounds of the wall
time per command and of the store process's CPU per command (utime + stime from /proc).

    .venv/bin/python bench/ferretdb_commands.py --bin old=PATH --bin new=PATH --rounds 5

``--hold`` starts the first binary, fills it and keeps it running under a pymongo loop of
the chosen operation, printing the store's pid and pprof address, for profiling.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pymongo import MongoClient  # noqa: E402

from interop.embedded_store import EmbeddedStore  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
SCAN_DOCS = 10_000
UPDATED = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


def search_doc(i: int) -> dict[str, Any]:
    """A searchable record shaped like the server's (``search_doc_of``): ~1.3 KB of BSON."""
    pid = f"pat-{i:08d}"
    resource = json.dumps(
        {
            "resourceType": "Patient",
            "id": pid,
            "meta": {"versionId": "1", "lastUpdated": "2026-11-29T10:00:00Z"},
            "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": f"MRN{i}"}],
            "name": [{"family": "Chalmers", "given": ["Peter", "James"]}],
            "telecom": [{"system": "phone", "value": "(03) 5555 6473", "use": "work"}],
            "gender": "male",
            "birthDate": "1974-12-25",
            "address": [
                {"use": "home", "line": ["534 Erewhon St"], "city": "PleasantVille", "postalCode": "3999"}
            ],
        },
        separators=(",", ":"),
    )
    return {
        "_id": pid,
        "v": 1,
        "lu": UPDATED,
        "del": False,
        "m": "POST",
        "json": resource,
        "ix": [
            f"identifier|urn:oid:1.2.36.146.595.217.0.1|MRN{i}",
            f"identifier||MRN{i}",
            "family|chalmers",
            "given|peter",
            "given|james",
            "name|chalmers",
            "name|peter",
            "name|james",
            "gender|male",
            "phone|(03) 5555 6473",
            "telecom|phone|(03) 5555 6473",
            "address-city|pleasantville",
            "address-state|vic",
            "address-postalcode|3999",
            "address|534 erewhon st",
            "_id|" + pid,
        ],
        "ir": [
            {
                "p": "birthdate",
                "lo": datetime(1974, 12, 25, tzinfo=UTC),
                "hi": datetime(1974, 12, 26, tzinfo=UTC),
            },
            {"p": "_lastUpdated", "lo": UPDATED, "hi": UPDATED},
        ],
        "so": {"family": "chalmers", "given": "peter", "birthdate": "1974-12-25"},
    }


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def measure(pid: int, count: int, op: Callable[[int], None]) -> tuple[float, float]:
    """(wall ms, store CPU ms) per call of op(0..count-1)."""
    cpu0, t0 = proc_cpu(pid), time.perf_counter()
    for i in range(count):
        op(i)
    wall, cpu = time.perf_counter() - t0, proc_cpu(pid) - cpu0
    return wall * 1000 / count, cpu * 1000 / count


def one_round(binary: Path, n: int, scan: bool = True) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="fdb-bench-") as tmp,
        EmbeddedStore(Path(tmp), binary=binary) as store,
    ):
        client: MongoClient[dict[str, Any]] = MongoClient(store.uri)
        try:
            db = client.bench
            pid = store.pid
            assert pid is not None
            coll = db.search_Patient
            coll.insert_one({"_id": "warm"})  # creates the collection and table
            docs = [search_doc(i) for i in range(n)]
            out["insert_one"] = measure(pid, n, lambda i: coll.insert_one(docs[i]))
            out["find_one _id"] = measure(pid, n, lambda i: coll.find_one({"_id": docs[i]["_id"]}))
            # A changed document (FerretDB skips the write when nothing changed).
            out["replace_one _id"] = measure(
                pid, n, lambda i: coll.replace_one({"_id": docs[i]["_id"]}, {**docs[i], "v": 2})
            )
            batch = db.batch
            batch.insert_one({"_id": "warm"})
            batches = max(SCAN_DOCS // 100, n // 100)
            out["insert_many 100"] = measure(
                pid,
                batches,
                lambda b: batch.insert_many([search_doc(b * 100 + j) for j in range(100)], ordered=True),
            )
            if scan:
                out["scan 10k"] = measure(pid, 3, lambda _: list(batch.find({"m": "PUT"})))
        finally:
            client.close()
    return out


def hold(binary: Path, op: str, n: int) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="fdb-hold-") as tmp,
        EmbeddedStore(Path(tmp), binary=binary) as store,
    ):
        client: MongoClient[dict[str, Any]] = MongoClient(store.uri)
        coll = client.bench.search_Patient
        argv = Path(f"/proc/{store.pid}/cmdline").read_bytes().split(b"\0")
        debug = next(a.decode().split("=", 1)[1] for a in argv if a.startswith(b"--debug-addr="))
        print(f"pid {store.pid} pprof http://{debug}/debug/pprof/", flush=True)
        docs = [search_doc(i) for i in range(n)]
        coll.insert_many(docs)
        i = 0
        while True:
            d = docs[i % n]
            if op == "insert":
                coll.insert_one({**d, "_id": f"x{i}"})
            elif op == "find":
                coll.find_one({"_id": d["_id"]})
            elif op == "replace":
                coll.replace_one({"_id": d["_id"]}, {**d, "v": i})
            i += 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bin", action="append", required=True, metavar="LABEL=PATH")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-n", type=int, default=2000, help="single commands per type and round")
    parser.add_argument("--no-scan", action="store_true", help="skip the 10k-document scan")
    parser.add_argument("--hold", choices=("insert", "find", "replace"))
    args = parser.parse_args()
    bins = [(label, Path(path)) for label, path in (b.split("=", 1) for b in args.bin)]
    if args.hold:
        hold(bins[0][1], args.hold, args.n)
        return
    results: dict[str, dict[str, list[tuple[float, float]]]] = {label: {} for label, _ in bins}
    load = [os.getloadavg()[0]]
    for r in range(args.rounds):
        order = bins if r % 2 == 0 else bins[::-1]
        for label, binary in order:
            for op, value in one_round(binary, args.n, not args.no_scan).items():
                results[label].setdefault(op, []).append(value)
            load.append(os.getloadavg()[0])
        print(f"round {r + 1}/{args.rounds} done, load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
    ops = list(next(iter(results.values())))
    print(f"load average (1 min) during the run: {min(load):.2f} to {max(load):.2f}", end="")
    print(f"; rounds {args.rounds}, n {args.n}")
    header = "| command | " + " | ".join(f"{label} wall ms | {label} store CPU ms" for label, _ in bins)
    if len(bins) == 2:
        header += " | CPU change |"
    else:
        header += " |"
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for op in ops:
        cells = []
        cpus = []
        for label, _ in bins:
            walls = [w for w, _ in results[label][op]]
            cpu = statistics.median(c for _, c in results[label][op])
            cpus.append(cpu)
            cells.append(f"{statistics.median(walls):.3f} | {cpu:.3f}")
        row = f"| {op} | " + " | ".join(cells)
        if len(bins) == 2:
            row += f" | {(cpus[1] - cpus[0]) / cpus[0] * 100:+.0f} %"
        print(row + " |")


if __name__ == "__main__":
    main()
