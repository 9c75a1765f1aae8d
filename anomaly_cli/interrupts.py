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

# What a scheduler sends to stop a job: SIGTERM (pre-emption, SLURM's time
# limit) and submitit's warning before the limit, SIGUSR1 on SLURM and SIGUSR2
# from its local executor. Left to submitit, that warning re-queues the job,
# which then trains again from its first epoch over its own checkpoints.
STOPS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGUSR1", "SIGUSR2") if hasattr(signal, name)
)
HELD = (signal.SIGINT, *STOPS)


class Terminated(KeyboardInterrupt):
    """SIGTERM (or another of STOPS), handled as an interrupt so the run says how to go on.

    str() is the signal's name."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(signal.Signals(signum).name)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (and the other STOPS) raises Terminated (a KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers
        return
    previous = {sig: signal.signal(sig, _raise_terminated) for sig in STOPS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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
