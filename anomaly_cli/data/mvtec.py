"""MVTec AD from disk, with ground-truth masks for pixel-level evaluation.

One category of the MVTec AD layout:

    <root>/<category>/train/good/*.png
    <root>/<category>/test/good/*.png, test/<defect>/*.png
    <root>/<category>/ground_truth/<defect>/<stem>_mask.png

MVTec's own division is kept: train (and val, a seeded share of train/good)
come from train/good, test from test/*. "good" is the normal class and each
defect folder an anomaly class. Each defect image must have its mask and each
mask its image; the masks travel with the test split, so `assess` writes
pixel_metrics.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from anomaly_cli.data.base import ANOMALY, CLEAN, NORMAL, LoadContext, Splits
from anomaly_cli.data.images import (
    FileSplit,
    check_images,
    image_files,
    skipped_report,
)
from anomaly_cli.data.inputs import as_list, existing_dir
from anomaly_cli.data.preprocess import Augment, ImagePreprocess
from anomaly_cli.data.splits import UNUSED, check_splits, limit_anomalies, resolve_classes
from anomaly_cli.errors import AdxUserError

GOOD = "good"
LAYOUT = "<category>/train/good/, test/<defect>/ and ground_truth/<defect>/<stem>_mask.png"


@dataclass(frozen=True)
class Category:
    """Every sample of one category, in a fixed order: train/good, then test/* by folder."""

    folder: Path
    paths: list[Path]
    classes: list[str]
    # The mask of each defect image; None for good ones.
    masks: list[Path | None]
    in_train: list[bool]

    @property
    def defects(self) -> list[str]:
        return sorted({c for c in self.classes if c != GOOD})


def load(cfg: DictConfig, ctx: LoadContext) -> Splits:
    """One category of configs/dataset/mvtec.yaml as train / val / test with test masks."""
    if ctx.protocol != CLEAN:
        raise AdxUserError(
            f"protocol={ctx.protocol} does not apply to dataset=mvtec, whose train/test "
            "division is fixed; use protocol=clean"
        )
    prep = ImagePreprocess.from_config(cfg.preprocess)
    augment = Augment.from_config(cfg.get("augment"))
    val_fraction = _fraction(cfg, "val_fraction", zero_allowed=False)
    val_anomaly_fraction = _fraction(cfg, "val_anomaly_fraction", zero_allowed=True)
    folder = category_folder(cfg.get("root"), cfg.get("category"))
    category = read_category(folder)
    chosen = chosen_defects(cfg.get("anomaly_classes"), category.defects)

    # Decode every image and mask once; a sample goes if either will not read.
    masks = [m for m in category.masks if m is not None]
    checked = check_images(category.paths + masks, bool(cfg.get("strict", False)))
    broken = {path for path, _ in checked.bad}
    keep = [
        i
        for i, (path, mask) in enumerate(zip(category.paths, category.masks, strict=True))
        if str(path) not in broken and (mask is None or str(mask) not in broken)
    ]

    root = Path(str(cfg.root)).expanduser()
    classes = np.array([category.classes[i] for i in keep], dtype=str)
    labels = np.full(len(keep), UNUSED, dtype=np.int8)
    labels[classes == GOOD] = NORMAL
    labels[np.isin(classes, chosen)] = ANOMALY
    in_train = np.array([category.in_train[i] for i in keep], dtype=bool)
    parts = split_mvtec(labels, classes, in_train, cfg, ctx.seed)

    pool = FileSplit(
        ids=np.array([category.paths[i].relative_to(root).as_posix() for i in keep]),
        labels=labels,
        classes=classes,
        paths=np.array([str(category.paths[i]) for i in keep]),
        masks=np.array([str(category.masks[i] or "") for i in keep]),
        preprocess=prep,
        cache=bool(cfg.get("cache", False)),
    )
    info = {
        "source": "MVTec AD",
        "root": str(cfg.root),
        "category": folder.name,
        "path": str(folder.resolve()),
        "classes": [GOOD, *category.defects],
        "defects": category.defects,
        "normal_classes": [GOOD],
        "anomaly_classes": chosen,
        "split": (
            f"MVTec's own: train = train/good less val; val = {val_fraction} of train/good "
            f"(seeded) + {val_anomaly_fraction} of each defect's test images; test = the rest "
            "of test/"
        ),
        "val_fraction": val_fraction,
        "val_anomaly_fraction": val_anomaly_fraction,
        "masks_found": len(masks),
        "preprocessing": prep.describe(),
        "skipped_files": skipped_report(checked.bad),
    }
    return Splits(
        **{name: pool.select(idx) for name, idx in parts.items()},
        input_shape=prep.shape,
        info=info,
        protocol=CLEAN,
        augment=augment,
    )


def _fraction(cfg: DictConfig, key: str, zero_allowed: bool) -> float:
    """A share in [0, 1) (or (0, 1)); anything else is one line naming the key."""
    value = cfg.get(key)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    low_ok = number >= 0 if zero_allowed else number > 0
    if not (low_ok and number < 1):
        low = "0 (inclusive)" if zero_allowed else "0"
        raise AdxUserError(f"dataset.{key}={value} must lie between {low} and 1 (exclusive)")
    return number


def category_folder(root: Any, category: Any) -> Path:
    """<root>/<category>; a wrong root or category lists what is there."""
    hint = f"point dataset.root at the MVTec AD folder that holds the categories ({LAYOUT})"
    if root is None:
        raise AdxUserError(f"dataset.root is not set; {hint}")
    base = existing_dir(root, "dataset.root", hint)
    found = categories(base)
    folder = base / str(category)
    if category is None or str(category) not in found:
        if found:
            there = f"categories there: {', '.join(found)}"
        elif _is_category(base):
            there = (
                f"it looks like a category itself; set dataset.root={base.parent} "
                f"dataset.category={base.name}"
            )
        else:
            there = f"it holds no category folder ({LAYOUT})"
        name = "is not set" if category is None else f"={category} is not under {base}"
        raise AdxUserError(f"dataset.category{name}; {there}")
    return folder


def categories(root: Path) -> list[str]:
    """Sub-folders of `root` laid out as an MVTec AD category."""
    return sorted(p.name for p in root.iterdir() if _is_category(p))


def _is_category(folder: Path) -> bool:
    return (folder / "train").is_dir() and (folder / "test").is_dir()


def read_category(folder: Path) -> Category:
    """Pair every test image with its mask; any unpaired image or mask is an error."""
    train = image_files(folder / "train" / GOOD)
    if not train:
        raise AdxUserError(
            f"{folder / 'train' / GOOD} holds no images; an MVTec AD category holds {LAYOUT}"
        )
    paths, classes = list(train), [GOOD] * len(train)
    masks: list[Path | None] = [None] * len(train)
    in_train = [True] * len(train)
    test_folders = sorted(p for p in (folder / "test").iterdir() if p.is_dir())
    for test_folder in test_folders:
        images = image_files(test_folder)
        defect = test_folder.name
        found = _mask_index(folder / "ground_truth" / defect) if defect != GOOD else {}
        for image in images:
            if defect != GOOD and image.stem not in found:
                expected = folder / "ground_truth" / defect / f"{image.stem}_mask.png"
                raise AdxUserError(
                    f"defect image {image} has no mask (expected {expected}); "
                    "add the mask or remove the image"
                )
            paths.append(image)
            classes.append(defect)
            masks.append(found.get(image.stem))
            in_train.append(False)
    _no_orphan_masks(folder, {(c, p.stem) for c, p in zip(classes, paths, strict=True)})
    return Category(folder, paths, classes, masks, in_train)


def _mask_index(folder: Path) -> dict[str, Path]:
    """Image stem -> mask file: '003_mask.png' (MVTec's naming) or plain '003.png'."""
    return {p.stem.removesuffix("_mask"): p for p in image_files(folder)}


def _no_orphan_masks(folder: Path, images: set[tuple[str, str]]) -> None:
    truth = folder / "ground_truth"
    if not truth.is_dir():
        return
    for defect_folder in sorted(p for p in truth.iterdir() if p.is_dir() and p.name != GOOD):
        for stem, mask in sorted(_mask_index(defect_folder).items()):
            if (defect_folder.name, stem) not in images:
                raise AdxUserError(
                    f"mask {mask} has no image (expected {folder / 'test' / defect_folder.name}"
                    f"/{stem}.png); add the image or remove the mask"
                )


def chosen_defects(value: Any, defects: list[str]) -> list[str]:
    """dataset.anomaly_classes as defect names (null: every defect)."""
    if value is None:
        return list(defects)
    wanted = as_list(value)
    if GOOD in [str(v) for v in wanted]:
        raise AdxUserError(
            f"dataset.anomaly_classes={value} names {GOOD}, MVTec's normal class; "
            f"choose among the defects: {', '.join(defects)}"
        )
    return resolve_classes(value, defects, "dataset.anomaly_classes")


def split_mvtec(
    labels: np.ndarray, classes: np.ndarray, in_train: np.ndarray, cfg: DictConfig, seed: int
) -> dict[str, np.ndarray]:
    """Train / val / test indices that keep MVTec's own train/test division.

    Val takes `val_fraction` of train/good and `val_anomaly_fraction` of each
    defect's test images (after `n_anomalies` drew the anomalies in use);
    `anomaly_ratio` then caps anomalies in val and in test, as for other sources.
    """
    rng = np.random.default_rng(seed)
    train_good = rng.permutation(np.flatnonzero(in_train & (labels == NORMAL)))
    n_val = min(max(1, round(len(train_good) * float(cfg.val_fraction))), len(train_good) - 1)
    if n_val < 1:
        raise AdxUserError(
            f"train/good holds {len(train_good)} readable image(s); MVTec needs at least 2 "
            "(one to train on, one to validate)"
        )
    anomaly = np.flatnonzero(labels == ANOMALY)
    val_anomaly = []
    for defect in sorted(set(classes[anomaly])):
        of_defect = rng.permutation(anomaly[classes[anomaly] == defect])
        val_anomaly.extend(of_defect[: round(len(of_defect) * float(cfg.val_anomaly_fraction))])
    test_normal = np.flatnonzero(~in_train & (labels == NORMAL))
    parts = {
        "train": train_good[n_val:],
        "val": np.concatenate([train_good[:n_val], np.asarray(val_anomaly, dtype=int)]),
        "test": np.concatenate([test_normal, np.setdiff1d(anomaly, val_anomaly)]),
    }
    parts = limit_anomalies(parts, labels, cfg, rng)
    test_labels = labels[parts["test"]]
    if not np.any(test_labels == NORMAL):
        raise AdxUserError("test/good holds no readable image; MVTec's test split needs it")
    if not np.any(test_labels == ANOMALY):
        raise AdxUserError(
            f"no test anomaly is left (dataset.anomaly_classes={cfg.get('anomaly_classes')}, "
            f"dataset.val_anomaly_fraction={cfg.val_anomaly_fraction}); "
            "lower val_anomaly_fraction or choose defects with more images"
        )
    check_splits(parts, labels)
    return {name: np.sort(idx) for name, idx in parts.items()}
