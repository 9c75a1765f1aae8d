"""Overrides are checked against the YAML defaults before any run starts."""

from __future__ import annotations

import pytest

from anomaly_cli.errors import AdxUserError
from anomaly_cli.overrides import check_overrides


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["model.latent_dim=3", "trainer.epochs=2", "optimizer=sgd", "optimizer.momentum=0.5"],
        ["threshold=fixed", "threshold.value=0.2"],
        # optimizer.lr=1: an int for a float
        ["dataset=synthetic", "dataset.preprocess.image_size=32", "optimizer.lr=1"],
        ["dataset.normal_class=[0,1]"],
        ["hydra.run.dir=somewhere", "+extra.key=1"],
        ["model=conv_ae,conv_ae", "trainer.epochs=range(1,3)"],
        # debug=default sets 0 and 1; the trainer's own defaults are auto.
        ["debug=default", "trainer.verbose=auto", "trainer.checkpoint_every=auto"],
    ],
)
def test_valid_overrides_pass(overrides: list[str]):
    check_overrides("train", overrides)


@pytest.mark.parametrize(
    ("verb", "overrides", "message"),
    [
        (
            "train",
            ["model.latnt_dim=3"],
            "valid keys under model: _target_, filters, latent_dim",
        ),
        ("train", ["trainer.epoch=3"], "valid keys under trainer:"),
        ("train", ["modle=conv_ae"], "valid keys at the top level: dataset, logger, model"),
        (
            "train",
            ["dataset=mnsit"],
            "unknown dataset 'mnsit'; choose one of: caltech101, cifar10, cifar100, digits",
        ),
        ("train", ["protocol=open"], "unknown protocol 'open'; choose one of: clean, transductive"),
        ("train", ["trainer.deterministic=maybe"], "expects true or false"),
        ("train", ["optimizer.lr=fast"], "expects a number"),
        ("train", ["optimizer=sgd", "optimizer.beta_1=0.9"], "valid keys under optimizer:"),
        ("train", ["trainer.epochs=("], "cannot read override"),
        ("sweep", ["model=conv_ae"], "unknown config key 'model'"),
        ("evaluate", ["run.x=1"], "'run' holds no settings"),
    ],
)
def test_invalid_overrides_name_the_key_and_the_fix(verb: str, overrides: list[str], message: str):
    with pytest.raises(AdxUserError, match=message.replace("(", r"\(")):
        check_overrides(verb, overrides)
