"""A partition's state on a worker: a local copy of the partition's changelog, in memory or RocksDB.

The changelog topic (compacted, one partition per input partition, key = slot key, value = the
slot's JSON or a tombstone) is the state; a store is a copy of it that knows how far it goes
(``changelog_offset``: the next changelog offset not yet in the copy). A worker that takes over a
partition reads the changelog from there to its end (``restore``): everything for a new memory
copy, the tail for a RocksDB copy kept on disk from an earlier assignment or run. Every write
after a batch goes to the changelog first, then into the copy with the new offset, in one step.

The keys a store lists are the keys it holds, by its own public API (a dict's keys, RocksDB's
iterator): nothing is guessed from another library's storage format.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from typing import Iterable, Iterator, Optional, Protocol

log = logging.getLogger("vpa.kafka.state")

# RocksDB keys of the copy's own bookkeeping; slot keys never start with NUL
_OFFSET_KEY = b"\x00changelog_offset"
_WRITTEN_KEY = b"\x00written_at"
# A copy older than this is not trusted for a tail read: compaction may have removed tombstones
# (delete.retention.ms, one day by default) that it never saw, so it is read again from the start.
STALE_AFTER_SECONDS = 12 * 3600


class PartitionStore(Protocol):
    changelog_offset: int

    def get(self, key: str) -> Optional[bytes]: ...

    def keys(self) -> Iterator[str]: ...

    def __len__(self) -> int: ...

    def apply(self, items: Iterable[tuple[str, Optional[bytes]]], changelog_offset: int) -> None: ...

    def close(self) -> None: ...


class MemoryStore:
    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self.changelog_offset = 0

    def get(self, key: str) -> Optional[bytes]:
        return self._data.get(key)

    def keys(self) -> Iterator[str]:
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def apply(self, items: Iterable[tuple[str, Optional[bytes]]], changelog_offset: int) -> None:
        for key, value in items:
            if value is None:
                self._data.pop(key, None)
            else:
                self._data[key] = value
        self.changelog_offset = max(self.changelog_offset, changelog_offset)

    def close(self) -> None:
        pass


class RocksStore:
    """One RocksDB database per partition under ``folder`` (rocksdict, raw bytes keys and values)."""

    def __init__(self, folder: str) -> None:
        from rocksdict import Options, Rdict

        os.makedirs(folder, exist_ok=True)
        self.folder = folder
        self._db = Rdict(folder, Options(raw_mode=True))
        raw = self._db.get(_OFFSET_KEY)
        written = self._db.get(_WRITTEN_KEY)
        self.changelog_offset = int(raw) if raw is not None else 0
        self.written_at = float(written) if written is not None else 0.0

    def get(self, key: str) -> Optional[bytes]:
        return self._db.get(key.encode())

    def keys(self) -> Iterator[str]:
        for raw in self._db.keys():
            if not raw.startswith(b"\x00"):
                yield raw.decode("utf-8")

    def __len__(self) -> int:
        return sum(1 for _ in self.keys())

    def apply(self, items: Iterable[tuple[str, Optional[bytes]]], changelog_offset: int) -> None:
        from rocksdict import WriteBatch

        batch = WriteBatch(raw_mode=True)
        for key, value in items:
            if value is None:
                batch.delete(key.encode())
            else:
                batch.put(key.encode(), value)
        self.changelog_offset = max(self.changelog_offset, changelog_offset)
        self.written_at = time.time()
        batch.put(_OFFSET_KEY, str(self.changelog_offset).encode())
        batch.put(_WRITTEN_KEY, repr(self.written_at).encode())
        self._db.write(batch)

    def close(self) -> None:
        try:
            self._db.close()
        except Exception:  # noqa: BLE001 - closed already
            pass

    @staticmethod
    def wipe(folder: str) -> None:
        shutil.rmtree(folder, ignore_errors=True)


def open_store(kind: str, folder: str) -> PartitionStore:
    """A store of ``kind`` ("memory" or "rocksdb"); a RocksDB copy too old for a tail read is
    wiped, so the changelog is read again from its start."""
    if kind == "memory":
        return MemoryStore()
    store = RocksStore(folder)
    if store.changelog_offset and time.time() - store.written_at > STALE_AFTER_SECONDS:
        log.info("%s: local state last written %.0f h ago; reading the whole changelog again", folder,
                 (time.time() - store.written_at) / 3600)
        store.close()
        RocksStore.wipe(folder)
        store = RocksStore(folder)
    return store


class StateFolder:
    """The folder of one worker process's RocksDB copies: ``<base>/<group>/<name>``, held with a
    lock for the process's life. ``name`` is ``VPA_INSTANCE_ID`` when set, else the first free
    ``worker-<n>``: a worker restarted on the same machine finds its own copies again, and two
    workers sharing ``VPA_STATE_DIR`` never open the same database."""

    def __init__(self, base: str, group: str, instance_id: Optional[str] = None) -> None:
        import fcntl

        names = [instance_id] if instance_id else [f"worker-{n}" for n in range(1000)]
        for name in names:
            folder = os.path.join(base, group, name)
            os.makedirs(folder, exist_ok=True)
            fd = os.open(os.path.join(folder, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.path, self._fd = folder, fd
            return
        raise RuntimeError(f"every state folder under {os.path.join(base, group)} is in use by another worker "
                           f"(VPA_INSTANCE_ID={instance_id!r}): give each worker its own VPA_INSTANCE_ID")

    def partition(self, p: int) -> str:
        return os.path.join(self.path, f"partition-{p}")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


BATCH_HEADER = "vpa-batch"  # on every changelog record: the id of the batch it was written in
BATCH_END_KEY = "__meta__"  # the last record of every batch


class BatchReader:
    """Applies a changelog read from some offset without ever applying a batch in part.

    Every record carries its batch's id (``<writer>:<n>``, BATCH_HEADER) and every batch ends with
    the meta slot. A batch's records are held until it is proven whole, then released in log order:
    - its meta record is read (everything held before that meta is released with it: earlier
      batches are proven whole or were repaired, below), or
    - a record of a later batch of the same writer is read: a writer sends a batch only after the
      broker took the whole previous one. Compaction keeps only the last meta record, so this is
      what releases the batches of a compacted changelog.
    A batch cut off by its writer's death stays held; the worker that takes the partition over
    finds its keys in ``unfinished_keys`` and writes their values of before that batch again as its
    first batch (stream_app), so a later reader that releases the cut-off records with that batch
    ends with the repaired values. Records without a batch id (the earlier runner's) are applied
    as they come when nothing is held."""

    def __init__(self) -> None:
        self._held: list[tuple[str, Optional[bytes]]] = []
        self._last: Optional[tuple[str, int]] = None  # (writer, n) of the last record held

    def add(self, key: str, value: Optional[bytes], batch: Optional[bytes]) -> list[tuple[str, Optional[bytes]]]:
        """The records that may be applied now (in log order)."""
        tag = _batch_tag(batch)
        if tag is None:
            if not self._held:
                return [(key, value)]
            self._held.append((key, value))
            return []
        out: list[tuple[str, Optional[bytes]]] = []
        if self._last is not None and self._last[0] == tag[0] and tag[1] > self._last[1]:
            out, self._held = self._held, []  # the writer went on: what it wrote before is whole
        self._held.append((key, value))
        self._last = tag
        if key == BATCH_END_KEY:
            out += self._held
            self._held, self._last = [], None
        return out

    @property
    def unfinished(self) -> int:
        """Records held because their batch never ended (so far)."""
        return len(self._held)

    def unfinished_keys(self) -> list[str]:
        return sorted({k for k, _ in self._held})


def _batch_tag(batch: Optional[bytes]) -> Optional[tuple[str, int]]:
    if batch is None:
        return None
    writer, _, n = batch.decode("utf-8", "replace").rpartition(":")
    try:
        return writer, int(n)
    except ValueError:
        return writer, 0


def slot_key(raw_key: Optional[bytes]) -> Optional[str]:
    """The slot key of a changelog record. Records written by the earlier faust runner carry the
    key JSON-encoded with a partition prefix (``"3/V-1042"``); they are read alike."""
    if not raw_key:
        return None
    key = raw_key.decode("utf-8", "replace")
    if key.startswith('"'):
        try:
            key = json.loads(key)
        except ValueError:
            return None
        head, sep, rest = key.partition("/")
        if sep and head.isdigit():
            key = rest
    return key


def slot_value(raw: Optional[bytes]) -> Optional[bytes]:
    """The slot's JSON bytes of a changelog record (None: a tombstone). faust wrote the JSON bytes
    as a JSON string; read alike."""
    if raw is None:
        return None
    if raw[:1] == b'"':
        try:
            inner = json.loads(raw)
        except ValueError:
            return raw
        if isinstance(inner, str):
            return inner.encode()
    return raw
