"""Where and how a run trains: precision, XLA and several GPUs, with fallbacks.

`trainer.precision`, `trainer.jit_compile` and `trainer.distribute` say what
the user asks for; `plan_devices` looks at the machine and decides what it
gets. A choice the machine cannot honour falls back to one it can, with one
warning per choice and the reason kept in run.json: a job written for a GPU
node still runs, slower, on a laptop, and never dies for lack of a device.

Nothing here imports TensorFlow at module level: checks.py imports
`check_devices` before any data is read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from anomaly_cli.errors import AdxUserError

log = logging.getLogger("adx")

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
JIT_CHOICES = ("auto", True, False)
DISTRIBUTIONS = ("none", "mirrored")

# CPU features that run bfloat16 matrix work natively (Linux /proc/cpuinfo
# names); without them oneDNN emulates bfloat16, slower than float32.
_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def check_devices(trainer: DictConfig) -> None:
    """The device keys of `trainer`, checked before any data is read."""
    precision = trainer.get("precision", "float32")
    if precision not in PRECISIONS:
        raise AdxUserError(f"trainer.precision={precision}; choose one of: {', '.join(PRECISIONS)}")
    jit = trainer.get("jit_compile", "auto")
    # YAML and Hydra read true/false as booleans; 1 == True must not pass.
    if not (jit == "auto" or isinstance(jit, bool)):
        raise AdxUserError(f"trainer.jit_compile={jit}; choose auto, true or false")
    distribute = trainer.get("distribute", "none")
    if distribute not in DISTRIBUTIONS:
        raise AdxUserError(
            f"trainer.distribute={distribute}; choose one of: {', '.join(DISTRIBUTIONS)}"
        )


@dataclass(frozen=True)
class Machine:
    """The devices TensorFlow sees. gpu_kind: "cuda", "metal" (tensorflow-metal
    on Apple silicon) or "other" (another pluggable device); None without GPUs."""

    cpu_cores: int
    gpus: tuple[str, ...]
    gpu_kind: str | None
    cpu_bfloat16: bool

    @classmethod
    def detect(cls) -> Machine:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        names = tuple(_gpu_name(tf, gpu) for gpu in gpus)
        if not gpus:
            kind = None
        elif tf.test.is_built_with_cuda():
            kind = "cuda"
        elif sys.platform == "darwin":
            kind = "metal"
        else:
            kind = "other"
        return cls(
            cpu_cores=os.cpu_count() or 1,
            gpus=names,
            gpu_kind=kind,
            cpu_bfloat16=_cpu_has_bfloat16(),
        )

    def describe(self) -> str:
        if not self.gpus:
            return "CPU only"
        return f"{len(self.gpus)} {self.gpu_kind} GPU(s): {', '.join(self.gpus)}"


@dataclass
class DevicePlan:
    """What the run asked for, what it uses, and why the two differ."""

    machine: Machine
    asked: dict[str, Any]
    precision: str = "float32"
    jit_compile: bool = False
    distribute: str = "none"
    fallbacks: list[str] = field(default_factory=list)
    _strategy: Any = field(default=None, repr=False)

    @property
    def used(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "jit_compile": self.jit_compile,
            "distribute": self.distribute,
        }

    def record(self) -> dict[str, Any]:
        """run.json's "devices" entry."""
        return {
            "cpu_cores": self.machine.cpu_cores,
            "gpus": list(self.machine.gpus),
            "gpu_kind": self.machine.gpu_kind,
            "platform": f"{platform.system()} {platform.machine()}",
            "asked": self.asked,
            "used": self.used,
            "fallbacks": self.fallbacks,
        }

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Build, load and compile models in here: layers take the precision
        they are made with, and a MirroredStrategy mirrors the variables made in
        its scope. The previous dtype policy comes back on exit, so the next job
        of a --multirun in this process starts from float32."""
        import keras

        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(self.precision)
        try:
            with self._strategy_scope():
                yield
        finally:
            keras.config.set_dtype_policy(previous)

    def _strategy_scope(self) -> contextlib.AbstractContextManager[Any]:
        if self.distribute != "mirrored":
            return contextlib.nullcontext()
        if self._strategy is None:
            import tensorflow as tf

            self._strategy = tf.distribute.MirroredStrategy()
        return self._strategy.scope()


def plan_devices(
    cfg: DictConfig, plugins: Sequence[str] = (), machine: Machine | None = None
) -> DevicePlan:
    """cfg.trainer's device choices resolved on `machine` (this one by default);
    each fallback is logged once as a warning, the plan as one info line."""
    trainer = cfg.trainer
    check_devices(trainer)
    machine = machine or Machine.detect()
    asked = {
        "precision": trainer.get("precision", "float32"),
        "jit_compile": trainer.get("jit_compile", "auto"),
        "distribute": trainer.get("distribute", "none"),
    }
    plan = DevicePlan(machine, asked)
    plan.precision = _precision(asked["precision"], machine, _own_train_step(cfg, plugins), plan)
    plan.jit_compile = _jit(asked["jit_compile"], machine, bool(trainer.get("deterministic")), plan)
    plan.distribute = _distribute(asked["distribute"], machine, plan)
    for why in plan.fallbacks:
        log.warning("%s", why)
    log.info(
        "devices: %s; precision %s, XLA %s, distribute %s",
        machine.describe(),
        plan.precision,
        "on" if plan.jit_compile else "off",
        plan.distribute,
    )
    return plan


def _precision(asked: str, machine: Machine, own_train_step: str | None, plan: DevicePlan) -> str:
    if asked == "float32":
        return asked
    if own_train_step:
        plan.fallbacks.append(
            f"trainer.precision={asked}: model={own_train_step} computes its loss in its own "
            "training step, which adx runs in float32 only; training in float32"
        )
        return "float32"
    if machine.gpus:
        return asked
    if asked == "mixed_bfloat16" and machine.cpu_bfloat16:
        return asked  # native bfloat16 on this CPU (docs/devices.md has the numbers)
    needs = "a GPU" if asked == "mixed_float16" else "a GPU or a CPU with AVX512_BF16/AMX"
    plan.fallbacks.append(
        f"trainer.precision={asked} needs {needs} and this machine has none; training in float32"
    )
    return "float32"


def _jit(asked: Any, machine: Machine, deterministic: bool, plan: DevicePlan) -> bool:
    if asked == "auto":
        # XLA pays off on CUDA only (on CPU it made the default model ~1.7x slower),
        # and TensorFlow's deterministic ops do not all exist under XLA.
        return machine.gpu_kind == "cuda" and not deterministic
    if asked and machine.gpu_kind == "metal":
        plan.fallbacks.append(
            "trainer.jit_compile=true: tensorflow-metal has no XLA; training without it"
        )
        return False
    if asked and deterministic:
        # Keras itself turns XLA off under op determinism; say so instead.
        plan.fallbacks.append(
            "trainer.jit_compile=true needs trainer.deterministic=false (TensorFlow's "
            "deterministic ops do not all run under XLA); training without XLA"
        )
        return False
    return bool(asked)


def _distribute(asked: str, machine: Machine, plan: DevicePlan) -> str:
    if asked == "mirrored" and len(machine.gpus) < 2:
        plan.fallbacks.append(
            f"trainer.distribute=mirrored needs at least 2 GPUs and this machine has "
            f"{len(machine.gpus)}; training on one device"
        )
        return "none"
    return asked


def _own_train_step(cfg: DictConfig, plugins: Sequence[str]) -> str | None:
    """The model's name when it trains with a train_step of its own (VAE, Deep
    SVDD, IAEAD, GANomaly): their losses mix float32 state with the layers'
    outputs, which mixed precision would make float16/bfloat16."""
    import keras

    from anomaly_cli.targets import resolve_target

    model_class = resolve_target("model", cfg.model.get("_target_"), plugins)
    if model_class.train_step is keras.Model.train_step:
        return None
    return str(cfg.model.get("name") or model_class.__name__)


def _gpu_name(tf: Any, gpu: Any) -> str:
    try:
        details = tf.config.experimental.get_device_details(gpu)
    except Exception:  # pluggable devices may not describe themselves
        details = {}
    return str(details.get("device_name") or gpu.name)


def _cpu_has_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        flags = cpuinfo.read_text().split()
    except OSError:  # not Linux: no way to tell, so no native bfloat16 assumed
        return False
    return any(flag in flags for flag in _BF16_CPU_FLAGS)
