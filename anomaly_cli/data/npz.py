"""MedMNIST-style `.npz` files: images and integer labels per train / val / test.

The file holds `train_images`, `train_labels`, `val_images`, `val_labels`,
`test_images` and `test_labels` (how MedMNIST ships, e.g. pneumoniamnist.npz).
One or more classes are normal (`normal_class`: label ints or `class_names`),
the others (or `anomaly_classes`) anomalies.
With `use_file_splits` (default) the file's own splits are kept, so numbers
compare with published MedMNIST results: train keeps its normal samples only
(the anomalies it drops are counted in data.json), val and test stay as they
are. Otherwise every sample goes into one pool that `dataset.split` and the
protocol cut. Images are preprocessed once, up front, into float arrays.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from anomaly_cli.data.base import ANOMALY, CLEAN, NORMAL, ArraySplit, LoadContext, Splits
from anomaly_cli.data.inputs import as_list, existing_file, unreadable
from anomaly_cli.data.preprocess import Augment, ImagePreprocess
from anomaly_cli.data.splits import (
    UNUSED,
    array_splits,
    check_splits,
    class_labels,
    limit_anomalies,
)
from anomaly_cli.errors import AdxUserError

SPLITS = ("train", "val", "test")
EXPECTED = tuple(f"{split}_{kind}" for split in SPLITS for kind in ("images", "labels"))


def load(cfg: DictConfig, ctx: LoadContext) -> Splits:
    path = _npz_path(cfg.get("path"))
    prep = ImagePreprocess.from_config(cfg.get("preprocess") or {})
    file_splits = bool(cfg.get("use_file_splits", True))
    if file_splits and ctx.protocol != CLEAN:
        raise AdxUserError(
            f"dataset.use_file_splits=true keeps the train/val/test of {path}, which only "
            f"protocol=clean uses; set dataset.use_file_splits=false for protocol={ctx.protocol}"
        )
    arrays = read_arrays(path)
    labels = {split: arrays[f"{split}_labels"] for split in SPLITS}
    names = label_names(labels, cfg.get("class_names"), path)
    normal, anomalous = choose_labels(cfg, names, path)
    x = np.concatenate([preprocess_images(arrays[f"{s}_images"], prep) for s in SPLITS])
    classes = np.concatenate([[names[int(v)] for v in labels[s]] for s in SPLITS]).astype(str)
    ids = np.array([f"{s}-{i:05d}" for s in SPLITS for i in range(len(labels[s]))])
    origin = np.concatenate([np.full(len(labels[s]), s) for s in SPLITS])
    # splits.py selects by `normal_class` / `anomaly_classes`; give it the resolved names.
    selection = OmegaConf.create(
        {
            "normal_class": [names[label] for label in normal],
            "anomaly_classes": [names[label] for label in anomalous],
            "n_anomalies": cfg.get("n_anomalies"),
            "anomaly_ratio": cfg.get("anomaly_ratio"),
            "split": OmegaConf.to_container(cfg.get("split") or {}),
        }
    )
    info: dict[str, Any] = {
        "source": "npz",
        "path": str(path),
        "use_file_splits": file_splits,
        "file_counts": {s: len(labels[s]) for s in SPLITS},
        "preprocessing": prep.describe(),
    }
    augment = Augment.from_config(cfg.get("augment"))
    if not file_splits:
        splits = array_splits(x, classes, ids, selection, ctx, info, list(names.values()))
        return replace(splits, augment=augment)
    binary = class_labels(classes, list(names.values()), selection)
    parts, dropped = file_split_indices(binary, origin, selection, ctx.seed)
    pool = ArraySplit(ids=ids, labels=binary, classes=classes, x=x)
    info.update(
        classes=list(names.values()),
        normal_classes=[names[label] for label in sorted(normal)],
        anomaly_classes=[names[label] for label in sorted(anomalous)],
        protocol=ctx.protocol,
        dropped_train_anomalies=dropped,
        unused_samples=int(np.sum(binary == UNUSED)),
    )
    return Splits(
        **{name: pool.select(idx) for name, idx in parts.items()},
        input_shape=prep.shape,
        info=info,
        protocol=ctx.protocol,
        augment=augment,
    )


def choose_labels(
    cfg: DictConfig, names: dict[int, str], path: Path
) -> tuple[list[int], list[int]]:
    """Normal and anomaly labels from dataset.normal_class / anomaly_classes."""
    normal = resolve_labels(cfg.get("normal_class"), names, "dataset.normal_class", path)
    chosen = cfg.get("anomaly_classes")
    if chosen is None:
        anomalous = [label for label in names if label not in normal]
        if not anomalous:
            raise AdxUserError(
                f"dataset.normal_class={cfg.get('normal_class')} leaves no anomaly label in "
                f"{path}; labels present: {_shown(names)}"
            )
        return normal, anomalous
    anomalous = resolve_labels(chosen, names, "dataset.anomaly_classes", path)
    both = sorted(set(normal) & set(anomalous))
    if both:
        raise AdxUserError(
            f"dataset.anomaly_classes repeats the normal label {', '.join(map(str, both))}; "
            "a label is either normal or an anomaly"
        )
    return normal, anomalous


def _npz_path(value: Any) -> Path:
    return existing_file(
        value,
        "dataset.path",
        "point it at a MedMNIST-style .npz file",
        f"pass dataset.path=<file>.npz (arrays {', '.join(EXPECTED)}, as MedMNIST ships them)",
    )


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The six arrays, checked: image layout, value range, one integer label per image."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            present = sorted(npz.files)
            missing = [name for name in EXPECTED if name not in present]
            if missing:
                raise AdxUserError(
                    f"dataset.path={path} lacks {', '.join(missing)}; it holds "
                    f"{', '.join(present) or 'no arrays'}; expected {', '.join(EXPECTED)}"
                )
            arrays = {name: npz[name] for name in EXPECTED}
    except AdxUserError:
        raise
    except (OSError, ValueError, AttributeError, TypeError) as error:
        # Not a zip, a bare .npy, or object arrays (which need pickle).
        raise AdxUserError(
            f"dataset.path={path} cannot be read as an .npz of arrays ({unreadable(error)}); "
            "save it with numpy.savez"
        ) from None
    for split in SPLITS:
        images = _check_images(arrays[f"{split}_images"], f"{split}_images", path)
        labels = _check_labels(arrays[f"{split}_labels"], f"{split}_labels", path)
        if len(images) != len(labels):
            raise AdxUserError(
                f"dataset.path={path}: {split}_images has {len(images)} images but "
                f"{split}_labels has {len(labels)} labels; store one label per image"
            )
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    return arrays


def _check_images(images: np.ndarray, name: str, path: Path) -> np.ndarray:
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3, 4)):
        raise AdxUserError(
            f"dataset.path={path}: {name} has shape {images.shape}; expected (N, H, W) "
            "or (N, H, W, C) with C 1, 3 or 4"
        )
    if images.size == 0:
        return images
    if np.issubdtype(images.dtype, np.integer):
        low, high = int(images.min()), int(images.max())
        if low < 0 or high > 255:
            raise AdxUserError(
                f"dataset.path={path}: {name} holds integers {low}..{high}; "
                "store uint8 (0..255) or floats in [0, 1]"
            )
        return images.astype(np.uint8, copy=False)
    if np.issubdtype(images.dtype, np.floating):
        if np.isnan(images).any():
            raise AdxUserError(f"dataset.path={path}: {name} holds NaN; replace or drop those")
        low, high = float(images.min()), float(images.max())
        if low < 0.0 or high > 1.0:
            raise AdxUserError(
                f"dataset.path={path}: {name} holds floats {low:g}..{high:g}; "
                "scale them to [0, 1] or store uint8"
            )
        return images.astype(np.float32, copy=False)
    raise AdxUserError(
        f"dataset.path={path}: {name} has dtype {images.dtype}; store uint8 or floats in [0, 1]"
    )


def _check_labels(labels: np.ndarray, name: str, path: Path) -> np.ndarray:
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    whole = np.issubdtype(labels.dtype, np.integer) or (
        np.issubdtype(labels.dtype, np.floating) and np.all(np.mod(labels, 1) == 0)
    )
    if labels.ndim != 1 or not whole:
        raise AdxUserError(
            f"dataset.path={path}: {name} has shape {labels.shape} and dtype {labels.dtype}; "
            "expected one integer class per image, (N,) or (N, 1) (multi-label is not supported)"
        )
    return labels.astype(np.int64)


def label_names(labels: dict[str, np.ndarray], class_names: Any, path: Path) -> dict[int, str]:
    """Each label present in the file -> its class name (dataset.class_names, or the int)."""
    present = sorted({int(v) for split in labels.values() for v in np.unique(split)})
    if class_names is None:
        return {label: str(label) for label in present}
    if not isinstance(class_names, (list, tuple, ListConfig)):
        raise AdxUserError(
            f"dataset.class_names={class_names} must be a list of names, one per label 0, 1, ..."
        )
    names = [str(n) for n in class_names]
    if len(set(names)) != len(names):
        raise AdxUserError(f"dataset.class_names={names} repeats a name; give each label its own")
    outside = [label for label in present if not 0 <= label < len(names)]
    if outside:
        raise AdxUserError(
            f"dataset.class_names has {len(names)} names but {path} has label "
            f"{outside[0]}; give one name per label 0..{max(present)}"
        )
    return {label: names[label] for label in present}


def resolve_labels(value: Any, names: dict[int, str], key: str, path: Path) -> list[int]:
    """Labels for a config value: a label int or a class name, or a list of them."""
    wanted = as_list(value)
    by_name = {name: label for label, name in names.items()}
    found, unknown = [], []
    for item in wanted:
        if isinstance(item, int) and not isinstance(item, bool) and item in names:
            found.append(item)
        elif item is not None and str(item) in by_name:
            found.append(by_name[str(item)])
        else:
            unknown.append(item)
    if not wanted or unknown:
        raise AdxUserError(
            f"{key}={value} is not a label in {path}; labels present: {_shown(names)}"
        )
    return list(dict.fromkeys(found))


def _shown(names: dict[int, str]) -> str:
    """'0, 1' or, with class names, '0 (normal), 1 (pneumonia)'."""
    return ", ".join(
        str(label) if name == str(label) else f"{label} ({name})" for label, name in names.items()
    )


def file_split_indices(
    labels: np.ndarray, origin: np.ndarray, cfg: DictConfig, seed: int
) -> tuple[dict[str, np.ndarray], int]:
    """The file's own splits: train without its anomalies, n_anomalies / anomaly_ratio on
    val and test. Returns the indices and how many anomalies train dropped."""
    rng = np.random.default_rng(seed)
    train = np.flatnonzero(origin == "train")
    dropped = int(np.sum(labels[train] == ANOMALY))
    parts = {"train": train[labels[train] == NORMAL]}
    for split in ("val", "test"):
        idx = np.flatnonzero(origin == split)
        parts[split] = idx[labels[idx] != UNUSED]
    parts = limit_anomalies(parts, labels, cfg, rng)
    check_splits(parts, labels)
    return parts, dropped


def preprocess_images(images: np.ndarray, prep: ImagePreprocess) -> np.ndarray:
    """(N, H, W[, C]) uint8 or [0, 1] floats -> (N, *prep.shape) float32 model inputs, in order."""
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if len(images) == 0:
        return np.zeros((0, *prep.shape), np.float32)
    import tensorflow as tf

    batches = (
        tf.data.Dataset.from_tensor_slices(images)
        .map(prep.apply, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(1024)
    )
    return np.concatenate([batch.numpy() for batch in batches])
