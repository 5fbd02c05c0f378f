"""Progress bars for long runs (``vpa replay``, ``vpa simulate``), on stderr and only for a person.

A bar appears only when stderr is a terminal and the work is large; piped, redirected or small
runs stay quiet, so scripts and logs never see control characters.
"""
from __future__ import annotations

import sys
from typing import Iterable, Iterator, Optional, TextIO, TypeVar

T = TypeVar("T")


class _Quiet:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def shows(total: int, threshold: int, stream: Optional[TextIO] = None) -> bool:
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return total >= threshold and bool(isatty and isatty())


def bar(total: int, desc: str, unit: str, threshold: int, stream: Optional[TextIO] = None):  # noqa: ANN201
    """An object with ``update(n)`` and ``close()``: a tqdm bar, or one that does nothing."""
    stream = stream if stream is not None else sys.stderr
    if not shows(total, threshold, stream):
        return _Quiet()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=stream, unit_scale=total >= 10_000, leave=False,
                mininterval=0.5)


def track(items: Iterable[T], total: int, desc: str, unit: str, threshold: int,
          stream: Optional[TextIO] = None) -> Iterator[T]:
    """Iterate ``items``, advancing a bar (see ``bar``) by one per item."""
    progress = bar(total, desc, unit, threshold, stream)
    if isinstance(progress, _Quiet):
        yield from items
        return
    try:
        for item in items:
            yield item
            progress.update(1)
    finally:
        progress.close()
