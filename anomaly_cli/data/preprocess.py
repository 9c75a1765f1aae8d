"""Image preprocessing shared by every image source, as TensorFlow ops.

One `ImagePreprocess` turns a decoded image of any size and channel count
into the model's input: centre crop to a square (aspect ratio kept, as in
seed 000), resize, channels, value range and optional global contrast
normalisation (Deep SVDD's preprocessing). Its settings come from
`dataset.preprocess` and are saved with the run (config.yaml, data.json), so
`evaluate` rebuilds exactly the same inputs. Augmentation (flip, small
rotation) is separate and applies to training batches only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from anomaly_cli.errors import AdxUserError

CROPS = ("center", "none")
CHANNELS = {"grayscale": 1, "rgb": 3}
VALUE_RANGES = ((0.0, 1.0), (-1.0, 1.0))


@dataclass(frozen=True)
class ImagePreprocess:
    image_size: int = 64
    crop: str = "center"
    channels: str = "rgb"
    value_range: tuple[float, float] = (0.0, 1.0)
    gcn: bool = False

    @classmethod
    def from_config(cls, cfg: DictConfig | dict[str, Any]) -> ImagePreprocess:
        """Validate dataset.preprocess; every bad value is one line naming the key."""
        cfg = OmegaConf.to_container(cfg) if isinstance(cfg, DictConfig) else dict(cfg)
        size = _checked_size(cfg.get("image_size", 64))
        crop = str(cfg.get("crop", "center"))
        if crop not in CROPS:
            raise AdxUserError(f"dataset.preprocess.crop={crop}; choose one of: {', '.join(CROPS)}")
        channels = str(cfg.get("channels", "rgb"))
        if channels not in CHANNELS:
            raise AdxUserError(
                f"dataset.preprocess.channels={channels}; choose one of: {', '.join(CHANNELS)}"
            )
        value_range = _value_range(cfg.get("value_range", [0, 1]))
        return cls(size, crop, channels, value_range, bool(cfg.get("gcn", False)))

    @property
    def num_channels(self) -> int:
        return CHANNELS[self.channels]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, self.num_channels)

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "value_range": list(self.value_range)}

    def apply(self, image: Any) -> Any:
        """uint8 or [0, 1] float image (h, w, c) of any size -> float32 model input."""
        import tensorflow as tf

        if image.dtype == tf.uint8:
            image = tf.cast(image, tf.float32) / 255.0
        image = tf.cast(image, tf.float32)
        image = _match_channels(image, self.num_channels)
        if self.crop == "center":
            image = center_square(image)
        image = tf.image.resize(image, (self.image_size, self.image_size), antialias=True)
        image = tf.clip_by_value(image, 0.0, 1.0)
        low, high = self.value_range
        image = low + image * (high - low)
        if self.gcn:
            image = global_contrast_normalise(image)
        image.set_shape(self.shape)
        return image

    def apply_mask(self, mask: Any) -> Any:
        """A ground-truth mask (h, w) or (h, w, 1), any values -> (size, size) float32 in {0, 1}."""
        import tensorflow as tf

        mask = tf.cast(tf.reshape(mask, tf.shape(mask)[:2])[..., None] > 0, tf.float32)
        if self.crop == "center":
            mask = center_square(mask)
        mask = tf.image.resize(mask, (self.image_size, self.image_size), method="nearest")
        mask = mask[..., 0]
        mask.set_shape((self.image_size, self.image_size))
        return mask


def image_size(dataset_cfg: DictConfig) -> int:
    """dataset.preprocess.image_size of a source that generates or resizes its own arrays."""
    preprocess = dataset_cfg.get("preprocess") or {}
    return _checked_size(preprocess.get("image_size"))


def _checked_size(size: Any) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise AdxUserError(
            f"dataset.preprocess.image_size={size} must be a positive number of pixels"
        )
    return size


def _value_range(value: Any) -> tuple[float, float]:
    if isinstance(value, (list, tuple, ListConfig)) and len(value) == 2:
        pair = (float(value[0]), float(value[1]))
        if pair in VALUE_RANGES:
            return pair
    raise AdxUserError(
        f"dataset.preprocess.value_range={value} is not supported; use [0,1] or [-1,1]"
    )


def _match_channels(image: Any, channels: int) -> Any:
    import tensorflow as tf

    have = image.shape[-1]
    if have == channels:
        return image
    if have == 4:  # RGBA: drop alpha
        image = image[..., :3]
        have = 3
    if channels == 1:
        return tf.image.rgb_to_grayscale(image) if have == 3 else image[..., :1]
    return tf.image.grayscale_to_rgb(image[..., :1]) if have in (1, 2) else image


def center_square(image: Any) -> Any:
    """The largest centred square: the short side is kept, the long side trimmed evenly."""
    import tensorflow as tf

    height, width = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.minimum(height, width)
    return tf.image.crop_to_bounding_box(
        image, (height - side) // 2, (width - side) // 2, side, side
    )


def global_contrast_normalise(image: Any, eps: float = 1e-8) -> Any:
    """Deep SVDD's l1 global contrast normalisation: zero mean, unit mean absolute deviation."""
    import tensorflow as tf

    centred = image - tf.reduce_mean(image)
    return centred / (tf.reduce_mean(tf.abs(centred)) + eps)


@dataclass(frozen=True)
class Augment:
    """Training-only augmentation: horizontal flip and rotation up to `rotation` degrees."""

    flip: bool = False
    rotation: float = 0.0

    @classmethod
    def from_config(cls, cfg: DictConfig | dict[str, Any] | None) -> Augment | None:
        if not cfg:
            return None
        flip, rotation = bool(cfg.get("flip", False)), float(cfg.get("rotation", 0.0))
        if not 0 <= rotation <= 180:
            raise AdxUserError(
                f"dataset.augment.rotation={rotation} must be between 0 and 180 degrees"
            )
        return cls(flip, rotation) if flip or rotation else None

    def __call__(self, image: Any, seed: Any) -> Any:
        """One image (h, w, c); `seed` is a stateless seed pair, so runs repeat exactly."""
        import tensorflow as tf

        seed = tf.cast(seed, tf.int64)
        if self.flip:
            image = tf.image.stateless_random_flip_left_right(image, seed)
        if self.rotation:
            limit = math.radians(self.rotation)
            angle = tf.random.stateless_uniform((), seed + 1, -limit, limit)
            image = _rotate(image, angle)
        return image


def _rotate(image: Any, angle: Any) -> Any:
    """Rotate about the centre, filling uncovered corners with the nearest edge pixel."""
    import tensorflow as tf

    height = tf.cast(tf.shape(image)[0], tf.float32)
    width = tf.cast(tf.shape(image)[1], tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Output pixel (x, y) samples input (a0 x + a1 y + a2, b0 x + b1 y + b2).
    cx, cy = (width - 1) / 2, (height - 1) / 2
    transform = tf.stack(
        [cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0]
    )
    rotated = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform[None],
        output_shape=tf.shape(image)[:2],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="NEAREST",
    )
    return tf.reshape(rotated[0], tf.shape(image))
