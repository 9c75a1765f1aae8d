"""A small prepared TensorFlow Datasets folder (mnist, caltech101), as `tfds build` leaves it.

Real tfds files on disk, so `adx` runs offline in a subprocess as well
(tfds.testing.mock_data only works inside the test's own process).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

FIXTURE_SPLITS = {"train": 60, "test": 20}
# Caltech101 fixture: enough other images for seed 000's 800 anomalies.
CALTECH_AIRPLANES, CALTECH_OTHERS = 24, 810


def _planted_digit(label: int, record: int) -> np.ndarray:
    """28x28x1 uint8: a bright square whose corner depends on the class, faint noise around.

    Class 0 (the usual normal class) always has it top-left, so the others are
    easy anomalies; the record number is written into the bottom-right pixel so
    a test can tell every image apart.
    """
    rng = np.random.default_rng(record)
    image = rng.integers(0, 40, (28, 28, 1), dtype=np.uint8)
    top, left = divmod(label, 4)
    image[2 + 6 * top : 10 + 6 * top, 2 + 6 * left : 10 + 6 * left] = 230
    image[27, 27] = record % 256
    return image


def _planted_photo(airplane: bool, rng: np.random.Generator) -> np.ndarray:
    """Small rgb image of varied size: a dark bar on pale sky, or black-and-white blocks."""
    height, width = rng.integers(24, 48), rng.integers(32, 64)
    if not airplane:
        blocks = rng.integers(0, 2, (height // 4 + 1, width // 4 + 1, 1), dtype=np.uint8) * 255
        return np.repeat(np.repeat(blocks, 4, 0), 4, 1)[:height, :width].repeat(3, 2)
    image = np.full((height, width, 3), (170, 200, 235), np.uint8)
    middle = height // 2
    image[middle - 2 : middle + 2, width // 6 : -width // 6] = (60, 60, 70)
    return image


def _png(image: np.ndarray) -> io.BytesIO:
    """PNG bytes made by PIL: tfds stores them as they are (its own encoder is ~50x slower)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, "PNG")
    buffer.seek(0)
    return buffer


def _write_prepared(builder, splits: dict[str, list[dict]]) -> None:
    """Write examples and metadata exactly where `builder.download_and_prepare` would."""
    import tensorflow as tf

    Path(builder.data_dir).mkdir(parents=True, exist_ok=True)
    infos = []
    for split, examples in splits.items():
        template = tfds.core.ShardedFileTemplate(
            data_dir=builder.data_dir,
            dataset_name=builder.name,
            split=split,
            filetype_suffix="tfrecord",
        )
        path = template.sharded_filepath(shard_index=0, num_shards=1)
        with tf.io.TFRecordWriter(os.fspath(path)) as writer:
            for example in examples:
                example = {**example, "image": _png(example["image"])}
                writer.write(builder.info.features.serialize_example(example))
        infos.append(
            tfds.core.SplitInfo(
                name=split, shard_lengths=[len(examples)], num_bytes=0, filename_template=template
            )
        )
    builder.info.set_splits(tfds.core.SplitDict(infos))
    builder.info.write_to_directory(builder.data_dir)


def make_tfds_fixture(root: Path, caltech101: bool = True) -> dict[str, np.ndarray]:
    """Prepared tfds data sets in root/tfds_data, as `tfds build --data_dir` leaves them.

    - mnist 3.0.1: train 60 + test 20 planted digits, labels cycling 0..9 over
      the records numbered across train then test; returned as arrays per split.
    - caltech101 3.0.2 (unless caltech101=False): train+test with 24 airplanes
      (a dark bar on pale sky) and 810 other images (black-and-white blocks)
      of varied sizes.

    `dataset=mnist dataset.data_dir=tfds_data` and
    `experiment=caltech101_airplanes dataset.data_dir=tfds_data` then run offline.
    """
    data_dir = os.fspath(root / "tfds_data")
    record, images, examples = 0, {}, {}
    for split, count in FIXTURE_SPLITS.items():
        images[split] = np.stack([_planted_digit(r % 10, r) for r in range(record, record + count)])
        examples[split] = [
            {"image": image, "label": r % 10} for r, image in enumerate(images[split], start=record)
        ]
        record += count
    _write_prepared(tfds.builder("mnist", data_dir=data_dir), examples)
    if caltech101:
        builder = tfds.builder("caltech101", data_dir=data_dir)
        names = builder.info.features["label"].names
        rng = np.random.default_rng(101)
        labels = [names.index("airplanes")] * CALTECH_AIRPLANES + [
            int(c)
            for c in rng.choice(
                [i for i, n in enumerate(names) if n != "airplanes"], CALTECH_OTHERS
            )
        ]
        rng.shuffle(labels)
        photos = [
            {
                "image": _planted_photo(names[label] == "airplanes", rng),
                "image/file_name": f"image_{i:04d}.jpg",
                "label": label,
            }
            for i, label in enumerate(labels)
        ]
        _write_prepared(builder, {"train": photos[:300], "test": photos[300:]})
    return images
