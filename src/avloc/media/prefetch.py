"""Run an iterator in a background thread, a few items ahead of its consumer.

Feature extraction decodes and resizes frames (PyAV, torch's resize: both release the GIL in their C code)
while the networks run on the frames before them (the inference engines release it too), so on two or more
cores the video's decoding costs no wall time beside the networks. The items, their order and any exception
are exactly those of the plain iterator.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield what ``items`` yields, produced by a daemon thread at most ``depth`` items ahead.

    An exception raised by ``items`` is re-raised here, at the point where the consumer would have met it.
    A consumer that stops early (``close``, an exception) stops the producer, which closes ``items``."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(entry: tuple[object, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer as it is
            put((_END, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name="avloc-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if item is _END:
                if exc is not None:
                    raise exc
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
