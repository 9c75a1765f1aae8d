"""Ctrl-C and SIGTERM: both end a run the same way, and neither is lost.

SIGTERM (how SLURM and other schedulers pre-empt a job) becomes a
`Terminated` KeyboardInterrupt, so a pre-empted run says how to go on just
as a Ctrl-C'd one does.

While a checkpoint is written both are held and re-sent when the write is
done. Keras' own saving code wraps its temporary weights file in a bare
`except:`, which caught a KeyboardInterrupt that landed there and went on
training as if nothing had happened; holding the signal also means the
interrupt never leaves an epoch half-recorded.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

HELD = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as an interrupt so the run says how to go on."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises Terminated (a KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then deliver the first one."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, frame: received.append(signum)) for sig in HELD
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            signal.raise_signal(received[0])  # the handler it would have met runs now
