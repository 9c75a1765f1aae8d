"""Turn a trained model into per-sample scores, once or by Monte Carlo dropout.

With `scoring.mc_dropout.samples=T` (T >= 2), every batch is scored T times
with dropout switched on (seed 002, sec. 3.3.4). The per-sample mean and
standard deviation over the passes are kept (`score_mean`, `score_std`; the
population std, 1/T, as the paper's Eq. 32), and the score is
mean + combine * std: anomalies tend to be reconstructed both worse and less
consistently, so the spread can separate cases near the threshold.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from anomaly_cli.errors import AdxUserError
from anomaly_cli.scoring.batches import map_batches
from anomaly_cli.scoring.reconstruction import DEFAULT_TOP_K, check_top_k

log = logging.getLogger("adx")


@dataclass(frozen=True)
class ScoringOptions:
    top_k: float = DEFAULT_TOP_K
    mc_samples: int = 0
    mc_combine: float = 0.0

    @classmethod
    def from_config(cls, scoring: Any) -> ScoringOptions:
        """From the `scoring` config node; runs made before it existed get the defaults."""
        if scoring is None:
            return cls()
        mc = scoring.get("mc_dropout") or {}
        options = cls(
            top_k=check_top_k(float(scoring.get("top_k", DEFAULT_TOP_K))),
            mc_samples=int(mc.get("samples", 0)),
            mc_combine=float(mc.get("combine", 0.0)),
        )
        if options.mc_samples < 0:
            raise AdxUserError(
                f"scoring.mc_dropout.samples={options.mc_samples} must be >= 0 "
                "(0 or 1 scores once; T >= 2 runs T passes with dropout on)"
            )
        if options.mc_combine < 0:
            raise AdxUserError(
                f"scoring.mc_dropout.combine={options.mc_combine} must be >= 0: "
                "the score is score_mean + combine * score_std"
            )
        if options.mc_combine and not options.monte_carlo:
            raise AdxUserError(
                f"scoring.mc_dropout.combine={options.mc_combine} needs "
                "scoring.mc_dropout.samples >= 2, e.g. scoring.mc_dropout.samples=20"
            )
        return options

    @property
    def monte_carlo(self) -> bool:
        return self.mc_samples >= 2


@dataclass(frozen=True)
class Scores:
    score: np.ndarray
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def columns(self) -> dict[str, np.ndarray]:
        """The columns scores.csv gets: score, and with MC dropout score_mean/score_std."""
        columns = {"score": self.score}
        if self.mean is not None and self.std is not None:
            columns.update(score_mean=self.mean, score_std=self.std)
        return columns


def score_samples(model: Any, data: Any, options: ScoringOptions, batch_size: int = 256) -> Scores:
    """Scores of every sample in `data` (array or batched dataset), higher = more anomalous."""
    if not options.monte_carlo:
        scores = model.score(data, batch_size, top_k=options.top_k)
        return Scores(np.asarray(scores, dtype=np.float64))
    with dropout_sampling(model) as active:
        if not active:
            log.warning(
                "scoring.mc_dropout.samples=%d, but the model has no dropout: every pass "
                "gives the same scores and score_std is 0 (set model.dropout > 0 and retrain)",
                options.mc_samples,
            )
        passes = map_batches(
            data,
            batch_size,
            lambda x: np.stack(
                [model.score_batch(x, options.top_k) for _ in range(options.mc_samples)], axis=1
            ),
        )
    mean, std = passes.mean(axis=1), passes.std(axis=1)
    return Scores(mean + options.mc_combine * std, mean, std)


def all_layers(layer: Any) -> list[Any]:
    """`layer` and every layer nested in it, through each model's public `.layers`
    (sub-models of a subclassed model are among its layers), each once."""
    found: dict[int, Any] = {}
    pending = [layer]
    while pending:
        current = pending.pop()
        if id(current) in found:
            continue
        found[id(current)] = current
        pending.extend(getattr(current, "layers", []))
    return list(found.values())


@contextlib.contextmanager
def dropout_sampling(model: Any) -> Iterator[list[Any]]:
    """Switch every McDropout layer of `model` on for inference; yields those with rate > 0."""
    import keras

    from anomaly_cli.models.layers import McDropout

    everything = all_layers(model)
    dropouts = [layer for layer in everything if isinstance(layer, McDropout)]

    def switch(on: bool) -> None:
        for layer in dropouts:
            layer.sampling = on
        # Compiled predict functions captured the old switch; make Keras retrace them.
        for layer in everything:
            if isinstance(layer, keras.Model):
                layer.predict_function = None

    switch(True)
    try:
        yield [layer for layer in dropouts if layer.rate > 0]
    finally:
        switch(False)
