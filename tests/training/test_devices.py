"""trainer.precision / jit_compile / distribute: what each machine gets, and the fallbacks."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf
from packaging.requirements import Requirement

from anomaly_cli.errors import AdxUserError
from anomaly_cli.training.devices import (
    DevicePlan,
    Machine,
    _cpu_has_bfloat16,
    check_devices,
    plan_devices,
)
from tests.conftest import REPO, assert_one_line_error, latest, run_adx_in_process, run_dirs

CPU_ONLY = Machine(cpu_cores=2, gpus=(), gpu_kind=None, cpu_bfloat16=False)
CPU_BF16 = Machine(cpu_cores=2, gpus=(), gpu_kind=None, cpu_bfloat16=True)
ONE_CUDA = Machine(cpu_cores=16, gpus=("NVIDIA H200",), gpu_kind="cuda", cpu_bfloat16=False)
METAL = Machine(cpu_cores=8, gpus=("/physical_device:GPU:0",), gpu_kind="metal", cpu_bfloat16=False)
CONV_AE = {"_target_": "anomaly_cli.models.conv_ae.ConvAutoencoder", "name": "conv_ae"}
VAE = {"_target_": "anomaly_cli.models.vae.VariationalAutoencoder", "name": "vae"}


def _plan(machine: Machine, model: dict = CONV_AE, **trainer) -> DevicePlan:
    trainer = {"deterministic": True, **trainer}
    return plan_devices(OmegaConf.create({"trainer": trainer, "model": model}), machine=machine)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "adx" and r.levelname == "WARNING"]


@pytest.mark.parametrize(
    ("trainer", "used", "fragment"),
    [
        ({"precision": "mixed_float16"}, {"precision": "float32"}, "needs a GPU"),
        ({"distribute": "mirrored"}, {"distribute": "none"}, "needs at least 2 GPUs"),
        ({"precision": "mixed_bfloat16"}, {"precision": "float32"}, "AVX512_BF16"),
        ({"jit_compile": True}, {"jit_compile": False}, "deterministic=false"),
    ],
)
def test_cpu_only_machine_falls_back_with_one_warning(caplog, trainer, used, fragment):
    with caplog.at_level(logging.INFO, logger="adx"):
        plan = _plan(CPU_ONLY, **trainer)
    (warning,) = _warnings(caplog)
    assert fragment in warning and warning.startswith(f"trainer.{next(iter(trainer))}=")
    assert plan.used.items() >= used.items()
    assert plan.record()["asked"].items() >= trainer.items()
    assert plan.record()["fallbacks"] == [warning]


def test_defaults_ask_for_nothing_the_cpu_lacks(caplog):
    with caplog.at_level(logging.INFO, logger="adx"):
        plan = _plan(CPU_ONLY)
    assert plan.used == {"precision": "float32", "jit_compile": False, "distribute": "none"}
    assert _warnings(caplog) == [] and plan.fallbacks == []
    assert any(r.getMessage().startswith("devices: CPU only") for r in caplog.records)


@pytest.mark.parametrize(
    ("machine", "deterministic", "expected"),
    [
        (CPU_ONLY, False, False),
        (ONE_CUDA, False, True),
        (ONE_CUDA, True, False),
        (METAL, False, False),
    ],
)
def test_jit_auto_is_xla_on_cuda_only(machine, deterministic, expected):
    assert _plan(machine, jit_compile="auto", deterministic=deterministic).jit_compile is expected


def test_metal_has_no_xla(caplog):
    plan = _plan(METAL, jit_compile=True, deterministic=False)
    assert plan.jit_compile is False and "no XLA" in plan.fallbacks[0]


def test_gpus_and_bfloat16_cpus_keep_the_precision_asked_for():
    assert _plan(ONE_CUDA, precision="mixed_float16").precision == "mixed_float16"
    assert _plan(CPU_BF16, precision="mixed_bfloat16").precision == "mixed_bfloat16"
    assert _plan(ONE_CUDA, distribute="mirrored").distribute == "none"  # one GPU is not two


def test_models_with_their_own_train_step_train_in_float32(caplog):
    with caplog.at_level(logging.WARNING, logger="adx"):
        plan = _plan(ONE_CUDA, model=VAE, precision="mixed_float16")
    assert plan.precision == "float32"
    (warning,) = _warnings(caplog)
    assert "model=vae" in warning


@pytest.mark.parametrize(
    ("key", "value", "choices"),
    [
        ("precision", "half", "float32, mixed_float16, mixed_bfloat16"),
        ("jit_compile", "yes", "auto, true or false"),
        ("jit_compile", 1, "auto, true or false"),
        ("distribute", "multi_worker", "none, mirrored"),
    ],
)
def test_bad_values_are_refused_naming_the_choices(key, value, choices):
    with pytest.raises(AdxUserError, match=f"trainer.{key}={value}; choose") as refused:
        check_devices(OmegaConf.create({key: value}))
    assert choices in str(refused.value) and "\n" not in str(refused.value)


def test_bad_value_is_refused_before_the_data(tmp_path: Path):
    result = run_adx_in_process("train", "debug=tiny", "trainer.precision=fp8", cwd=tmp_path)
    assert_one_line_error(result, "trainer.precision=fp8", "mixed_bfloat16")
    assert run_dirs(tmp_path) == set()


def test_scope_restores_the_dtype_policy_even_after_an_error():
    plan = DevicePlan(CPU_BF16, {}, precision="mixed_bfloat16")
    with pytest.raises(RuntimeError), plan.scope():
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        raise RuntimeError("the build failed")
    assert keras.config.dtype_policy().name == "float32"


def test_cpu_bfloat16_is_read_from_the_cpu_flags(tmp_path: Path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert _cpu_has_bfloat16(cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu avx2 avx512f\n")
    assert not _cpu_has_bfloat16(cpuinfo)
    assert not _cpu_has_bfloat16(tmp_path / "absent")


def test_this_machine_is_detected():
    machine = Machine.detect()
    assert machine.cpu_cores >= 1
    assert (machine.gpu_kind is None) == (not machine.gpus)


@pytest.mark.skipif(not _cpu_has_bfloat16(), reason="this CPU has no native bfloat16")
def test_bfloat16_on_cpu_trains_and_scores_in_float32():
    from anomaly_cli.models.loading import build_model

    plan = DevicePlan(CPU_BF16, {}, precision="mixed_bfloat16")
    with plan.scope():
        model = build_model(OmegaConf.create(CONV_AE), (8, 8, 1))
        model.compile_for_training(keras.optimizers.Adam(1e-3), jit_compile=False)
    assert model.compute_dtype == "bfloat16"
    x = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")
    model.fit(x, x, epochs=1, batch_size=8, verbose=0)
    assert model.reconstruct(x).dtype == np.float32
    scores = model.score(x)
    assert scores.shape == (16,) and np.isfinite(scores).all()
    assert np.isfinite(model.score_gradient(x[:2])).all()


def test_tiny_train_on_cpu_falls_back_and_records_why(tmp_path: Path):
    if Machine.detect().gpus:
        pytest.skip("this machine has a GPU: nothing falls back")
    args = ("debug=tiny", "trainer.epochs=1", "logger=none")
    devices = ("trainer.precision=mixed_float16", "trainer.distribute=mirrored")
    result = run_adx_in_process("train", *args, *devices, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((latest(tmp_path) / "run.json").read_text())["devices"]
    assert record["asked"] == {
        "precision": "mixed_float16",
        "jit_compile": "auto",
        "distribute": "mirrored",
    }
    assert record["used"] == {"precision": "float32", "jit_compile": False, "distribute": "none"}
    assert len(record["fallbacks"]) == 2
    saved = json.loads((latest(tmp_path) / "warnings.json").read_text())
    for fallback in record["fallbacks"]:
        assert result.stderr.count(fallback) == 1  # warned once, in the run's summary
        assert [w["count"] for w in saved if w["message"] == fallback] == [1]
    assert keras.config.dtype_policy().name == "float32"


def test_gpu_extras_are_offered_only_where_they_install():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert len(extras["cuda"]) == len(extras["metal"]) == 1
    cuda, metal = Requirement(extras["cuda"][0]), Requirement(extras["metal"][0])
    assert cuda.name == "tensorflow" and cuda.extras == {"and-cuda"}
    assert cuda.marker.evaluate({"sys_platform": "linux"})
    assert not cuda.marker.evaluate({"sys_platform": "darwin"})
    assert metal.name == "tensorflow-metal"
    assert metal.marker.evaluate({"sys_platform": "darwin", "platform_machine": "arm64"})
    assert not metal.marker.evaluate({"sys_platform": "darwin", "platform_machine": "x86_64"})
