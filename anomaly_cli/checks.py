"""Everything a config can get wrong, checked before any data is read.

`adx` runs these checks on every job of a command before Hydra creates a
folder (a `--multirun` of ten jobs with one bad value fails in a second, not
after nine trainings), and each task runs them again on the config it got,
so in-process callers are covered too. Nothing here imports TensorFlow.
Model hyperparameters are checked when the model is built, which needs the
sample shape and so comes after the data is read, but before training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.backbone_weights import check_backbone_config
from anomaly_cli.scoring.kinds import STRUCTURAL_KINDS, UNIT_RANGE_MODELS
from anomaly_cli.targets import check_targets, plugin_list
from anomaly_cli.training.devices import check_devices
from anomaly_cli.training.threads import check_threads

# Images DRAEM keeps from an anomaly-source folder, evenly spaced when there are more.
MAX_SOURCE_IMAGES = 256


def check_train_config(cfg: DictConfig) -> None:
    from anomaly_cli.logging_backends import check_logger

    check_trainer(cfg.trainer)
    check_logger(cfg.get("logger"))
    check_optimizer(cfg.optimizer)
    # A pretrained backbone's weights file, before the data (model.backbone.weights).
    check_backbone_config(cfg.get("model"))
    check_assessment_config(cfg, plugin_list(cfg.get("plugins")), training=True)
    check_anomaly_source(cfg.model.get("anomaly_source"))
    check_unit_range(cfg)
    check_image_size_for_model(cfg)


def check_image_size_for_model(cfg: DictConfig) -> None:
    """What a model needs of dataset.preprocess.image_size, where the config sets it:
    a window that fits the image, a backbone's smallest input. The model checks
    the same on the real sample shape when it is built (after the data)."""
    from anomaly_cli.models.backbone_weights import BACKBONES

    model, dataset = cfg.get("model"), cfg.get("dataset")
    size = ((dataset or {}).get("preprocess") or {}).get("image_size")
    if model is None or not is_integer(size):
        return
    window = model.get("window_size")
    if is_integer(window) and window > size:
        raise AdxUserError(
            f"model.window_size={window} is larger than the {size}x{size} images of "
            f"model={model.get('name')}; choose a window of at most {size} px or raise "
            "dataset.preprocess.image_size"
        )
    backbone = model.get("backbone") or {}
    spec = BACKBONES.get(backbone.get("name")) if isinstance(backbone, DictConfig) else None
    if spec is not None and size < spec.min_size:
        raise AdxUserError(
            f"dataset.preprocess.image_size={size} is smaller than {backbone.get('name')} "
            f"takes ({spec.min_size} px); set dataset.preprocess.image_size={spec.min_size} "
            "or more (ImageNet weights were trained at 224)"
        )


def check_unit_range(cfg: DictConfig) -> None:
    """Models and scores built for images in [0, 1] (scoring/kinds.py) refuse a
    dataset that rescales them: wrong features or constants, and no error later."""
    model, dataset = cfg.get("model"), cfg.get("dataset")
    if model is None or dataset is None:
        return
    if model.get("name") in UNIT_RANGE_MODELS:
        needs = f"model={model.get('name')}"
    else:
        kinds = [(k, model.get(k)) for k in ("loss", "score") if model.get(k) in STRUCTURAL_KINDS]
        if not kinds:
            return
        needs = f"model.{kinds[0][0]}={kinds[0][1]}"
    preprocess = dataset.get("preprocess") or {}
    try:
        value_range = [float(v) for v in preprocess.get("value_range", [0, 1])]
    except (TypeError, ValueError):
        return  # not a range at all: the dataset's preprocessing says so
    if value_range != [0.0, 1.0] or preprocess.get("gcn", False):
        raise AdxUserError(
            f"{needs} needs images in [0, 1], but dataset.preprocess sets "
            f"value_range={preprocess.get('value_range')} gcn={preprocess.get('gcn', False)}; "
            "set dataset.preprocess.value_range=[0,1] and dataset.preprocess.gcn=false"
        )


def check_anomaly_source(value: Any) -> list[Path]:
    """model.anomaly_source (model=draem): null, or a folder of readable images
    (sub-folders included, as the DTD textures are laid out), checked before any
    data is read. Returns the image files used (none for null): all of them, or
    MAX_SOURCE_IMAGES evenly spaced; only those are decoded here."""
    from concurrent.futures import ThreadPoolExecutor

    from anomaly_cli.data.images import decode_error, list_images

    if value is None:
        return []
    key = "model.anomaly_source"
    images = list_images(value, key, recursive=True)
    if len(images) > MAX_SOURCE_IMAGES:
        step = (len(images) - 1) / (MAX_SOURCE_IMAGES - 1)
        images = [images[round(i * step)] for i in range(MAX_SOURCE_IMAGES)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        errors = list(pool.map(decode_error, images))
    for path, why in zip(images, errors, strict=True):
        if why is not None:
            raise AdxUserError(
                f"{key}={value} holds an unreadable image, {path} ({why}); "
                "remove it or point model.anomaly_source at another folder"
            )
    return images


def check_assessment_config(
    cfg: DictConfig, plugins: list[str], origin: str = "", training: bool = False
) -> None:
    """What train and evaluate share: data sampling, threshold, scoring, plots, targets.

    `plugins` come from the user's own command, never from a run folder's
    config, so a copied run cannot allow itself new code. `training`: the
    batch size may still be `auto`, which only a training split decides.
    """
    from anomaly_cli.data.splits import check_sampling
    from anomaly_cli.evaluation.thresholds import check_threshold
    from anomaly_cli.reporting.plots import check_plots
    from anomaly_cli.scoring.scorer import ScoringOptions

    check_targets(cfg, plugins, origin)
    check_sampling(cfg.dataset, cfg.get("protocol"))
    check_threshold(cfg.threshold)
    ScoringOptions.from_config(cfg.get("scoring"))
    check_plots(cfg.get("report"))
    _check_batch_size(cfg.trainer, training)


def check_trainer(trainer: DictConfig) -> None:
    from anomaly_cli.training.stable import is_dynamic_seed

    for key, lowest in (("epochs", 1), ("patience", 0)):
        _at_least(trainer, "trainer", key, lowest)
    _check_batch_size(trainer, training=True)
    if trainer.get("attempts") is not None:
        _at_least(trainer, "trainer", "attempts", 1)
    min_delta = _number(trainer, "min_delta", "trainer")
    if min_delta < 0:
        raise AdxUserError(f"trainer.min_delta={trainer.min_delta} must not be negative")
    seed = 0 if is_dynamic_seed(trainer.get("seed")) else _integer(trainer, "seed", "trainer")
    if not 0 <= seed < 2**32:
        raise AdxUserError(f"trainer.seed={seed} must lie between 0 and 2**32 - 1")
    if trainer.get("verbose") not in (0, 1, 2, "auto"):
        raise AdxUserError(f"trainer.verbose={trainer.get('verbose')}; choose auto, 0, 1 or 2")
    every = trainer.get("checkpoint_every")
    whole = isinstance(every, int) and not isinstance(every, bool)
    if every not in (None, "auto") and not (whole and every >= 1):
        raise AdxUserError(
            f"trainer.checkpoint_every={every}; choose auto or a whole number of epochs >= 1"
        )
    check_threads(trainer.get("threads"))
    check_devices(trainer)


def check_optimizer(optimizer: DictConfig) -> None:
    from anomaly_cli.training.optimizers import SCHEDULES

    # `_target_` itself is checked with every other target (check_targets).
    if optimizer.get("_target_") is None:
        raise AdxUserError(
            "optimizer._target_ is not set; choose optimizer=adam|adamw|sgd or name a class "
            "such as optimizer._target_=keras.optimizers.Nadam"
        )
    if optimizer.get("schedule") not in SCHEDULES:
        raise AdxUserError(
            f"optimizer.schedule={optimizer.get('schedule')}; choose one of: {', '.join(SCHEDULES)}"
        )
    if not _number(optimizer, "lr", "optimizer") > 0:
        raise AdxUserError(f"optimizer.lr={optimizer.lr} must be positive, e.g. 0.001")
    for key in ("beta_1", "beta_2"):
        if key in optimizer and not 0 <= _number(optimizer, key, "optimizer") < 1:
            raise AdxUserError(f"optimizer.{key}={optimizer[key]} must lie in [0, 1)")
    for key in ("weight_decay", "momentum"):
        if key in optimizer and _number(optimizer, key, "optimizer") < 0:
            raise AdxUserError(f"optimizer.{key}={optimizer[key]} must not be negative")
    if "decay_rate" in optimizer and not 0 < _number(optimizer, "decay_rate", "optimizer") <= 1:
        raise AdxUserError(f"optimizer.decay_rate={optimizer.decay_rate} must lie in (0, 1]")
    if optimizer.get("schedule") in ("step", "plateau"):
        epochs = optimizer.get("decay_epochs")
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise AdxUserError(
                f"optimizer.decay_epochs={epochs} must be a whole number >= 1 for "
                f"optimizer.schedule={optimizer.schedule} (epochs between two decays)"
            )
    if (
        "min_lr_ratio" in optimizer
        and not 0 <= _number(optimizer, "min_lr_ratio", "optimizer") <= 1
    ):
        raise AdxUserError(f"optimizer.min_lr_ratio={optimizer.min_lr_ratio} must lie in [0, 1]")


def _check_batch_size(trainer: DictConfig, training: bool) -> None:
    """trainer.batch_size: a whole number, or `auto` (seed 002's Eq. 25) when training."""
    from anomaly_cli.training.stable import AUTO_BATCH_SIZE, is_auto_batch_size

    if not is_auto_batch_size(trainer.get("batch_size")):
        _at_least(trainer, "trainer", "batch_size", 1)
    elif not training:
        raise AdxUserError(
            f"trainer.batch_size={AUTO_BATCH_SIZE} is worked out from the training split, "
            "so only adx train takes it; pass a number, e.g. trainer.batch_size=64"
        )


def _at_least(group: DictConfig, name: str, key: str, lowest: int) -> None:
    value = _integer(group, key, name)
    if value < lowest:
        raise AdxUserError(f"{name}.{key}={value} must be at least {lowest}")


def is_number(value: Any) -> bool:
    """A real number from a config: int or float, not a bool (YAML's true) and not NaN."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(group: DictConfig, key: str, name: str) -> int:
    value = group.get(key)
    if not is_integer(value):
        raise AdxUserError(f"{name}.{key}={value} must be an integer")
    return value


def _number(group: DictConfig, key: str, name: str) -> float:
    value: Any = group.get(key)
    if not is_number(value):
        raise AdxUserError(f"{name}.{key}={value} must be a number")
    return float(value)
