"""dataset=tfds and its presets: labels up front, streamed images, clear errors, seed 000.

No test touches the network. Two kinds of data stand in for the real sets:
`tfds.testing.mock_data` (random examples, in this process only) and
`make_tfds_fixture(root)`, which writes small but real prepared MNIST and
Caltech101 folders (`root/tfds_data/...`, planted shapes) that `adx`
subprocesses read like downloaded ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from omegaconf import OmegaConf

from anomaly_cli.data.base import CLEAN, TRANSDUCTIVE, LoadContext
from anomaly_cli.errors import AdxUserError
from tests.conftest import (
    compose_config,
    run_adx,
    run_adx_in_process,
    run_dirs,
    train_in_process,
)
from tests.data.fixtures_tfds import CALTECH_AIRPLANES, FIXTURE_SPLITS, make_tfds_fixture


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    root = tmp_path_factory.mktemp("tfds")
    return root, make_tfds_fixture(root)


def dataset_cfg(preset: str, *overrides: str):
    return compose_config("train", f"dataset={preset}", *overrides).dataset


def load(cfg, protocol: str = CLEAN, seed: int = 555):
    from anomaly_cli.data import tfds as source

    return source.load(cfg, LoadContext(seed=seed, protocol=protocol))


def mock_labels(name: str, split: str, key: str = "label") -> np.ndarray:
    """The labels tfds.testing.mock_data hands out, read the plain tfds way."""
    ds = tfds.load(name, split=split, decoders=tfds.decode.PartialDecoding({key: True}))
    return np.array([int(ex[key]) for ex in ds])


def test_mock_counts_per_split_and_class_by_name_or_index():
    with tfds.testing.mock_data(num_examples=300):
        truth = mock_labels("caltech101", "train+test")
        by_name = load(dataset_cfg("caltech101", "dataset.preprocess.image_size=32"))
        by_index = load(dataset_cfg("caltech101", "dataset.normal_class=1"))
    airplanes = int(np.sum(truth == 1))  # tfds sorts names: accordion, airplanes, ...
    assert airplanes > 2
    for splits in (by_name, by_index):
        counts = splits.counts()
        assert sum(c["normal"] for c in counts.values()) == airplanes
        assert counts["train"]["anomaly"] == 0
        assert counts["val"]["anomaly"] + counts["test"]["anomaly"] == len(truth) - airplanes
        assert splits.info["normal_classes"] == ["airplanes"]
        assert len(splits.info["anomaly_classes"]) == len(set(truth)) - 1
        assert splits.class_counts()["train"] == {"airplanes": counts["train"]["normal"]}
    assert np.array_equal(by_name.test.ids, by_index.test.ids)
    assert by_name.input_shape == (32, 32, 3) and by_index.input_shape == (96, 96, 3)
    assert by_name.test.ids[0].startswith("caltech101/train+test/")
    assert by_name.info["source"] == "tensorflow_datasets"


def test_unknown_class_lists_the_tfds_names():
    with tfds.testing.mock_data(num_examples=20), pytest.raises(AdxUserError) as error:
        load(dataset_cfg("caltech101", "dataset.normal_class=aeroplanes"))
    assert str(error.value).startswith(
        "dataset.normal_class=aeroplanes is not a class of this dataset; "
        "classes present: accordion, airplanes, anchor"
    )


def test_n_anomalies_is_honoured_and_augment_is_built():
    overrides = ("dataset.tfds_split=train", "dataset.n_anomalies=7", "dataset.augment.flip=true")
    with tfds.testing.mock_data(num_examples=120):
        splits = load(dataset_cfg("mnist", *overrides))
    counts = splits.counts()
    assert counts["val"]["anomaly"] + counts["test"]["anomaly"] == 7
    assert splits.augment is not None and splits.augment.flip
    assert splits.input_shape == (32, 32, 1)


def test_cifar100_coarse_labels_give_20_classes_fine_labels_100():
    with tfds.testing.mock_data(num_examples=200):
        coarse = load(dataset_cfg("cifar100", "dataset.tfds_split=train", "dataset.normal_class=4"))
        fine = load(
            dataset_cfg(
                "cifar100",
                "dataset.tfds_split=train",
                "dataset.label_key=label",
                "dataset.normal_class=4",
            )
        )
    assert coarse.info["label_key"] == "coarse_label" and len(coarse.info["classes"]) == 20
    assert len(fine.info["classes"]) == 100
    pool = {c for s in (coarse.train, coarse.val, coarse.test) for c in s.classes}
    assert pool <= set(coarse.info["classes"]) and len(pool) == 20


def test_experiment_composes_to_seed_000():
    cfg = compose_config("train", "experiment=caltech101_airplanes")
    data = cfg.dataset
    assert (data.name, data.tfds_split, data.normal_class) == (
        "caltech101",
        "train+test",
        "airplanes",
    )
    assert data.anomaly_classes is None and data.n_anomalies == 800
    assert OmegaConf.to_container(data.preprocess) == {
        "image_size": 96,
        "crop": "center",
        "channels": "rgb",
        "value_range": [0, 1],
        "gcn": False,
    }
    assert cfg.protocol.name == TRANSDUCTIVE and cfg.trainer.seed == cfg.dataset.seed == 555
    assert (cfg.model.latent_dim, cfg.trainer.epochs, cfg.trainer.batch_size) == (512, 20, 64)
    assert (cfg.threshold.strategy, cfg.threshold.value) == ("fixed", 0.03)


def test_experiment_scores_all_airplanes_and_800_others():
    cfg = compose_config("train", "experiment=caltech101_airplanes")
    with tfds.testing.mock_data(num_examples=900):
        truth = mock_labels("caltech101", "train+test")
        splits = load(cfg.dataset, cfg.protocol.name, cfg.dataset.seed)
        first_airplanes = list(splits.train.dataset().take(3).as_numpy_iterator())
    airplanes = int(np.sum(truth == 1))
    assert splits.counts() == {
        "train": {"normal": airplanes, "anomaly": 0},
        "val": {"normal": airplanes, "anomaly": 800},
        "test": {"normal": airplanes, "anomaly": 800},
    }
    assert np.array_equal(splits.val.ids, splits.test.ids)
    assert set(splits.train.ids) < set(splits.test.ids)
    assert [x.shape for x in first_airplanes] == [(96, 96, 3)] * 3
    assert all(x.min() >= 0.0 and x.max() <= 1.0 for x in first_airplanes)


def test_experiment_on_prepared_caltech101_offline(prepared):
    root, _ = prepared
    overrides = ("experiment=caltech101_airplanes", f"dataset.data_dir={root / 'tfds_data'}")
    cfg = compose_config("train", *overrides)
    splits = load(cfg.dataset, cfg.protocol.name, cfg.dataset.seed)
    assert splits.counts()["test"] == {"normal": CALTECH_AIRPLANES, "anomaly": 800}
    assert splits.counts()["train"] == {"normal": CALTECH_AIRPLANES, "anomaly": 0}
    airplane = next(splits.train.dataset().as_numpy_iterator())
    assert airplane.shape == (96, 96, 3)
    sky = airplane[5, 48]  # pale blue above the bar after crop and resize
    assert sky[2] > sky[0] > 0.6


def test_streamed_images_are_the_selected_records_in_id_order(prepared):
    root, images = prepared
    from anomaly_cli.data.preprocess import ImagePreprocess

    cfg = dataset_cfg("mnist", f"dataset.data_dir={root / 'tfds_data'}", "dataset.download=false")
    splits = load(cfg)
    every = np.concatenate([images["train"], images["test"]])  # train+test, in that order
    assert splits.info["tfds_split"] == "train+test"
    assert sum(len(s) for s in (splits.train, splits.val, splits.test)) == len(every)
    prep = ImagePreprocess.from_config(cfg.preprocess)
    reached = []
    for split in (splits.train, splits.test):
        records = [int(i.rsplit("/", 1)[1]) for i in split.ids]
        assert records == sorted(records)
        streamed = np.stack(list(split.dataset().as_numpy_iterator()))
        expected = np.stack([prep.apply(every[r]).numpy() for r in records])
        np.testing.assert_allclose(streamed, expected, atol=1e-6)
        reached.append(max(records))
    assert max(reached) >= FIXTURE_SPLITS["train"]  # records past train come from "test"


def test_unknown_tfds_split_names_the_splits_present(prepared):
    root, _ = prepared
    cfg = dataset_cfg("mnist", f"dataset.data_dir={root / 'tfds_data'}", "dataset.tfds_split=valid")
    with pytest.raises(
        AdxUserError,
        match=r"dataset.tfds_split=valid cannot be read .*"
        r"splits present: train, test \(join several",
    ):
        load(cfg)


def test_end_to_end_train_on_mock_data_writes_data_json(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ADX_OUTPUT_DIR", str(tmp_path / "outputs"))
    with tfds.testing.mock_data(num_examples=60):
        run_dir, metrics = train_in_process(
            tmp_path,
            "dataset=mnist",
            "dataset.tfds_split=train",
            "dataset.normal_class=[0,1,2,3,4]",
            "trainer.epochs=2",
            "model.latent_dim=4",
        )
    report = json.loads((run_dir / "data.json").read_text())
    assert report["source"] == "tensorflow_datasets" and report["tfds_name"] == "mnist"
    assert report["input_shape"] == [32, 32, 1]
    assert report["preprocessing"]["channels"] == "grayscale"
    assert sum(c["normal"] + c["anomaly"] for c in report["counts"].values()) == 60
    assert report["counts"]["test"]["normal"] > 0 and report["counts"]["test"]["anomaly"] > 0
    assert 0.0 <= metrics["auroc"] <= 1.0


def test_cli_trains_on_a_prepared_data_dir_offline(prepared):
    root, _ = prepared
    result = run_adx_in_process(
        "train",
        "dataset=mnist",
        "dataset.data_dir=tfds_data",
        "dataset.download=false",
        "dataset.normal_class=[0,1]",
        "trainer.epochs=12",
        "trainer.verbose=0",
        "model.latent_dim=8",
        cwd=root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = (root / "outputs" / "latest").resolve()
    report = json.loads((run / "data.json").read_text())
    assert report["data_dir"] == str(root / "tfds_data")
    assert set(report["class_counts"]["train"]) == {"0", "1"}
    assert report["counts"] == {
        "train": {"normal": 10, "anomaly": 0},
        "val": {"normal": 3, "anomaly": 32},
        "test": {"normal": 3, "anomaly": 32},
    }
    assert json.loads((run / "metrics.json").read_text())["auroc"] > 0.9


def test_cli_missing_data_without_download_is_one_line_and_no_run(tmp_path: Path):
    result = run_adx(
        "train",
        "dataset=caltech101",
        "dataset.data_dir=empty",
        "dataset.download=false",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"adx: error: tfds dataset 'caltech101' is not in data_dir={tmp_path / 'empty'} and "
        "could not be downloaded (dataset.download=false); run once with network access and "
        f"dataset.download=true, or prepare it with 'tfds build caltech101 --data_dir "
        f"{tmp_path / 'empty'}'"
    )
    assert run_dirs(tmp_path) == set()


def test_download_failure_names_dataset_data_dir_and_cause(tmp_path: Path, monkeypatch):
    def offline(self, *args, **kwargs):
        raise ConnectionError("no route to storage.googleapis.com")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    with pytest.raises(AdxUserError) as error:
        load(dataset_cfg("mnist", f"dataset.data_dir={tmp_path}"))
    assert str(error.value).startswith(
        f"tfds dataset 'mnist' is not in data_dir={tmp_path} and could not be downloaded "
        "(ConnectionError: no route to storage.googleapis.com); run once with network access"
    )


def test_unknown_dataset_name_suggests_and_says_where_to_look(tmp_path: Path):
    with pytest.raises(AdxUserError) as error:
        load(dataset_cfg("tfds", "dataset.name=mnsit", f"dataset.data_dir={tmp_path}"))
    message = str(error.value)
    assert message.startswith(
        "dataset.name=mnsit is not a TensorFlow Datasets dataset (did you mean mnist"
    )
    assert "tfds.list_builders()" in message and "\n" not in message


def test_missing_image_feature_names_the_features_present(tmp_path: Path):
    cfg = dataset_cfg("mnist", "dataset.image_key=picture", f"dataset.data_dir={tmp_path}")
    with pytest.raises(AdxUserError) as error:
        load(cfg)
    assert str(error.value) == (
        "dataset.image_key=picture is not an Image feature of tfds dataset 'mnist'; "
        "its features: image (Image), label (ClassLabel)"
    )
