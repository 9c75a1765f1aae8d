"""Image files on disk: find them, check they decode, stream them through tf.data.

Files are checked once up front (a full decode, in threads, nothing kept),
so a corrupt or truncated image is reported before training starts: skipped
with one warning that lists the files, or an error with `dataset.strict=true`.
Afterwards `FileSplit.dataset()` streams the images from disk with parallel
decoding; nothing holds a whole folder in memory unless `dataset.cache` asks.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from anomaly_cli.data.base import Split
from anomaly_cli.data.inputs import existing_dir, unreadable
from anomaly_cli.data.preprocess import ImagePreprocess
from anomaly_cli.errors import AdxUserError

if TYPE_CHECKING:
    import tensorflow as tf

log = logging.getLogger("adx")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# PIL modes to convert to for grayscale / rgb models.
_PIL_MODES = {1: "L", 3: "RGB"}


def list_images(directory: str | os.PathLike[str], key: str, recursive: bool = False) -> list[Path]:
    """Image files in `directory`, sorted; other files are ignored.

    A missing directory or one without any image is an error naming `key`
    (the config key that pointed here) and the path.
    """
    folder = existing_dir(directory, key, "point it at a folder of images")
    images = image_files(folder, recursive)
    if not images:
        raise AdxUserError(
            f"{key}={directory} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
            "point it at a folder of images"
        )
    return images


def image_files(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files in `folder` by suffix, sorted; none for a missing folder."""
    if not folder.is_dir():
        return []
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def decode_error(path: Path) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
    except Exception as error:  # PIL raises many kinds for broken files
        return unreadable(error)
    return None


@dataclass(frozen=True)
class CheckedFiles:
    good: list[Path]
    # (path, why) for each file that would not decode.
    bad: list[tuple[str, str]]


def check_images(paths: Sequence[Path], strict: bool) -> CheckedFiles:
    """Decode every file once; skip broken ones with one warning, or fail with strict."""
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 2)) as pool:
        errors = list(pool.map(decode_error, paths))
    bad = [(str(p), e) for p, e in zip(paths, errors, strict=True) if e is not None]
    if bad and strict:
        path, why = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise AdxUserError(
            f"cannot read image {path}{more}: {why}; remove it or set dataset.strict=false "
            "to skip unreadable files"
        )
    if bad:
        log.warning(
            "skipped %d unreadable image(s) (recorded in data.json): %s",
            len(bad),
            ", ".join(p for p, _ in bad),
        )
    broken = {p for p, _ in bad}
    return CheckedFiles(good=[p for p in paths if str(p) not in broken], bad=bad)


def skipped_report(bad: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"path": path, "error": why} for path, why in bad]


def read_pixels(path: bytes, channels: int) -> np.ndarray:
    """uint8 (h, w, channels) of one file, read with PIL; raises for an unreadable one."""
    from PIL import Image

    with Image.open(path.decode()) as image:
        if image.mode.startswith(("I;16", "I")) and channels == 1:
            # 16-bit grayscale: scale to 8 bits instead of clipping at 255.
            pixels = np.asarray(image, dtype=np.float32)
            top = pixels.max() or 1.0
            return (pixels / top * 255.0).astype(np.uint8)[..., None]
        pixels = np.asarray(image.convert(_PIL_MODES[channels]), dtype=np.uint8)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def decode_image(path: tf.Tensor, channels: int) -> tf.Tensor:
    """uint8 (h, w, channels) from any format PIL reads (png, jpeg, bmp, tiff, ...)."""
    import tensorflow as tf

    pixels = tf.numpy_function(lambda p: read_pixels(p, channels), [path], tf.uint8, stateful=False)
    pixels.set_shape((None, None, channels))
    return pixels


@dataclass(frozen=True)
class FileSplit(Split):
    """Samples that are image files; masks (or "" for none) are optional ground truth."""

    paths: np.ndarray | None = None
    masks: np.ndarray | None = None
    preprocess: ImagePreprocess = field(default_factory=ImagePreprocess)
    # Keep decoded images in memory after the first pass (dataset.cache=true).
    cache: bool = False

    def _subset(self, indices: np.ndarray) -> dict[str, Any]:
        fields = super()._subset(indices)
        fields["paths"] = self.paths[indices]
        if self.masks is not None:
            fields["masks"] = self.masks[indices]
        return fields

    def dataset(self) -> tf.data.Dataset:
        import tensorflow as tf

        channels, prep = self.preprocess.num_channels, self.preprocess
        files = tf.data.Dataset.from_tensor_slices(self.paths.astype(str))
        images = files.map(
            lambda p: prep.apply(decode_image(p, channels)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return images.cache() if self.cache else images

    def mask_dataset(self) -> tf.data.Dataset | None:
        import tensorflow as tf

        if self.masks is None:
            return None
        prep, size = self.preprocess, self.preprocess.image_size

        def load(path: tf.Tensor) -> tf.Tensor:
            return tf.cond(
                tf.strings.length(path) > 0,
                lambda: prep.apply_mask(decode_image(path, 1)),
                lambda: tf.zeros((size, size), tf.float32),
            )

        masks = tf.data.Dataset.from_tensor_slices(self.masks.astype(str))
        return masks.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
