"""One experiment per source document (configs/experiment/): each composes into
what its document describes, carries the numbers the document printed where the
summary or the benchmark table will look for them, and runs.

The runs shrink each experiment to a tiny step on generated data laid out like
its real data (tfds files, an MVTec tree, a MedMNIST .npz, a CSV table and
series), so the experiment's own dataset settings are what gets exercised.
"""

from __future__ import annotations

import csv
import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from anomaly_cli.evaluation.metrics import LABELS
from anomaly_cli.reporting.compare import differing_keys
from tests.conftest import FAST_TRAIN, REPO, latest, run_adx_in_process
from tests.conftest import compose_config as _compose

EXPERIMENT_DIR = REPO / "configs" / "experiment"
EXPERIMENTS = sorted(path.stem for path in EXPERIMENT_DIR.glob("*.yaml"))
# Seed 001's grids run through `adx benchmark`; every other experiment through `adx train`.
BENCHMARKS = tuple(name for name in EXPERIMENTS if name.startswith("seed001_"))


@functools.cache
def compose_config(verb: str, *overrides: str) -> Any:
    """The composed config, once per set of overrides (tests only read it)."""
    return _compose(verb, *overrides)


def _verb(name: str) -> str:
    return "benchmark" if name in BENCHMARKS else "train"


@functools.cache
def _jobs(name: str, *overrides: str) -> list[list[str]]:
    """Each job's overrides as `adx train -m experiment=<name>` launches them (preflight's view)."""
    from anomaly_cli.preflight import _jobs as preflight_jobs

    return preflight_jobs([f"experiment={name}", *overrides], "train")


def _column_names(jobs: list[list[str]]) -> list[str]:
    """What the sweep summary calls each job: its model when models differ, else the
    overrides that differ (compare's rule); a single run is its model."""
    configs = [compose_config("train", *job) for job in jobs]
    models = [str(cfg.model.name) for cfg in configs]
    if len(jobs) == 1 or len(set(models)) == len(models):
        return models
    keys = differing_keys(jobs)
    values = [dict(o.split("=", 1) for o in job) for job in jobs]
    return [" ".join(f"{k}={v[k]}" for k in keys) for v in values]


def _assert_fractions(values: dict[str, Any], where: str) -> None:
    assert values, where
    for metric, value in values.items():
        assert metric in LABELS, f"{where}: {metric} is not a metric adx reports"
        assert isinstance(value, float) and 0.0 <= value <= 1.0, f"{where}.{metric}={value}"


# Spot checks against the documents (fractions of the printed percentages).
SEED000_F1 = {"conv_ae": 0.8623, "vae": 0.7598, "beta_vae": 0.8457, "unet": 0.8704}
SEED000_THRESHOLDS = {"conv_ae": 0.03, "vae": 0.05, "beta_vae": 0.03, "unet": 0.0009}
SEED001_AUROC_10 = {
    "seed001_mnist": {"iaead": 0.9205, "deep_svdd": 0.7886, "conv_ae": 0.5656},
    "seed001_fashion_mnist": {"iaead": 0.8869, "deep_svdd": 0.7979, "conv_ae": 0.6743},
    "seed001_cifar10": {"iaead": 0.5665, "deep_svdd": 0.5570, "conv_ae": 0.5521},
}
SEED002_AUROC = {
    "dataset.category=hazelnut": 0.9174,
    "dataset.category=zipper": 0.9296,
    "dataset.category=metal_nut": 0.9639,
}


def test_every_source_document_has_an_experiment_with_command_runtime_and_numbers() -> None:
    assert EXPERIMENTS, EXPERIMENT_DIR
    for seed in ("seed000_", "seed001_", "seed002_", "seed003_", "seed004_"):
        assert any(name.startswith(seed) for name in EXPERIMENTS), seed
    for name in EXPERIMENTS:
        text = (EXPERIMENT_DIR / f"{name}.yaml").read_text()
        comments = re.findall(r"^#(.*)$", text.split("\ndefaults:")[0], re.MULTILINE)
        header = " ".join(line.strip() for line in comments)
        assert re.search(rf"adx {_verb(name)} (-m )?experiment={name}\b", header), name
        assert "laptop CPU" in header and "one GPU" in header, name
        assert re.search(r"laptop CPU about \d+ \w+ \(estimated\)", header), name
        assert "Reported" in header, name


@pytest.mark.parametrize(
    ("name", "key", "values"),
    [
        ("seed000_latent_dim", "model.latent_dim", [512, 768, 1024, 1280]),
        ("seed000_hidden_layers", "model.num_hidden_layers", [3, 4, 5]),
        ("seed000_models", "model.name", ["conv_ae", "vae", "beta_vae", "unet"]),
        ("seed002_mvtec", "dataset.category", ["hazelnut", "zipper", "metal_nut"]),
    ],
)
def test_a_declared_sweep_launches_one_job_per_value_each_with_its_reported_column(
    name: str, key: str, values: list
) -> None:
    jobs = _jobs(name)
    assert len(jobs) == len(values), jobs
    configs = [compose_config("train", *job) for job in jobs]
    assert [OmegaConf.select(cfg, key) for cfg in configs] == values
    if name == "seed000_models":  # each model at the notebook's own threshold
        assert {c.model.name: c.threshold.value for c in configs} == SEED000_THRESHOLDS
        assert all(c.model.latent_dim == 512 for c in configs if "latent_dim" in c.model)
    values = OmegaConf.to_container(configs[0].reported["values"])
    # An entry inherited from the single run (caltech101_airplanes) is nulled.
    reported = {column: numbers for column, numbers in values.items() if numbers is not None}
    assert sorted(reported) == sorted(_column_names(jobs))
    for column, numbers in reported.items():
        _assert_fractions(numbers, f"{name}: reported.values.{column}")
    if name == "seed000_models":
        assert {m: v["f1"] for m, v in reported.items()} == SEED000_F1
    if name == "seed002_mvtec":
        assert {c: v["auroc"] for c, v in reported.items()} == SEED002_AUROC


def test_preflight_checks_each_job_of_a_declared_sweep_before_any_trains() -> None:
    from anomaly_cli.errors import AdxUserError
    from anomaly_cli.preflight import preflight

    assert preflight("train", ["-m", "experiment=seed000_models"]) == 4
    with pytest.raises(AdxUserError, match=r"job 0: model.latent_dim=512 "):
        preflight("train", ["-m", "experiment=seed000_latent_dim", "trainer.epochs=0"])


def test_a_command_line_sweep_of_the_same_key_replaces_the_declared_one() -> None:
    jobs = _jobs("seed000_latent_dim", "model.latent_dim=8,16", "trainer.epochs=1")
    assert [job[0] for job in jobs] == ["model.latent_dim=8", "model.latent_dim=16"]


@pytest.mark.parametrize("name", BENCHMARKS)
def test_seed001_grids_carry_the_papers_protocol_recipe_and_table(name: str) -> None:
    cfg = compose_config("benchmark", f"experiment={name}")
    grid = cfg.benchmark
    # Deep SVDD diverges under this SGD recipe: its cells get their own (recipe.yaml).
    assert list(grid.models) == ["iaead", "deep_svdd", "conv_ae"]
    assert "optimizer=adam" in grid.model_overrides.deep_svdd
    assert grid.normal_classes == "all" and len(cfg.dataset.classes) == 10
    assert list(grid.contamination) == [0.05, 0.1, 0.15, 0.2, 0.25] and grid.repeats == 5
    assert grid.name == name and cfg.protocol.name == "unsupervised"
    # SGD (no momentum), lr 0.1 halved every 50 epochs, 250 epochs, batch 256.
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.optimizer.momentum) == ("sgd", 0.1, 0.0)
    assert (cfg.optimizer.schedule, cfg.optimizer.decay_rate) == ("step", 0.5)
    assert cfg.optimizer.decay_epochs == 50
    assert (cfg.trainer.epochs, cfg.trainer.batch_size) == (250, 256)
    assert cfg.trainer.patience >= cfg.trainer.epochs
    # IAEAD: lambda 5e-5, nu 1, 20 warm-up epochs.
    iaead = compose_config("benchmark", f"experiment={name}", "model=iaead").model
    assert (iaead.lambda_svdd, iaead.nu, iaead.warmup_epochs) == (5.0e-5, 1.0, 20)
    reported = OmegaConf.to_container(grid.reported["values"])
    assert sorted(reported) == sorted(grid.metrics)
    for metric, by_rate in reported.items():
        assert sorted(by_rate) == ["0.1", "0.2"], metric
        for rate, by_model in by_rate.items():
            assert sorted(by_model) == ["conv_ae", "deep_svdd", "iaead"], (metric, rate)
            assert all(0 < v < 1 for v in by_model.values()), (metric, rate, by_model)
    assert reported["auroc"]["0.1"] == SEED001_AUROC_10[name]


@pytest.mark.parametrize(
    "name",
    [n for n in EXPERIMENTS if n not in BENCHMARKS and not n.startswith("seed004_")],
)
def test_a_single_run_reports_under_its_model_name(name: str) -> None:
    cfg = compose_config("train", f"experiment={name}")
    values = OmegaConf.to_container(cfg.reported["values"])
    assert str(cfg.reported.source).startswith("seed 00"), cfg.reported.source
    for column, numbers in values.items():
        if numbers is not None:
            _assert_fractions(numbers, f"{name}: reported.values.{column}")
    if len(_jobs(name)) == 1:  # a sweep's columns: the test above
        assert list(values) == [cfg.model.name]


# --- one tiny step per experiment -------------------------------------------

# Small images, one epoch, one plot: what every tiny run adds to its experiment.
TINY_RUN = (*FAST_TRAIN, "trainer.epochs=1", "logger=none", "report.plots=[roc]")
# Seed 000's Caltech101 set-up on 50 generated rgb images (no download).
SEED000_DATA = (
    "dataset=synthetic",
    "dataset.normal_class=blob",
    "dataset.channels=3",
    "dataset.n_normal=40",
    "dataset.n_anomaly=10",
    "dataset.n_anomalies=10",
    "dataset.preprocess.image_size=16",
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each experiment's kind of data, generated: tfds mnist files, an MVTec tree,
    a MedMNIST .npz, a table and a series."""
    from tests.data.fixtures_mvtec import make_mvtec_fixture
    from tests.data.fixtures_npz import make_npz_fixture
    from tests.data.fixtures_tabular import make_tabular_fixture
    from tests.data.fixtures_tfds import make_tfds_fixture
    from tests.data.fixtures_timeseries import make_timeseries_csv

    root = tmp_path_factory.mktemp("experiment_data")
    make_tfds_fixture(root, caltech101=False)
    make_mvtec_fixture(root / "mvtec", n_train=20, n_test_good=4, n_per_defect=4, size=16)
    make_npz_fixture(root)
    make_tabular_fixture(root / "table")
    make_timeseries_csv(root, n=800, intervals=((500, 507), (700, 720)))
    return root


def _tiny(name: str, data: Path) -> tuple[str, ...]:
    """The overrides that shrink experiment `name` to one quick step on `data`: its
    dataset settings stay, images and networks shrink (tracing a layer costs more
    than training it here)."""
    tfds = (f"dataset.data_dir={data / 'tfds_data'}", "dataset.preprocess.image_size=8")
    small_dual_ae = (
        "dataset.preprocess.image_size=8",
        "model.units=[16,8]",
        "model.decoder_units=[16]",
    )
    return {
        # One cell of the grid: IAEAD, digit 0, 10 %, SVDD term from the start.
        "seed001_mnist": (
            *tfds,
            "benchmark.models=[iaead]",
            "benchmark.normal_classes=[0]",
            "benchmark.contamination=[0.1]",
            "benchmark.repeats=1",
            "model.warmup_epochs=0",
            "model.num_hidden_layers=2",
        ),
        "seed002_mvtec": (f"dataset.root={data / 'mvtec'}", "trainer.attempts=1", *small_dual_ae),
        "seed002_pneumoniamnist": (
            f"dataset.path={data / 'pneumoniamnist.npz'}",
            # The fixture has three labels; MedMNIST's pneumonia set two.
            "dataset.class_names=null",
            "dataset.anomaly_classes=[1]",
            "trainer.attempts=1",
            *small_dual_ae,
        ),
        "seed003_tabular": (
            f"dataset.path={data / 'table' / 'rows.csv'}",
            "dataset.normal_class=normal",
            "model.units=[8]",
        ),
        "seed004_ganomaly_mnist": (
            *tfds,
            "model.num_hidden_layers=2",
            "model.filters=4",
            "model.latent_dim=4",
        ),
        "seed004_timeseries": (
            f"dataset.path={data / 'series.csv'}",
            "dataset.time_column=time",
            "dataset.anomaly_column=label",
            "model.units=[8]",
        ),
    }[name]


@pytest.mark.parametrize(
    "name",
    [
        "seed001_mnist",
        "seed002_mvtec",
        "seed003_tabular",
        # Slow, and covered unmarked elsewhere: the dual AE trains in
        # seed002_mvtec's step and the npz reader in tests/data/test_npz.py; an
        # LSTM and GANomaly's three networks are slow to trace, and both models
        # train on such data in tests/tasks/test_model_zoo.py. Their experiment
        # settings are composed and checked above.
        pytest.param("seed002_pneumoniamnist", marks=pytest.mark.slow),
        pytest.param("seed004_ganomaly_mnist", marks=pytest.mark.slow),
        pytest.param("seed004_timeseries", marks=pytest.mark.slow),
    ],
)
def test_each_experiment_trains_a_tiny_step(name: str, data: Path, tmp_path: Path) -> None:
    """Seed 000's experiments train in the next test; seed 001's Fashion-MNIST and
    CIFAR-10 grids differ from MNIST's only by their dataset (composed above)."""
    verb = _verb(name)
    result = run_adx_in_process(
        verb, f"experiment={name}", *TINY_RUN, *_tiny(name, data), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = latest(tmp_path)
    assert (run / "metrics.json").is_file(), sorted(p.name for p in run.iterdir())
    assert '"finished"' in (run / "status.json").read_text()
    assert f"experiment={name}" in (run / ".hydra" / "overrides.yaml").read_text()
    if verb == "benchmark":  # the paper's number beside adx's
        table = (tmp_path / "outputs" / "benchmarks" / name / "table.txt").read_text()
        assert "iaead (reported)" in table and "92.05" in table, table


@pytest.mark.slow  # four trainings; the jobs' settings are checked unmarked above
def test_the_four_model_sweep_gives_each_model_its_settings_and_the_notebooks_numbers(
    tmp_path: Path,
) -> None:
    """`adx train -m experiment=seed000_models` on tiny data: four jobs, each with its
    own model and threshold, and the summary puts the notebook's F1 beside each."""
    result = run_adx_in_process(
        "train", "-m", "experiment=seed000_models", *TINY_RUN, *SEED000_DATA, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweeps = sorted((tmp_path / "outputs" / "multirun").iterdir())
    assert len(sweeps) == 1, sweeps
    jobs = sorted(p.name for p in sweeps[0].iterdir() if (p / "metrics.json").is_file())
    assert jobs == [
        "0_conv_ae_synthetic",
        "1_vae_synthetic",
        "2_beta_vae_synthetic",
        "3_unet_synthetic",
    ]
    thresholds = {
        job.split("_", 1)[1].removesuffix("_synthetic"): json.loads(
            (sweeps[0] / job / "threshold.json").read_text()
        )
        for job in jobs
    }
    assert {m: t["value"] for m, t in thresholds.items()} == SEED000_THRESHOLDS
    with open(sweeps[0] / "summary_long.csv", newline="") as handle:
        f1 = {
            row["name"]: row["reported"] for row in csv.DictReader(handle) if row["metric"] == "f1"
        }
    assert f1 == {model: str(value) for model, value in SEED000_F1.items()}
    assert "unet (reported)" in (sweeps[0] / "summary.txt").read_text()
