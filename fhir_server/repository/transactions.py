"""All-or-nothing transactions without multi-document transactions.

FerretDB has none and MongoDB has them only on replica sets, so a transaction is built
from the one atomic primitive every store has, the insert of a unique ``_id``:

1. **Journal.** The whole write set (every new version with its index values) is
   written to ``transactions`` first: parts ``{T}/{n}``, then the journal head ``{T}``
   listing the claims the transaction will make.
2. **Claims.** Each version that another writer could also take is claimed as in a
   single write (history record ``{id}/{v}``; for a client-chosen new id, a version-0
   placeholder searchable record that no search or read returns), plus one lock per
   conditional identity the transaction creates. Every claim carries ``tx: T``. A lost
   claim aborts the transaction; nothing it wrote is visible.
3. **Decision.** Inserting ``transaction_outcomes/{T}`` decides. The owner inserts it
   as committed; anyone who finds an undecided transaction older than the lease inserts
   it as aborted. The unique ``_id`` lets exactly one of them win.
4. **Apply.** A committed transaction's versions are made current (searchable records,
   heads), each carrying ``tx: T``; then its locks and journal are deleted.

Readers that meet a record carrying ``tx: T`` whose journal still exists complete the
transaction from the journal before they answer (apply is idempotent), so a reader never
returns part of one. Start-up recovery and any writer blocked by a claim settle what a
crashed process left: committed → applied from the journal, undecided → aborted after
the lease, aborted → claims removed. docs/architecture.md has the argument in full.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import orjson
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from fhir_server.repository.base import NewVersion, StoredVersion, VersionClaimed
from fhir_server.repository.group_insert import duplicates_by_caller
from fhir_server.repository.lookups import Postings, new_keys
from fhir_server.repository.records import from_record, head_of, ids_filter, record_of, search_doc_of

JOURNAL = "transactions"
OUTCOMES = "transaction_outcomes"
LOCKS = "transaction_locks"
# A journal part stays well under the 16 MiB document limit.
PART_BYTES = 4_000_000
# How long an undecided transaction may hold its claims before others may abort it:
# far longer than any request takes, so only a dead owner's transaction is aborted.
LEASE = timedelta(seconds=30)
_DONE_CACHE = 100_000


class TransactionWrites:
    """Mixed into the MongoDB repository; needs its collections and single-write steps."""

    _db: Database[dict[str, Any]]

    def _heads(self, resource_type: str) -> Collection[dict[str, Any]]:
        raise NotImplementedError

    def _search_docs(self, resource_type: str) -> Collection[dict[str, Any]]:
        raise NotImplementedError

    def _versions(self, resource_type: str) -> Collection[dict[str, Any]]:
        raise NotImplementedError

    def _history(self, resource_type: str) -> Collection[dict[str, Any]]:
        raise NotImplementedError

    def _write_current(self, resource_type: str, history_record: dict[str, Any]) -> None:
        raise NotImplementedError

    def _claimed(self, resource_type: str, id: str, version: int) -> bool:
        raise NotImplementedError

    def catch_up(self, resource_type: str, id: str) -> StoredVersion | None:
        raise NotImplementedError

    def read(self, resource_type: str, id: str) -> StoredVersion | None:
        raise NotImplementedError

    def new_record(self, new: NewVersion) -> dict[str, Any]:
        raise NotImplementedError

    _postings: Postings

    # Transactions known to be fully applied (their records need no further check).
    _applied: OrderedDict[str, None]
    _applied_lock: threading.Lock

    def _init_transactions(self) -> None:
        self._applied = OrderedDict()
        self._applied_lock = threading.Lock()

    # -- the owner's path ----------------------------------------------------------------

    def _commit_all(
        self, writes: list[NewVersion], locks: list[str], verify: Callable[[], None] | None
    ) -> list[StoredVersion]:
        tx = uuid4().hex
        records = [{**self.new_record(new), "tx": tx} for new in writes]
        kinds = [self._kind(new) for new in writes]
        claims = [
            {"c": self._versions(n.resource_type).name, "_id": f"{n.id}/{n.version}"}
            if kind == "version"
            else {"c": self._search_docs(n.resource_type).name, "_id": n.id}
            for n, kind in zip(writes, kinds, strict=True)
            if kind != "fresh"
        ] + [{"c": LOCKS, "_id": key} for key in locks]
        self._write_journal(tx, writes, kinds, records, claims)
        for new in writes:
            self._history(new.resource_type)  # the type's indexes and postings are ready
        # Before the decision: a committed version is always findable.
        self._postings.add_many(
            (new.resource_type, new.id, new_keys(new, record))
            for new, record in zip(writes, records, strict=True)
        )
        conflicts = self._make_claims(tx, writes, kinds, records, locks)
        if conflicts:
            self._decide(tx, committed=False)
            self._roll_back(tx)
            for holder in conflicts:
                self._settle_holder(holder)
            raise VersionClaimed(f"transaction lost its claim on {conflicts[0]['_id']}")
        if verify is not None:
            # A transaction that created one of our identities may have released its lock
            # just before we took it: with the locks held, look again.
            try:
                verify()
            except BaseException:
                self._decide(tx, committed=False)
                self._roll_back(tx)
                raise
        if not self._decide(tx, committed=True):
            self._roll_back(tx)  # the lease ran out and someone aborted it
            raise VersionClaimed("transaction took longer than its lease and was aborted")
        self._apply(tx, writes, kinds, records, locks, owner=True)
        return [from_record(n.resource_type, r) for n, r in zip(writes, records, strict=True)]

    @staticmethod
    def _kind(new: NewVersion) -> str:
        if new.version > 1:
            return "version"
        return "fresh" if new.fresh else "create"

    def _write_journal(
        self,
        tx: str,
        writes: list[NewVersion],
        kinds: list[str],
        records: list[dict[str, Any]],
        claims: list[dict[str, Any]],
    ) -> None:
        """Parts first, head last: a journal head always has its parts."""
        now = datetime.now(UTC)
        parts: list[dict[str, Any]] = []
        chunk: list[dict[str, Any]] = []
        size = 0
        for new, kind, record in zip(writes, kinds, records, strict=True):
            # One JSON text per part: a store encodes one string far faster than the
            # nested documents and index arrays it holds (FerretDB: ~4x less CPU).
            chunk.append({"t": new.resource_type, "k": kind, "r": {**record, "lu": record["lu"].isoformat()}})
            size += len(record.get("json") or "") + 64 * len(record.get("ix") or ()) + 256
            if size > PART_BYTES:
                parts.append(_part(tx, len(parts), now, chunk))
                chunk, size = [], 0
        if chunk:
            parts.append(_part(tx, len(parts), now, chunk))
        journal = self._db[JOURNAL]
        if parts:
            journal.insert_many(parts, ordered=True)
        journal.insert_one({"_id": tx, "at": now, "parts": len(parts), "claims": claims})

    def _make_claims(
        self,
        tx: str,
        writes: list[NewVersion],
        kinds: list[str],
        records: list[dict[str, Any]],
        locks: list[str],
    ) -> list[dict[str, Any]]:
        """Insert every claim; returns the documents of claims someone else holds."""
        now = datetime.now(UTC)
        batches: dict[str, list[dict[str, Any]]] = {}
        for new, kind, record in zip(writes, kinds, records, strict=True):
            if kind == "version":
                if new.version == 2 and new.previous is not None and new.previous.version == 1:
                    # Version 1 lives only in the head until now: keep it before it moves on.
                    with contextlib.suppress(DuplicateKeyError):
                        self._history(new.resource_type).insert_one(record_of(new.previous))
                batches.setdefault(self._history(new.resource_type).name, []).append(record)
            elif kind == "create":
                self._history(new.resource_type)  # ensures the type's indexes
                placeholder = {"_id": new.id, "v": 0, "lu": now, "del": True, "m": "", "tx": tx}
                batches.setdefault(self._search_docs(new.resource_type).name, []).append(placeholder)
        if locks:
            batches[LOCKS] = [{"_id": key, "tx": tx, "at": now} for key in locks]
        conflicts: list[dict[str, Any]] = []
        for name, docs in batches.items():
            for index in _duplicates(self._db[name], docs):
                holder = self._db[name].find_one({"_id": docs[index]["_id"]}, {"json": 0, "ix": 0, "ir": 0})
                conflicts.append({"c": name, "_id": docs[index]["_id"], "tx": (holder or {}).get("tx")})
        return conflicts

    def _decide(self, tx: str, *, committed: bool) -> bool:
        """Record the outcome unless one is recorded; True if ours is the outcome."""
        try:
            self._db[OUTCOMES].insert_one({"_id": tx, "committed": committed, "at": datetime.now(UTC)})
            return True
        except DuplicateKeyError:
            found = self._db[OUTCOMES].find_one({"_id": tx})
            return found is not None and bool(found["committed"]) == committed

    def _apply(
        self,
        tx: str,
        writes: list[NewVersion],
        kinds: list[str],
        records: list[dict[str, Any]],
        locks: list[str],
        *,
        owner: bool = False,
    ) -> None:
        """Make a committed transaction's versions current; idempotent, so the owner,
        a reader and recovery may all run it. Others check each head first (a late replay
        must not move a head back); the owner writes right after its own claims, and the
        probe for a newer version covers a writer that came after it."""
        searchable: dict[str, list[dict[str, Any]]] = {}
        heads: dict[str, list[dict[str, Any]]] = {}
        for new, kind, record in zip(writes, kinds, records, strict=True):
            if kind == "fresh":
                searchable.setdefault(new.resource_type, []).append(search_doc_of(record))
                heads.setdefault(new.resource_type, []).append(head_of(record))
            elif kind == "create":
                # Only over our own placeholder: once applied (by us or a reader) a later
                # writer may have moved the resource on, and a replay must not undo that.
                # One command each: a multi-statement update stalled FerretDB 1.24 (it keeps
                # every statement's cursor open until the command ends).
                placeholder = {"_id": new.id, "v": 0, "tx": tx}
                self._search_docs(new.resource_type).replace_one(placeholder, search_doc_of(record))
                heads.setdefault(new.resource_type, []).append(head_of(record))
            else:
                head = None if owner else self._heads(new.resource_type).find_one({"_id": new.id}, {"v": 1})
                if head is None or int(head["v"]) < new.version:
                    self._write_current(new.resource_type, record)
                    if self._claimed(new.resource_type, new.id, new.version + 1):
                        self.catch_up(new.resource_type, new.id)
        for resource_type, docs in searchable.items():
            _duplicates(self._search_docs(resource_type), docs)
        for resource_type, docs in heads.items():
            _duplicates(self._heads(resource_type), docs)
        if locks:
            # One command: the lock collection only ever holds in-flight locks, so even a
            # store that scans for ``$in`` reads a handful of small documents.
            self._db[LOCKS].delete_many({"_id": {"$in": locks}, "tx": tx})
        self._forget_journal(tx)
        self._remember_applied(tx)

    def _roll_back(self, tx: str) -> None:
        """Remove an aborted transaction's claims (only those still carrying its mark)."""
        journal = self._db[JOURNAL].find_one({"_id": tx})
        if journal is None:
            return
        for claim in journal["claims"]:
            self._db[claim["c"]].delete_one({"_id": claim["_id"], "tx": tx})
        self._forget_journal(tx)

    def _forget_journal(self, tx: str) -> None:
        journal = self._db[JOURNAL]
        head = journal.find_one({"_id": tx}, {"parts": 1})
        if head is not None:
            for n in range(int(head["parts"])):
                journal.delete_one({"_id": f"{tx}/{n}"})
            journal.delete_one({"_id": tx})

    # -- everyone else's path ------------------------------------------------------------

    def _remember_applied(self, tx: str) -> None:
        with self._applied_lock:
            self._applied[tx] = None
            if len(self._applied) > _DONE_CACHE:
                self._applied.popitem(last=False)

    def _is_applied(self, tx: str) -> bool:
        return tx in self._applied

    def settle(self, tx: str, *, wait: bool, abandon: bool = False) -> bool | None:
        """Bring a transaction to rest as far as allowed; True if committed (and now
        applied), False if aborted, None if still undecided (only when ``wait`` is False
        while its owner's lease runs). ``abandon`` aborts it undecided, lease or not:
        only for a caller that knows its owner is dead."""
        if self._is_applied(tx):
            return True
        delay = 0.001
        while True:
            outcome = self._db[OUTCOMES].find_one({"_id": tx})
            journal = self._db[JOURNAL].find_one({"_id": tx})
            if outcome is not None and outcome["committed"]:
                if journal is not None:
                    self._replay(tx, journal)
                self._remember_applied(tx)
                return True
            if outcome is not None or journal is None:
                # Aborted, or never got as far as a journal head: nothing of it is visible.
                if journal is not None:
                    self._roll_back(tx)
                return False
            if abandon or datetime.now(UTC) - _aware(journal["at"]) > LEASE:
                self._decide(tx, committed=False)
                continue
            if not wait:
                return None
            time.sleep(delay)  # the owner is alive and about to decide: back off and look again
            delay = min(delay * 2, 0.05)

    def _replay(self, tx: str, journal: dict[str, Any]) -> None:
        writes: list[NewVersion] = []
        kinds: list[str] = []
        records: list[dict[str, Any]] = []
        for n in range(int(journal["parts"])):
            part = self._db[JOURNAL].find_one({"_id": f"{tx}/{n}"})
            if part is None:
                return  # the owner finished and removed the journal while we read it
            for entry in orjson.loads(part["w"]):
                record = {**entry["r"], "lu": datetime.fromisoformat(entry["r"]["lu"])}
                writes.append(_as_new(entry["t"], record))
                kinds.append(entry["k"])
                records.append(record)
        locks = [c["_id"] for c in journal["claims"] if c["c"] == LOCKS]
        self._apply(tx, writes, kinds, records, locks)

    def _settle_holder(self, holder: dict[str, Any]) -> None:
        """Wait until whoever holds a claim we lost has finished with it."""
        if holder.get("tx"):
            self.settle(holder["tx"], wait=True)
        elif holder["c"] != LOCKS:
            resource_type = holder["c"].split("_", 1)[1]
            self.catch_up(resource_type, str(holder["_id"]).split("/")[0])

    def visible(self, record: dict[str, Any]) -> bool:
        """Whether a record may be returned: a record marked by a transaction only once
        that transaction committed, and then only after it was applied in full."""
        tx = record.get("tx")
        if tx is None or self._is_applied(tx):
            return True
        return self.settle(tx, wait=False) is True

    def unsettled(self, records: Iterable[dict[str, Any]]) -> bool:
        """Settle the transactions these records belong to; True if any had to be
        completed or hidden (the caller's query result may be stale: run it again)."""
        pending = list({r["tx"] for r in records if r.get("tx") and not self._is_applied(r["tx"])})
        if not pending:
            return False
        # Usually every one was applied long ago (by another process): two queries say so,
        # and the caller's result stands. A journal is deleted only after its apply.
        outcomes = {d["_id"]: d for d in self._db[OUTCOMES].find(ids_filter(pending))}
        journals = {d["_id"] for d in self._db[JOURNAL].find(ids_filter(pending), {"_id": 1})}
        stale = False
        for tx in pending:
            outcome = outcomes.get(tx)
            if outcome is not None and outcome["committed"] and tx not in journals:
                self._remember_applied(tx)
                continue
            self.settle(tx, wait=False)
            stale = True
        return stale

    def recover_transactions(self, *, abandon: bool = False) -> int:
        """Settle every transaction a dead process left behind (start-up). ``abandon``
        also aborts undecided ones whose lease still runs: right when no other process
        can be writing (a single-node start), wrong beside live writers."""
        settled = 0
        journal = self._db[JOURNAL]
        heads = [d["_id"] for d in journal.find({"claims": {"$exists": True}}, {"_id": 1})]
        for tx in heads:
            if self.settle(tx, wait=False, abandon=abandon) is not None:
                settled += 1
        cutoff = datetime.now(UTC) - LEASE
        for part in journal.find({"w": {"$exists": True}}, {"tx": 1, "at": 1}):
            # Parts whose head was never written (the owner died first) and nobody owns.
            if _aware(part["at"]) < cutoff and journal.find_one({"_id": part["tx"]}, {"_id": 1}) is None:
                journal.delete_one({"_id": part["_id"]})
        for lock in self._db[LOCKS].find({}):
            if journal.find_one({"_id": lock["tx"]}, {"_id": 1}) is None:
                self._db[LOCKS].delete_one({"_id": lock["_id"]})
        return settled


def _part(tx: str, n: int, now: datetime, chunk: list[dict[str, Any]]) -> dict[str, Any]:
    return {"_id": f"{tx}/{n}", "tx": tx, "at": now, "w": orjson.dumps(chunk).decode()}


def _duplicates(collection: Collection[dict[str, Any]], docs: list[dict[str, Any]]) -> list[int]:
    """Insert documents (one round trip); the indexes of those whose ``_id`` was taken."""
    return sorted(duplicates_by_caller(collection, [docs])[0])


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _as_new(resource_type: str, record: dict[str, Any]) -> NewVersion:
    """The identity of a journal record, as :meth:`_apply` reads it (not the content:
    the record itself is what is written)."""
    return NewVersion(
        resource_type=resource_type,
        id=record["id"],
        version=int(record["v"]),
        last_updated=record["lu"],
        method=record.get("m", ""),
        resource=None,
        deleted=bool(record.get("del")),
    )
