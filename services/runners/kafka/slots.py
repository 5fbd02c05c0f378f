"""A partition engine's slots over the partition's store: read-through, written back after a batch.

Values are the slot's JSON bytes. Writes are buffered: the engine changes slots while it works
through a batch; the worker sends the batch's outputs, waits until the broker has them, then sends
the changed slots to the changelog (one record per slot, of that slot's size), waits again, and
only then puts them into the local copy and commits the inputs. A crash before that leaves the old
state, so the batch is done again and produces the same outputs, which everyone downstream
recognises.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator, MutableMapping, Optional

import msgspec

from services.engine.records import META_SLOT
from services.runners.kafka.state_store import PartitionStore

CACHE_SIZE = 4096  # parsed slots kept for the next steps; the rest stay serialised in the store


# A slot is compact UTF-8 JSON in the changelog and the local copy, encoded and read in C.
_JSON = msgspec.json.Encoder()
_JSON_READ: msgspec.json.Decoder[Any] = msgspec.json.Decoder()


def encode_slot(slot: Any) -> bytes:
    """A slot as the changelog and the local copy hold it (what ``bench_state.py`` measures)."""
    return _JSON.encode(slot)


class TableSlots(MutableMapping):
    def __init__(self, store: PartitionStore, cache_size: int = CACHE_SIZE) -> None:
        self.store = store
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._cache_size = cache_size
        self._unwritten: dict[str, Any] = {}  # set since the last write: never evicted
        self._keys: Optional[set[str]] = None  # the store's keys, read once, then kept up to date

    def __getitem__(self, key: str) -> Any:
        if key in self._unwritten:
            if self._unwritten[key] is None:
                raise KeyError(key)  # deleted, not yet written
            return self._unwritten[key]
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        raw = self.store.get(key)
        if raw is None:
            raise KeyError(key)
        slot = _JSON_READ.decode(raw)  # a copy of its own: the engine changes slots in place
        self._remember(key, slot)
        return slot

    def get(self, key: str, default: Optional[Any] = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __setitem__(self, key: str, value: Any) -> None:
        self._unwritten[key] = value  # written by ``encode``/``stored`` when the batch is safe
        self._remember(key, value)

    def __delitem__(self, key: str) -> None:
        self._cache.pop(key, None)
        self._unwritten[key] = None  # a tombstone in the changelog when the batch is written

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._index()))

    def __len__(self) -> int:
        return len(self._index())

    def _index(self) -> set[str]:
        if self._keys is None:
            self._keys = set(self.store.keys())
        return self._keys

    def _remember(self, key: str, slot: Any) -> None:
        self._cache[key] = slot
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def encode(self, changed: dict[str, Any]) -> list[tuple[str, Optional[bytes]]]:
        """The changelog records of ``changed`` slots (None deletes one)."""
        out: list[tuple[str, Optional[bytes]]] = []
        # The meta slot (clock, input positions) last, always: it ends the batch (state_store.BatchReader).
        changed = {**changed, META_SLOT: changed.get(META_SLOT) or self.get(META_SLOT) or {}}
        for key in sorted(changed, key=lambda k: k == META_SLOT):
            slot = changed[key]
            out.append((key, None if slot is None else encode_slot(slot)))
        return out

    def stored(self, records: list[tuple[str, Optional[bytes]]], changelog_offset: int) -> None:
        """The changelog has ``records``: into the local copy, the key index kept up to date."""
        self._unwritten.clear()
        self.store.apply(records, changelog_offset)
        if self._keys is not None:
            for key, value in records:
                if value is None:
                    self._keys.discard(key)
                else:
                    self._keys.add(key)
