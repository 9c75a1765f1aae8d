"""TensorFlow Datasets image classification sets as one-vs-rest anomaly detection.

Labels are read once up front (only the label is parsed, the image bytes are
skipped), the pool is labelled and split by class like every other source,
and each split streams its images from the tfds files when it is trained on
or scored: the tfds split is re-read in file order, the split's records are
kept by index, and only those are decoded and preprocessed. Nothing holds the
data set in memory unless `dataset.cache` asks.
"""

from __future__ import annotations

import difflib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from omegaconf import DictConfig

from anomaly_cli.data.base import LoadContext, Split, Splits
from anomaly_cli.data.preprocess import Augment, ImagePreprocess
from anomaly_cli.data.splits import select_splits
from anomaly_cli.errors import AdxUserError, first_lines

if TYPE_CHECKING:
    import tensorflow as tf

log = logging.getLogger("adx")
UNLABELLED = "(unlabelled)"
CATALOG = "https://www.tensorflow.org/datasets/catalog/overview"


@dataclass(frozen=True)
class TfdsSource:
    """One tfds split (or several joined with "+"), read in a fixed order."""

    builder: Any  # tfds.core.DatasetBuilder
    split: str
    image_key: str
    label_key: str

    def _read(self, decoders: Any) -> tf.data.Dataset:
        import tensorflow_datasets as tfds

        # One file at a time: record i is the i-th record of the joined splits,
        # the same on every pass, so indices taken from the labels find their images.
        return self.builder.as_dataset(
            split=self.split,
            decoders=decoders,
            shuffle_files=False,
            read_config=tfds.ReadConfig(interleave_cycle_length=1),
        )

    def labels(self) -> np.ndarray:
        """The label index of every record, parsing nothing else."""
        import tensorflow_datasets as tfds

        records = self._read(tfds.decode.PartialDecoding({self.label_key: True}))
        batches = records.map(lambda ex: ex[self.label_key]).batch(8192)
        parts = list(batches.as_numpy_iterator())
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def encoded_images(self) -> tf.data.Dataset:
        """The image bytes of every record, undecoded."""
        import tensorflow_datasets as tfds

        decoders = tfds.decode.PartialDecoding(
            {self.image_key: True}, decoders={self.image_key: tfds.decode.SkipDecoding()}
        )
        return self._read(decoders).map(lambda ex: ex[self.image_key])

    def decode(self, encoded: tf.Tensor) -> tf.Tensor:
        import tensorflow as tf

        image = self.builder.info.features[self.image_key].decode_example(encoded)
        if image.dtype.is_integer and image.dtype != tf.uint8:
            image = tf.image.convert_image_dtype(image, tf.float32)  # e.g. 16-bit scans
        return image


@dataclass(frozen=True)
class TfdsSplit(Split):
    # Position of each sample among the source's records, increasing.
    records: np.ndarray | None = None
    source: TfdsSource | None = None
    preprocess: ImagePreprocess = field(default_factory=ImagePreprocess)
    cache: bool = False

    def _subset(self, indices: np.ndarray) -> dict[str, Any]:
        return {**super()._subset(indices), "records": self.records[indices]}

    def dataset(self) -> tf.data.Dataset:
        import tensorflow as tf

        prep, source = self.preprocess, self.source
        if len(self.records) == 0:
            return tf.data.Dataset.from_tensor_slices(np.zeros((0, *prep.shape), np.float32))
        if np.any(np.diff(self.records) <= 0):
            # A stream can only skip forward; load() keeps every split in record order.
            raise ValueError("TfdsSplit records must be strictly increasing")
        last = int(self.records[-1])
        wanted = np.zeros(last + 1, dtype=bool)
        wanted[self.records] = True
        wanted = tf.constant(wanted)
        kept = (
            source.encoded_images()
            .take(last + 1)  # stop reading after the split's last record
            .enumerate()
            .filter(lambda i, _: tf.gather(wanted, i))
        )
        images = kept.map(
            lambda _, encoded: prep.apply(source.decode(encoded)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return images.cache() if self.cache else images


def load(cfg: DictConfig, ctx: LoadContext) -> Splits:
    name = str(cfg.name)
    # TFDS reads $TFDS_DATA_DIR once, when it is imported; read it per run, so
    # every run of one process (a notebook, an in-process test) sees the current one.
    data_dir = cfg.get("data_dir") or os.environ.get("TFDS_DATA_DIR")
    data_dir = str(Path(str(data_dir)).expanduser().resolve()) if data_dir else None
    builder = _builder(name, data_dir)
    image_key, label_key = _feature_keys(builder, name, cfg)
    builder = _prepared(builder, name, data_dir, bool(cfg.get("download", True)))
    split = _split_name(builder, name, cfg.get("tfds_split"))
    source = TfdsSource(builder, split, image_key, label_key)
    names = [str(n) for n in builder.info.features[label_key].names]

    log.info("reading the labels of tfds %s (%s)", name, split)
    try:
        labels = source.labels()
    except (ValueError, KeyError) as error:  # tfds's answer to an unknown split
        raise AdxUserError(
            f"dataset.tfds_split={split} cannot be read from tfds dataset '{name}': "
            f"{_first_line(error)}; splits present: {_splits(builder)}"
        ) from error
    records = np.arange(len(labels))
    width = max(6, len(str(len(labels))))
    ids = np.array([f"{name}/{split}/{r:0{width}d}" for r in records])
    prep = ImagePreprocess.from_config(cfg.preprocess)
    pool = TfdsSplit(
        ids=ids,
        labels=np.zeros(len(labels), np.int8),
        classes=_class_names(labels, names),
        records=records,
        source=source,
        preprocess=prep,
        cache=bool(cfg.get("cache", False)),
    )
    parts, chosen = select_splits(pool, cfg, ctx, names)
    # Streams run forward through the records, so each split keeps record order.
    parts = {k: p.select(np.argsort(p.records, kind="stable")) for k, p in parts.items()}
    info = {
        "source": "tensorflow_datasets",
        "tfds_name": name,
        "tfds_version": str(builder.version),
        "tfds_split": split,
        "data_dir": str(builder.data_dir_root),
        "image_key": image_key,
        "label_key": label_key,
        "preprocessing": prep.describe(),
    }
    return Splits(
        **parts,
        input_shape=prep.shape,
        info={**info, **chosen},
        protocol=ctx.protocol,
        augment=Augment.from_config(cfg.get("augment")),
    )


def _class_names(labels: np.ndarray, names: list[str]) -> np.ndarray:
    """Class name per record; tfds marks unlabelled records -1, they join no split."""
    known = (labels >= 0) & (labels < len(names))
    return np.asarray([*names, UNLABELLED])[np.where(known, labels, -1)]


def _builder(name: str, data_dir: str | None) -> Any:
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir)
    except (ValueError, AssertionError) as error:  # unknown name, config or version
        known = tfds.list_builders(with_community_datasets=False)
        close = difflib.get_close_matches(name.split("/")[0].split(":")[0], known, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise AdxUserError(
            f"dataset.name={name} is not a TensorFlow Datasets dataset{hint}: "
            f"{_first_line(error)}; find valid names in {CATALOG} or with "
            "python -c 'import tensorflow_datasets as tfds; print(tfds.list_builders())'"
        ) from error


def _feature_keys(builder: Any, name: str, cfg: DictConfig) -> tuple[str, str]:
    """dataset.image_key must name an Image feature, dataset.label_key a ClassLabel."""
    import tensorflow_datasets as tfds

    features = builder.info.features
    present = ", ".join(f"{k} ({type(features[k]).__name__})" for k in features)
    image_key, label_key = str(cfg.get("image_key", "image")), str(cfg.get("label_key", "label"))
    for key, value, kind, what in (
        ("image_key", image_key, tfds.features.Image, "an Image"),
        ("label_key", label_key, tfds.features.ClassLabel, "a ClassLabel"),
    ):
        if value not in features or not isinstance(features[value], kind):
            raise AdxUserError(
                f"dataset.{key}={value} is not {what} feature of tfds dataset '{name}'; "
                f"its features: {present}"
            )
    return image_key, label_key


def _prepared(builder: Any, name: str, data_dir: str | None, download: bool) -> Any:
    """The builder once its files are in data_dir, downloading them if allowed."""
    import tensorflow_datasets as tfds

    if builder.is_prepared():
        return builder
    root = builder.data_dir_root
    why = "dataset.download=false"
    if download:
        log.info("downloading tfds %s to %s", name, root)
        try:
            builder.download_and_prepare()
        except Exception as error:  # network, disk, manual-download datasets: all end here
            why = f"{type(error).__name__}: {_first_line(error)}"[:300]
        else:
            # Reopen from the written files: label names (e.g. cifar) come with them.
            return tfds.builder(name, data_dir=data_dir)
    raise AdxUserError(
        f"tfds dataset '{name}' is not in data_dir={root} and could not be downloaded ({why}); "
        f"run once with network access and dataset.download=true, or prepare it with "
        f"'tfds build {name} --data_dir {root}'"
    )


def _split_name(builder: Any, name: str, wanted: Any) -> str:
    """dataset.tfds_split, or every split the builder has joined with "+"."""
    if wanted is not None and str(wanted).strip():
        return str(wanted).strip()
    known = list(builder.info.splits.keys())
    if not known:
        raise AdxUserError(
            f"tfds dataset '{name}' lists no splits, so dataset.tfds_split=null cannot choose; "
            "set dataset.tfds_split, e.g. dataset.tfds_split=train"
        )
    return "+".join(known)


def _splits(builder: Any) -> str:
    known = list(builder.info.splits.keys())
    return ", ".join(known) + " (join several with '+', e.g. train+test)" if known else "unknown"


def _first_line(error: BaseException) -> str:
    # A trailing full stop would run into the "; fix" that follows.
    return first_lines(error).rstrip(".")
