"""The `adx` front: help without TensorFlow, verb dispatch, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from anomaly_cli.cli import VERBS
from tests.conftest import assert_one_line_error, run_adx, run_dirs


def _modules_after(code: str) -> str:
    probe = f"import sys\n{code}\nprint('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("argv", [["--help"], [], ["train", "--help"], ["sweep", "--help"]])
def test_help_does_not_import_tensorflow(argv: list[str]):
    code = (
        f"from anomaly_cli.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    )
    assert _modules_after(code) == "False False"


def test_importing_the_package_and_verbs_does_not_import_tensorflow():
    modules = ["anomaly_cli.cli", *(f"anomaly_cli.tasks.{verb}" for verb in VERBS)]
    code = "\n".join(f"import {m}" for m in modules)
    assert _modules_after(code) == "False False"


def test_help_lists_verbs_and_config_groups(tmp_path: Path):
    for args in ([], ["--help"]):
        result = run_adx(*args, cwd=tmp_path)
        assert result.returncode == 0
        for word in ("train", "evaluate", "sweep", "conv_ae", "digits", "synthetic", "youden"):
            assert word in result.stdout
        # Group names line up, the longest one too (it used to run into its options).
        assert "\n  experiment  caltech101_airplanes, seed000_" in result.stdout
        assert "\n  train       fit a detector" in result.stdout


def test_verb_help_is_hydra_help_with_groups(tmp_path: Path):
    result = run_adx("train", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "adx train" in result.stdout and "other verbs: evaluate, sweep" in result.stdout
    assert "threshold: best_f1, fixed, percentile, roc_optimal, youden" in result.stdout
    assert not (tmp_path / "outputs").exists()


def test_cfg_job_prints_the_composed_config(tmp_path: Path):
    result = run_adx("train", "model.latent_dim=7", "--cfg", "job", cwd=tmp_path)
    assert result.returncode == 0
    assert "latent_dim: 7" in result.stdout


def test_python_dash_m_runs_the_same_cli(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "anomaly_cli", "nope"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 2
    assert "valid verbs: train, evaluate, sweep" in result.stderr


BAD_INPUTS = {
    "unknown verb": (("trian",), ("unknown verb 'trian'", "train, evaluate, sweep")),
    "unknown model": (("train", "model=resnet"), ("unknown model 'resnet'", "conv_ae")),
    "key typo": (("train", "model.latnt_dim=3"), ("model.latnt_dim", "latent_dim", "filters")),
    "wrong type": (("train", "trainer.epochs=many"), ("trainer.epochs", "integer")),
    "unknown group option in a sweep": (
        ("train", "-m", "threshold=youden,best"),
        ("unknown threshold 'best'",),
    ),
    "unknown class": (("train", "dataset.normal_class=11"), ("normal_class=11", "0, 1, 2")),
    "reversed range": (
        ("sweep", "threshold=0.003:0.0005"),
        ("0.003:0.0005", "start must be below"),
    ),
    "words in range": (("sweep", "threshold=a:b"), ("'a' is not a number",)),
    "empty range": (("sweep", "threshold="), ("sweep needs thresholds",)),
    "zero epochs": (("train", "trainer.epochs=0"), ("trainer.epochs=0 must be at least 1",)),
    "missing run": (
        ("evaluate", "run=does/not/exist"),
        ("run=does/not/exist", "not a run directory"),
    ),
    "sweep without runs": (("sweep", "threshold=0.1:0.2"), ("latest run", "train a model first")),
    # Checked from the config before any data is read (they used to cost a training).
    "percentile above 100": (("train", "threshold.q=150"), ("threshold.q=150", "0 and 100")),
    "top_k above 1": (("train", "scoring.top_k=5"), ("scoring.top_k=5", "(0, 1]")),
    "unknown plot": (
        ("train", "report.plots=[roc,heatmap]"),
        ("unknown plot 'heatmap'", "roc, score_histogram"),
    ),
    "negative mc samples": (("train", "scoring.mc_dropout.samples=-3"), ("samples=-3", ">= 0")),
    "fixed threshold without value": (
        ("train", "threshold=fixed", "threshold.value=null"),
        ("threshold=fixed needs a number in threshold.value, got null",),
    ),
    "negative epochs": (("train", "trainer.epochs=-1"), ("trainer.epochs=-1 must be at least 1",)),
    "zero batch size": (("train", "trainer.batch_size=0"), ("trainer.batch_size=0",)),
    "negative seed": (("train", "trainer.seed=-1"), ("trainer.seed=-1",)),
    "checkpoints every 0 epochs": (
        ("train", "trainer.checkpoint_every=0"),
        ("trainer.checkpoint_every=0; choose auto or a whole number of epochs >= 1",),
    ),
    "zero learning rate": (("train", "optimizer.lr=0"), ("optimizer.lr=0 must be positive",)),
    "unknown schedule": (("train", "optimizer.schedule=linear"), ("cosine", "step", "plateau")),
    "step decay without a period": (
        ("train", "optimizer.schedule=step", "optimizer.decay_epochs=0"),
        ("optimizer.decay_epochs=0 must be a whole number >= 1",),
    ),
    "negative split": (("train", "dataset.split.val=-0.1"), ("dataset.split=", "positive")),
    "contamination above 1": (
        ("train", "protocol=unsupervised", "protocol.contamination=1.5"),
        ("protocol.contamination=1.5",),
    ),
    "two ways to count anomalies": (
        ("train", "dataset.n_anomalies=10", "dataset.anomaly_ratio=0.1"),
        ("keep one of them",),
    ),
    "bad value in one multirun job": (
        ("train", "-m", "threshold.q=50,150"),
        ("threshold.q=150", "job 1: threshold.q=150"),
    ),
    "command-line target outside adx": (
        ("train", "dataset._target_=os.system"),
        ("dataset._target_=os.system is outside anomaly_cli.data",),
    ),
    "optimizer target outside keras.optimizers": (
        ("train", "optimizer._target_=os.system"),
        ("optimizer._target_=os.system is outside keras.optimizers",),
    ),
    "debug=tiny with another dataset": (
        ("train", "debug=tiny", "dataset=digits"),
        ("debug=tiny brings its own data", "debug=default"),
    ),
    "target reaching through an adx module": (
        ("train", "dataset._target_=anomaly_cli.data.tabular.np"),
        ("anomaly_cli.data.tabular defines no np",),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_no_run_dir(case: str, tmp_path: Path):
    args, fragments = BAD_INPUTS[case]
    result = run_adx(*args, cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    # Not even an empty outputs/ folder is left behind.
    assert not (tmp_path / "outputs").exists(), run_dirs(tmp_path)


def test_evaluate_a_dir_without_checkpoint_is_refused(tmp_path: Path):
    broken = tmp_path / "broken_run"
    broken.mkdir()
    (broken / "config.yaml").write_text("model: {name: conv_ae}\ndataset: {name: digits}\n")
    result = run_adx("evaluate", f"run={broken}", cwd=tmp_path)
    assert_one_line_error(result, "has no checkpoints/best.keras")
    assert run_dirs(tmp_path) == set()


def test_evaluate_refuses_overrides_that_need_retraining(synthetic_run: Path, tmp_path: Path):
    result = run_adx("evaluate", f"run={synthetic_run}", "model.latent_dim=4", cwd=tmp_path)
    assert_one_line_error(result, "model.latent_dim=4", "train a new run")
    assert run_dirs(tmp_path) == set()


def test_an_error_quoting_a_line_break_stays_one_line(tmp_path: Path):
    result = run_adx("sweep", "threshold=0\n0", cwd=tmp_path)
    assert_one_line_error(result, "threshold=0\\n0 is not a grid")
