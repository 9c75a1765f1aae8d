"""`dataset=folder`: the user's own images, in one of two layouts.

a) `normal_dir` plus `abnormal_dirs` (one folder or a list), optionally with
   `mask_dir`: classes are "normal" and the abnormal folders' names; masks are
   matched to anomalous images by file stem (`<stem>_mask.<ext>` or
   `<stem>.<ext>`), from `mask_dir/<abnormal folder name>/` when that exists
   (MVTec's ground_truth layout) and from `mask_dir` itself otherwise.
b) `root` with one sub-folder per class; `normal_class` / `anomaly_classes`
   choose among the sub-folders, and only the chosen ones are read.

Every file is decoded once up front (`images.check_images`), so unreadable
images are skipped and listed in data.json (or are an error with
`dataset.strict=true`); training then streams the files (`images.FileSplit`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from anomaly_cli.data.base import LoadContext, Splits
from anomaly_cli.data.images import (
    IMAGE_SUFFIXES,
    FileSplit,
    check_images,
    list_images,
    skipped_report,
)
from anomaly_cli.data.inputs import as_list, existing_dir, plain
from anomaly_cli.data.preprocess import Augment, ImagePreprocess
from anomaly_cli.data.splits import resolve_classes, select_splits
from anomaly_cli.errors import AdxUserError

NORMAL_CLASS = "normal"
MASK_SUFFIX = "_mask"


@dataclass
class Found:
    """Image files per class, before the decode check."""

    names: list[str]  # every class of the dataset, for selection and error messages
    normal: Any  # dataset.normal_class for select_splits
    paths: list[Path] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    masks: list[str] | None = None  # "" for an image without a mask
    info: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, folder: Path, files: Sequence[Path]) -> None:
        self.paths.extend(files)
        self.classes.extend([name] * len(files))
        self.ids.extend(f"{name}/{p.relative_to(folder).as_posix()}" for p in files)


def load(cfg: DictConfig, ctx: LoadContext) -> Splits:
    prep = ImagePreprocess.from_config(cfg.preprocess)
    augment = Augment.from_config(cfg.get("augment"))
    recursive = bool(cfg.get("recursive", False))
    if cfg.get("root") is not None:
        found = _from_root(cfg, recursive)
    else:
        found = _from_dirs(cfg, recursive)
    keep, bad = _readable(found, strict=bool(cfg.get("strict", False)))
    pool = FileSplit(
        ids=np.array(found.ids)[keep],
        labels=np.zeros(len(keep), np.int8),
        classes=np.array(found.classes)[keep],
        paths=np.array([str(p) for p in found.paths])[keep],
        masks=None if found.masks is None else np.array(found.masks)[keep],
        preprocess=prep,
        cache=bool(cfg.get("cache", False)),
    )
    selection = OmegaConf.create(
        {
            "normal_class": found.normal,
            "anomaly_classes": plain(cfg.get("anomaly_classes")),
            "n_anomalies": cfg.get("n_anomalies"),
            "anomaly_ratio": cfg.get("anomaly_ratio"),
            "split": plain(cfg.split),
        }
    )
    parts, chosen = select_splits(pool, selection, ctx, found.names)
    info = {
        "source": "folder",
        **found.info,
        "recursive": recursive,
        "images_found": len(found.paths),
        "preprocessing": prep.describe(),
        "skipped_files": skipped_report(bad),
        **chosen,
    }
    return Splits(
        **parts, input_shape=prep.shape, info=info, protocol=ctx.protocol, augment=augment
    )


def _from_dirs(cfg: DictConfig, recursive: bool) -> Found:
    """Layout a: normal_dir, abnormal_dirs and the optional mask_dir."""
    normal_dir = cfg.get("normal_dir")
    if normal_dir is None:
        raise AdxUserError(
            "dataset.normal_dir and dataset.root are both unset; dataset=folder needs "
            "dataset.normal_dir=<folder> with dataset.abnormal_dirs=<folder or [folders]>, "
            "or dataset.root=<folder with one sub-folder per class>"
        )
    if cfg.get("normal_class") not in (None, NORMAL_CLASS):
        raise AdxUserError(
            f"dataset.normal_class={cfg.normal_class} only applies with dataset.root; "
            f"with dataset.normal_dir the normal class is '{NORMAL_CLASS}', so leave it null"
        )
    abnormal = _dir_list(cfg.get("abnormal_dirs"))
    # class name -> (the path as the user wrote it, for messages; the folder)
    folders = {NORMAL_CLASS: (str(normal_dir), Path(normal_dir).expanduser())}
    for text in abnormal:
        folder = Path(text).expanduser()
        name = folder.resolve().name
        if name in folders:
            raise AdxUserError(
                f"dataset.abnormal_dirs={text}: the class name '{name}' is already taken "
                f"by {folders[name][0]}; classes are folder names, so rename one folder"
            )
        folders[name] = (text, folder)
    found = Found(names=list(folders), normal=NORMAL_CLASS)
    by_class: dict[str, list[Path]] = {}
    for name, (text, folder) in folders.items():
        key = "dataset.normal_dir" if name == NORMAL_CLASS else "dataset.abnormal_dirs"
        by_class[name] = list_images(text, key, recursive)
        found.add(name, folder, by_class[name])
    found.info = {
        "normal_dir": str(folders[NORMAL_CLASS][1].resolve()),
        "abnormal_dirs": [str(f.resolve()) for n, (_, f) in folders.items() if n != NORMAL_CLASS],
        "mask_dir": None,
    }
    mask_dir = cfg.get("mask_dir")
    if mask_dir is not None:
        anomalous = {n: files for n, files in by_class.items() if n != NORMAL_CLASS}
        masks = match_masks(anomalous, Path(mask_dir).expanduser(), str(mask_dir))
        found.masks = [masks.get(p, "") for p in found.paths]
        found.info["mask_dir"] = str(Path(mask_dir).expanduser().resolve())
    return found


def _dir_list(value: Any) -> list[str]:
    items = [str(v) for v in as_list(value) if v is not None and str(v) != ""]
    if not items:
        what = "is not set" if value is None else f"={plain(value)} names no folder"
        raise AdxUserError(
            f"dataset.abnormal_dirs {what}; the test split needs anomalies, so set "
            "dataset.abnormal_dirs=<folder> or a list [folder1,folder2]"
        )
    resolved = [Path(v).expanduser().resolve() for v in items]
    for i, path in enumerate(resolved):
        if path in resolved[:i]:
            raise AdxUserError(f"dataset.abnormal_dirs lists {items[i]} twice; list it once")
    return items


def match_masks(anomalous: dict[str, list[Path]], mask_dir: Path, text: str) -> dict[Path, str]:
    """The mask file of each anomalous image; every image needs one, every mask an image."""
    existing_dir(text, "dataset.mask_dir", "point it at a folder of masks")
    groups: dict[Path, list[Path]] = {}
    for name, files in anomalous.items():
        own = mask_dir / name
        groups.setdefault(own if own.is_dir() else mask_dir, []).extend(files)
    matched: dict[Path, str] = {}
    for folder, files in groups.items():
        images = _by_stem(files, strip_mask=False)
        masks = _by_stem(list_images(folder, "dataset.mask_dir"), strip_mask=True)
        lacking = [images[s] for s in images if s not in masks]
        if lacking:
            raise AdxUserError(
                f"abnormal image {lacking[0]} has no mask in {folder} (looked for "
                f"{lacking[0].stem}{MASK_SUFFIX}.* or {lacking[0].stem}.*){_more(lacking)}; "
                "add the masks or unset dataset.mask_dir"
            )
        orphans = [masks[s] for s in masks if s not in images]
        if orphans:
            raise AdxUserError(
                f"mask {orphans[0]} matches no abnormal image in dataset.abnormal_dirs"
                f"{_more(orphans)}; remove the mask or add its image"
            )
        matched.update({images[s]: str(masks[s]) for s in images})
    return matched


def _by_stem(files: Sequence[Path], strip_mask: bool) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in files:
        stem = path.stem
        if strip_mask and stem.endswith(MASK_SUFFIX):
            stem = stem[: -len(MASK_SUFFIX)]
        if stem in found:
            raise AdxUserError(
                f"{found[stem]} and {path} share the file stem '{stem}', so masks cannot be "
                "matched to images; rename one of them"
            )
        found[stem] = path
    return found


def _more(items: Sequence[Any]) -> str:
    return f" (and {len(items) - 1} more)" if len(items) > 1 else ""


def _from_root(cfg: DictConfig, recursive: bool) -> Found:
    """Layout b: one sub-folder per class under root; only the chosen classes are read."""
    text = str(cfg.root)
    for key in ("normal_dir", "abnormal_dirs", "mask_dir"):
        if cfg.get(key) is not None:
            raise AdxUserError(
                f"dataset.root={text} and dataset.{key}={cfg.get(key)} are both set; use "
                "dataset.root (one sub-folder per class) or dataset.normal_dir with "
                "dataset.abnormal_dirs, not both"
            )
    root = existing_dir(text, "dataset.root", "point it at a folder with one sub-folder per class")
    subs = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subs:
        raise AdxUserError(
            f"dataset.root={text} has no sub-folders; put each class's images in its own "
            "sub-folder, or use dataset.normal_dir and dataset.abnormal_dirs"
        )
    if cfg.get("normal_class") is None:
        raise AdxUserError(
            f"dataset.normal_class is not set; choose the normal class among the sub-folders "
            f"of dataset.root={text}: {', '.join(subs)}"
        )
    normal = resolve_classes(cfg.normal_class, subs, "dataset.normal_class")
    chosen = cfg.get("anomaly_classes")
    if chosen is None:
        used = subs
    else:
        used = [*normal, *resolve_classes(chosen, subs, "dataset.anomaly_classes")]
    found = Found(names=subs, normal=normal)
    for name in subs:
        if name in used:
            found.add(name, root / name, _class_images(root, name, text, recursive))
    found.info = {"root": str(root.resolve())}
    return found


def _class_images(root: Path, name: str, text: str, recursive: bool) -> list[Path]:
    try:
        return list_images(root / name, "dataset.root", recursive)
    except AdxUserError:
        raise AdxUserError(
            f"class folder {root / name} under dataset.root={text} holds no images "
            f"({', '.join(IMAGE_SUFFIXES)}); add images or leave the class out with "
            "dataset.normal_class / dataset.anomaly_classes"
        ) from None


def _readable(found: Found, strict: bool) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Indices of images that decode (and whose mask decodes); the rest, with why."""
    paths = [str(p) for p in found.paths]
    masks = [m for m in (found.masks or []) if m]
    checked = check_images([Path(p) for p in [*paths, *masks]], strict)
    bad = list(checked.bad)
    broken = {p for p, _ in bad}
    keep = []
    for i, path in enumerate(paths):
        mask = found.masks[i] if found.masks is not None else ""
        if mask in broken and path not in broken:
            bad.append((path, f"its mask {mask} is unreadable"))
        elif path not in broken:
            keep.append(i)
    return np.array(keep, dtype=np.int64), bad
