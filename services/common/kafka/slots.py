"""A partition engine's slots over a faust table: read-through, written back after each batch.

Table keys are ``"<partition>/<slot key>"``, so a worker finds its partition's slots by prefix
after a (re)assignment, and values are the slot's JSON bytes. Writes are buffered: the engine
changes slots while it works through a batch; the worker sends the batch's outputs, waits until
the broker has them, and only then writes the changed slots (each becomes one changelog record of
that slot's size). A crash before that leaves the old state and uncommitted offsets, so the batch
is done again and produces the same outputs, which everyone downstream recognises.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Iterator, MutableMapping, Optional

CACHE_SIZE = 4096  # parsed slots kept for the next steps; the rest stay serialised in the table


class TableSlots(MutableMapping):
    def __init__(self, table: Any, partition: int, cache_size: int = CACHE_SIZE) -> None:
        self.table, self.partition = table, partition
        self._prefix = f"{partition}/"
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._cache_size = cache_size
        self._unwritten: dict[str, Any] = {}  # set since the last write: never evicted
        self._keys: Optional[set[str]] = None  # this partition's slot keys, read once, then kept up to date

    def table_key(self, key: str) -> str:
        return self._prefix + key

    def __getitem__(self, key: str) -> Any:
        if key in self._unwritten:
            if self._unwritten[key] is None:
                raise KeyError(key)  # deleted, not yet written
            return self._unwritten[key]
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        raw = self.table.get(self.table_key(key))
        if raw is None:
            raise KeyError(key)
        # Written as JSON bytes; faust hands recovered changelog values back already decoded, and
        # then as the very object its store keeps: the engine changes slots in place, so a batch that
        # never got written (a rebalance cancelled it) would live on in the table and the next worker
        # would skip its redelivered inputs as done. Always a copy of its own.
        slot = json.loads(json.dumps(raw) if isinstance(raw, dict) else raw)
        self._remember(key, slot)
        return slot

    def get(self, key: str, default: Optional[Any] = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __setitem__(self, key: str, value: Any) -> None:
        self._unwritten[key] = value  # written by ``write`` when the batch is safe
        self._remember(key, value)

    def __delitem__(self, key: str) -> None:
        self._cache.pop(key, None)
        self._unwritten[key] = None  # a tombstone in the changelog when the batch is written

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._index()))

    def __len__(self) -> int:
        return len(self._index())

    def _index(self) -> set[str]:
        """This partition's slot keys: read once (from the partition's own RocksDB, else by one
        pass over the table), then kept up to date by ``write``, so no later step scans the table."""
        if self._keys is None:
            n = len(self._prefix)
            self._keys = {k[n:] for k in self._table_keys() if k.startswith(self._prefix)}
        return self._keys

    def _table_keys(self) -> Iterator[str]:
        store = getattr(self.table, "data", None)
        db_for = getattr(store, "_db_for_partition", None)
        visible = getattr(store, "_visible_keys", None)
        if db_for is not None and visible is not None:  # faust's RocksDB store: one database per partition
            for raw in visible(db_for(self.partition)):
                yield raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            return
        for table_key in list(self.table.keys()):
            if isinstance(table_key, str):
                yield table_key

    def _remember(self, key: str, slot: Any) -> None:
        self._cache[key] = slot
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def write(self, changed: dict[str, Any]) -> int:
        """Store changed slots (None deletes one); call inside this partition's table context.
        Returns the bytes written."""
        size = 0
        self._unwritten.clear()
        for key, slot in changed.items():
            table_key = self.table_key(key)
            if slot is None:
                if table_key in self.table:
                    del self.table[table_key]
                if self._keys is not None:
                    self._keys.discard(key)
                continue
            if self._keys is not None:
                self._keys.add(key)
            value = json.dumps(slot, separators=(",", ":")).encode()
            size += len(value)
            self.table[table_key] = value
        return size
