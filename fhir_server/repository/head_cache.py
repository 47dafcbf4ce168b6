"""Current versions served from memory, kept exact across processes by a write clock.

Why: on the embedded store a read by id spends more time in the store round trip
(pymongo, the store's own work, the hand-offs of the GIL around the socket) than in all
the rest of the request. A cache of heads removes it, but only if it can never serve a
version older than one already written: FerretDB has no change streams to learn of
other processes' writes, so the processes tell each other through shared memory.

**The write clock.** A file every process of this host that uses the database maps into
memory: ``SLOTS`` 64-bit words, one per slot, and a resource belongs to slot
``crc32("Type/id")``. A word's high 16 bits count the writers of that slot in flight,
its low 48 bits the writes finished. A writer of a head calls ``begin`` before its store
write and ``end`` after it (both under a lock: a thread lock, and ``flock`` between
processes).

**The rule.** A reader takes the slot's word ``w`` *before* it reads the store and keeps
what it read under ``w``, unless a writer was in flight at ``w``. A later reader uses the
entry only while the word is still ``w``. A write the entry may have missed landed in the
store after the entry's store read began, so its ``begin`` came after ``w`` was taken or
it was in flight at ``w``: either way the word is no longer ``w`` from its ``begin`` on,
and its ``end`` comes before it is acknowledged. So no reader gets the entry after such a
write is acknowledged; before that, the old version is a valid answer.

**Crashes.** A writer that dies between ``begin`` and ``end`` leaves its slot counted as
in flight: reads of its slot then always go to the store (safe, and 1/65,536 of the ids).
``interop run`` clears the table at start, when no process can be writing. A removed
file is followed (``WriteClock``): writers at once, readers within a second.

**Scope.** Only processes on this host move the clock, so the cache may be on only where
every writer of the database is on this host: the embedded store (loopback only, started
by ``interop run``), or a deployment that says so with ``INTEROP_READ_CACHE=on``.
Writers always move the clock whether or not their own process caches.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import stat
import struct
import tempfile
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from fhir_server.repository.base import StoredVersion

SLOTS = 1 << 16
_WORD = struct.Struct("@Q")  # native: one aligned 8-byte load or store
_IN_FLIGHT = 1 << 48
_FINISHED_MASK = _IN_FLIGHT - 1
_WORD_MASK = (1 << 64) - 1
# The database's identity names its clock file: every URI that reaches the database
# (localhost, 127.0.0.1, a replica-set string) finds the same clock.
IDENTITY_COLLECTION = "store_identity"
_CLOCK_ID = "write-clock"


def clock_directory() -> Path:
    """This user's own directory in shared memory where the system has it (no disk
    writes), else in the temp directory. Refused if anyone else could write there: whoever
    can write the clock can make a reader serve an old version."""
    shm = Path("/dev/shm")  # noqa: S108  (checked below: ours, and closed to others)
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    directory = base / f"interop-clocks-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"{directory} must be a directory of this user, closed to others")
    return directory


def database_token(db: Database[dict[str, Any]]) -> str:
    """The database's random identity, created by the first process that asks."""
    identity = db[IDENTITY_COLLECTION]
    found = identity.find_one({"_id": _CLOCK_ID})
    if found is None:
        with contextlib.suppress(DuplicateKeyError):
            identity.insert_one({"_id": _CLOCK_ID, "token": uuid4().hex})
        found = identity.find_one({"_id": _CLOCK_ID})
    assert found is not None
    return str(found["token"])


def slot_of(key: str) -> int:
    return zlib.crc32(key.encode()) & (SLOTS - 1)


class WriteClock:
    """The shared table of slot words (see the module docstring).

    A word as returned also carries the generation of the file it was read from: if the
    file is removed (a temp-directory cleaner, systemd's ``RemoveIPC``), the next process
    makes a new one; writers move to it at their next step and readers within
    ``recheck_seconds``, and words of the new file never equal those of the old.
    """

    def __init__(self, path: Path, *, recheck_seconds: float = 1.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._generation = 0
        self._retired: list[mmap.mmap] = []
        self._open()

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        info = os.fstat(self._fd)
        if info.st_size < SLOTS * _WORD.size:
            os.ftruncate(self._fd, SLOTS * _WORD.size)  # sparse: pages appear as slots are used
        self._map = mmap.mmap(self._fd, SLOTS * _WORD.size)
        # Read together by word(): a word is never paired with another file's generation.
        self._current = (self._generation, self._map)
        self._inode = (info.st_dev, info.st_ino)
        self._next_check = time.monotonic() + self._recheck_seconds

    def _follow_file(self) -> None:
        """Map the file now at ``path`` if it is not ours any more (call holding _lock)."""
        try:
            info = os.stat(self.path)
            current: tuple[int, int] | None = (info.st_dev, info.st_ino)
        except FileNotFoundError:
            current = None
        if current != self._inode:
            # The old map stays open: a reader may still be reading it (a few per process
            # lifetime at most, 512 KiB of address space each).
            self._retired.append(self._map)
            os.close(self._fd)
            self._generation += 1
            self._open()
        self._next_check = time.monotonic() + self._recheck_seconds

    def word(self, key: str) -> int:
        if time.monotonic() >= self._next_check:
            with self._lock:
                self._follow_file()
        generation, mapped = self._current
        return (generation << 64) | _WORD.unpack_from(mapped, slot_of(key) * _WORD.size)[0]

    @contextlib.contextmanager
    def writing(self, keys: Iterable[str]) -> Iterator[None]:
        """Around a store write that may change these resources' heads."""
        slots = sorted({slot_of(key) for key in keys})
        began = self._move(slots, _IN_FLIGHT)
        try:
            yield
        finally:
            self._move(slots, 1 - _IN_FLIGHT, began=began)

    def clear(self) -> None:
        """Forget writers in flight and invalidate every entry anywhere: only when no
        process can be writing (``interop run`` at start)."""
        with self._locked():
            for slot in range(SLOTS):
                offset = slot * _WORD.size
                (value,) = _WORD.unpack_from(self._map, offset)
                if value:
                    _WORD.pack_into(self._map, offset, ((value & _FINISHED_MASK) + 1) & _FINISHED_MASK)

    def _move(self, slots: list[int], delta: int, began: int | None = None) -> int:
        """Add ``delta`` to the slots' words; the generation written to. An end in another
        file than its begin only counts a finished write there."""
        with self._locked():
            if began is not None and began != self._generation:
                delta = 1
            for slot in slots:
                offset = slot * _WORD.size
                (value,) = _WORD.unpack_from(self._map, offset)
                _WORD.pack_into(self._map, offset, (value + delta) & _WORD_MASK)
            return self._generation

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:  # threads share the descriptor, so flock alone does not exclude them
            self._follow_file()  # writers always write to the file readers will find
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            for mapped in (*self._retired, self._map):
                mapped.close()
            os.close(self._fd)


def quiet(word: int) -> bool:
    """No writer of the slot in flight."""
    return word & _WORD_MASK < _IN_FLIGHT


# What a cache entry keeps of a head: a new StoredVersion is built on every hit, so no
# caller ever shares (and could change) another's parsed resource.
_Entry = tuple[int, int, datetime, bool, str, bytes | None]


def _size(raw: bytes | None) -> int:
    """What an entry is counted as: its JSON and about 200 bytes of the rest."""
    return len(raw or b"") + 200


class HeadCache:
    """Least-recently-used heads of one process, bounded in bytes."""

    def __init__(self, clock: WriteClock, max_bytes: int) -> None:
        self.clock = clock
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, resource_type: str, id: str, word: int) -> StoredVersion | None:
        key = f"{resource_type}/{id}"
        entry = self._entries.get(key)
        if entry is None or entry[0] != word or not quiet(word):
            return None
        with self._lock, contextlib.suppress(KeyError):
            self._entries.move_to_end(key)
        _, version, last_updated, deleted, method, raw = entry
        return StoredVersion(resource_type, id, version, last_updated, deleted, method, raw)

    def put(self, stored: StoredVersion, word: int) -> None:
        """Keep ``stored``, read from the store after ``word`` was taken. (An entry whose
        slot moved on since is of no use: ``get`` would refuse it, so it is not kept.)"""
        key = stored.key
        if not quiet(word) or self.clock.word(key) != word:
            return
        size = _size(stored.raw)
        if size > self._max_bytes // 8:
            return
        entry = (word, stored.version, stored.last_updated, stored.deleted, stored.method, stored.raw)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= _size(old[5])
            self._entries[key] = entry
            self._bytes += size
            while self._bytes > self._max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= _size(evicted[5])
