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
    """Applies a changelog read from some offset batch by batch: a batch's records are held until
    its last record (the meta slot) is read, and a batch that never ends (its writer died halfway
    through sending it) is never applied. The worker that took over did that batch's work again
    from the state before it, so nothing of it is lost. Records without a batch id (written by the
    earlier runner) are applied as they come."""

    def __init__(self) -> None:
        self._open: dict[bytes, list[tuple[str, Optional[bytes]]]] = {}

    def add(self, key: str, value: Optional[bytes], batch: Optional[bytes]) -> list[tuple[str, Optional[bytes]]]:
        """The records that may be applied now (in log order)."""
        if batch is None:
            return [(key, value)]
        held = self._open.setdefault(batch, [])
        held.append((key, value))
        if key != BATCH_END_KEY:
            return []
        return self._open.pop(batch)

    @property
    def unfinished(self) -> int:
        """Records of batches that never ended (so far)."""
        return sum(len(v) for v in self._open.values())


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
