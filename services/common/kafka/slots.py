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
        # Written as JSON bytes; faust hands recovered changelog values back already decoded.
        slot = raw if isinstance(raw, dict) else json.loads(raw)
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
        n = len(self._prefix)
        for table_key in list(self.table.keys()):
            if isinstance(table_key, str) and table_key.startswith(self._prefix):
                yield table_key[n:]

    def __len__(self) -> int:
        return sum(1 for _ in self)

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
                continue
            value = json.dumps(slot, separators=(",", ":")).encode()
            size += len(value)
            self.table[table_key] = value
        return size
