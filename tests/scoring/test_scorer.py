"""Monte Carlo dropout scoring and the scoring options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.layers import McDropout
from anomaly_cli.models.loading import build_model
from anomaly_cli.scoring.batches import map_batches
from anomaly_cli.scoring.scorer import ScoringOptions, all_layers, score_samples
from tests.models.planted import correlated_rows

DENSE = OmegaConf.load(Path(__file__).resolve().parents[2] / "configs/model/dense_ae.yaml")
ROWS = correlated_rows(40, 9, seed=0)


def dense_model(dropout: float):
    return build_model(OmegaConf.merge(DENSE, {"dropout": dropout}), (9,))


def test_mc_dropout_spreads_scores_only_when_there_is_dropout():
    options = ScoringOptions(mc_samples=8)
    with_dropout = score_samples(dense_model(0.3), ROWS, options)
    without = score_samples(dense_model(0.0), ROWS, options)
    assert with_dropout.std is not None and with_dropout.std.shape == (len(ROWS),)
    assert (with_dropout.std > 0).all()
    assert without.std is not None and np.array_equal(without.std, np.zeros(len(ROWS)))
    assert set(with_dropout.columns()) == {"score", "score_mean", "score_std"}


def test_combine_adds_k_standard_deviations_to_the_mean():
    model = dense_model(0.3)
    scores = score_samples(model, ROWS, ScoringOptions(mc_samples=6, mc_combine=2.0))
    assert np.allclose(scores.score, scores.mean + 2.0 * scores.std)


def test_mc_passes_leave_the_model_deterministic_and_unchanged():
    model = dense_model(0.3)
    before = [w.copy() for w in model.get_weights()]  # includes BatchNorm's moving stats
    plain = model.score(ROWS)
    score_samples(model, ROWS, ScoringOptions(mc_samples=5))
    after = model.get_weights()
    assert before and all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert np.array_equal(model.score(ROWS), plain)
    assert np.array_equal(score_samples(model, ROWS, ScoringOptions()).score, plain)


def test_mean_of_passes_matches_the_deterministic_score_roughly():
    # Inverted dropout keeps activations' expectation, so the MC mean stays near
    # the deterministic score rather than drifting to another scale.
    model = dense_model(0.1)
    mc = score_samples(model, ROWS, ScoringOptions(mc_samples=30))
    assert np.corrcoef(mc.mean, model.score(ROWS))[0, 1] > 0.8


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ({"mc_dropout": {"samples": -1, "combine": 0}}, "samples=-1 must be >= 0"),
        ({"mc_dropout": {"samples": 10, "combine": -1}}, "combine=-1.0 must be >= 0"),
        ({"mc_dropout": {"samples": 0, "combine": 1}}, "needs scoring.mc_dropout.samples >= 2"),
        ({"top_k": 0, "mc_dropout": {"samples": 0, "combine": 0}}, "top_k=0.0 must be"),
    ],
)
def test_bad_options_name_the_key(node: dict, message: str):
    with pytest.raises(AdxUserError, match=message):
        ScoringOptions.from_config(OmegaConf.create(node))


def test_runs_without_a_scoring_node_get_the_defaults():
    assert ScoringOptions.from_config(None) == ScoringOptions()


def test_top_k_is_passed_to_the_score_not_set_on_the_model():
    model = build_model(OmegaConf.merge(DENSE, {"score": "top_k_mean"}), (9,))
    narrow = score_samples(model, ROWS, ScoringOptions(top_k=0.1)).score
    wide = score_samples(model, ROWS, ScoringOptions(top_k=1.0)).score
    assert not hasattr(model, "top_k")
    assert np.array_equal(narrow, model.score(ROWS, top_k=0.1))
    # The top 100 % of squared errors is their mean: the plain mse.
    model.set_score("mse")
    assert np.allclose(wide, model.score(ROWS)) and not np.allclose(narrow, wide)


def test_all_layers_reaches_dropout_inside_sub_models():
    model = dense_model(0.3)
    layers = all_layers(model)
    assert layers[0] is model and model.encoder in layers and model.decoder in layers
    dropouts = [layer for layer in layers if isinstance(layer, McDropout)]
    # Two hidden layers in the encoder and two mirrored in the decoder.
    assert len(dropouts) == 4 and len({id(layer) for layer in layers}) == len(layers)


def test_map_batches_covers_arrays_and_batched_iterables_alike():
    x = np.arange(10.0)
    assert np.array_equal(map_batches(x, 3, lambda b: b * 2), x * 2)
    assert np.array_equal(map_batches([x[:4], x[4:]], 99, lambda b: b + 1), x + 1)
    assert map_batches(np.empty((0, 2)), 4, lambda b: b).shape == (0,)
