"""When a run writes its checkpoints: what saving may cost, against what it protects.

Writing the latest state (the model with its optimizer's state, which for Adam
is three times the weights) costs seconds for a large model: seed 000's model
(48.6M parameters as adx builds it) writes 0.6 GB, seconds on a laptop CPU,
where a GPU may train an epoch of it in about a second (an estimate).
`trainer.checkpoint_every=auto` therefore saves the latest state only while
checkpoints, counting the final one, stay within
CHECKPOINT_SHARE of the training time so far; a small model, whose saves take
milliseconds, is still saved after (almost) every epoch. An integer saves every
that many epochs whatever it costs. Training always ends with a saved state.

Until a save has been timed, its cost is estimated from the bytes to write at a
deliberately low speed, so the first one is not taken too early.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Auto checkpoints keep the time spent saving within this share of training time.
CHECKPOINT_SHARE = 0.05
# Before the first timed save: a slow disk's speed plus the cost of any file at all.
ASSUMED_BYTES_PER_SECOND = 150e6
ASSUMED_SECONDS_PER_FILE = 0.05


def checkpoint_interval(value: object) -> int | None:
    """trainer.checkpoint_every as a number of epochs; None for auto (already checked)."""
    return None if value in (None, "auto") else int(value)  # type: ignore[call-overload]


class CheckpointBudget:
    """Decides after each epoch whether the latest state is saved now.

    `every` is an epoch interval, or None for auto. The caller times its writes
    with `timed(kind)`, which also keeps `spent` (all the seconds saving took).
    """

    def __init__(
        self,
        every: int | None,
        share: float = CHECKPOINT_SHARE,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.every = every
        self.share = share
        self.clock = clock
        self.started = clock()
        self.spent = 0.0
        self._measured: dict[str, float] = {}

    def expected(self, kind: str, nbytes: int) -> float:
        """Seconds a save of `kind` ("best", "last") is expected to take."""
        if kind in self._measured:
            return self._measured[kind]
        return ASSUMED_SECONDS_PER_FILE + nbytes / ASSUMED_BYTES_PER_SECOND

    def due(self, epoch: int, now: float, final: float) -> bool:
        """Whether epoch `epoch` (1-based) is saved, given the expected seconds of
        this save (`now`) and of the save that ends training (`final`)."""
        if self.every is not None:
            return epoch % self.every == 0
        # Were training to end right after this save, with its final save, would
        # everything saving cost still be within the share of the time so far?
        cost = self.spent + now + final
        return cost <= self.share * (self.clock() - self.started + now + final)

    @contextmanager
    def timed(self, kind: str) -> Iterator[None]:
        began = self.clock()
        try:
            yield
        finally:
            took = self.clock() - began
            self._measured[kind] = took
            self.spent += took
