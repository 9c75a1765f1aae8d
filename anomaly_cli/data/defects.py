"""A defect benchmark in MVTec AD's folder layout, generated from public textures and objects.

Why: MVTec AD itself is a large download under a non-commercial licence, and
the failures adx had to fix (a smooth patch scored as the most normal image)
show up on natural textures. This module writes image folders that
`dataset=mvtec` reads, built from images that need no download:

- `brick`, `grass`, `gravel`: scikit-image's bundled 512x512 photographs
  (scikit-image is a dev dependency, imported only when one of them is asked for);
- `weave`: a procedurally generated woven fabric (RGB, seeded);
- `pill`: a procedurally drawn speckled capsule on a plain background, an
  object whose position and outline matter.

Texture images are seeded crops (192 px of the photo, with flips and quarter
turns) resized to `image_size`. The sheet is cut into four 256 px quadrants:
train crops come from the top-left and bottom-right ones, test crops (good and
defective) from the other two, so no test pixel was ever a train pixel, and
both sides see the same mix of the photo's left and right, top and bottom. (A
first version held out the right part: the photographs are not stationary,
brick's bricks narrow to the right under perspective and grass brightens, so
the held-out good images differed from the train ones, by up to 4 standard
deviations of a train image's contrast, before any defect was pasted.)
Every test image of a defect folder gets one pasted defect; its mask (0/255,
the image's size) is in ground_truth/.

Defect kinds, each `small` (3-6 % of the side) and `large` (12-25 %):

- `foreign_texture`: a patch of another texture, its mean and standard
  deviation matched per channel to the region it replaces (energy-neutral);
- `missing_texture`: the region's mean colour with a slightly blurred edge,
  a texture-less patch (keeps the mean, not the variance: not energy-neutral,
  and the case where reconstruction error ranks defects as the most normal);
- `scratch`: thin (1-3 px) bright or dark curves, twice as long as the size
  says (adds or removes brightness along the line: not energy-neutral);
- `colour_spot`: a tinted blob that keeps each pixel's luminance (energy-neutral
  in luminance, not in colour).

The defect folder is `<kind>_<size>`, e.g. `missing_texture_small`. The same
seed writes the same bytes.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from anomaly_cli.errors import AdxUserError

PHOTO_CATEGORIES = ("brick", "grass", "gravel")
PROCEDURAL_TEXTURES = ("weave",)
OBJECT_CATEGORIES = ("pill",)
CATEGORIES = (*PHOTO_CATEGORIES, *PROCEDURAL_TEXTURES, *OBJECT_CATEGORIES)
DEFECT_KINDS = ("foreign_texture", "missing_texture", "scratch", "colour_spot")
# The defect's extent as a share of the image side, drawn uniformly in the range.
DEFECT_SIZES = {"small": (0.03, 0.06), "large": (0.12, 0.25)}
DEFECTS = tuple(f"{kind}_{size}" for kind in DEFECT_KINDS for size in DEFECT_SIZES)
ENERGY_NEUTRAL = {
    "foreign_texture": True,
    "missing_texture": False,
    "scratch": False,
    "colour_spot": True,
}

# Texture sheets are SHEET px square; a crop is CROP px of one QUADRANT px
# quadrant of it, given by its (row, column) of the 2 x 2 grid of quadrants.
SHEET = 512
CROP = 192
QUADRANT = SHEET // 2
TRAIN_QUADRANTS = ((0, 0), (1, 1))
TEST_QUADRANTS = ((0, 1), (1, 0))
# Rec. 601 luminance weights: a colour spot moves colour, not luminance.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def build_defect_dataset(
    root: str | Path,
    categories: Iterable[str] | None = None,
    image_size: int = 256,
    n_train: int = 80,
    n_test_good: int = 20,
    n_test_per_defect: int = 8,
    seed: int = 0,
) -> dict[str, Any]:
    """Write `<root>/<category>/{train/good, test/*, ground_truth/*}` for each category.

    `categories` defaults to all of CATEGORIES. Returns what was written: per
    category the image counts and, for every file (relative to `root`), the
    crop it came from ({"top", "left", "side", "flip", "turns"}; textures only).
    """
    chosen = list(categories) if categories is not None else list(CATEGORIES)
    unknown = [c for c in chosen if c not in CATEGORIES]
    if unknown or not chosen:
        raise AdxUserError(
            f"categories={chosen} holds no known category {unknown or ''}; "
            f"choose among {', '.join(CATEGORIES)}"
        )
    if image_size < 16:
        raise AdxUserError(f"image_size={image_size} is too small; use 16 px or more")
    for name, count in (("n_train", n_train), ("n_test_good", n_test_good)):
        if count < 1:
            raise AdxUserError(f"{name}={count} must be at least 1")
    if n_test_per_defect < 1:
        raise AdxUserError(f"n_test_per_defect={n_test_per_defect} must be at least 1")
    root = Path(root)
    written: dict[str, Any] = {"root": str(root), "image_size": image_size, "categories": {}}
    for category in chosen:
        # A seed per category from its name, so a category's images do not
        # depend on which others were asked for.
        rng = np.random.default_rng([seed, zlib.crc32(category.encode())])
        make = _object_writer if category in OBJECT_CATEGORIES else _texture_writer
        written["categories"][category] = make(
            root, category, image_size, (n_train, n_test_good, n_test_per_defect), rng, seed
        )
    return written


# --- writing a category -------------------------------------------------------------------


def _texture_writer(
    root: Path,
    category: str,
    size: int,
    counts: tuple[int, int, int],
    rng: np.random.Generator,
    seed: int,
) -> dict[str, Any]:
    sheet = texture_sheet(category, seed)
    donors = [texture_sheet(c, seed) for c in _donor_names(category)]

    def crop(held_out: bool) -> tuple[np.ndarray, dict[str, int], None]:
        quadrants = TEST_QUADRANTS if held_out else TRAIN_QUADRANTS
        row, column = quadrants[int(rng.integers(len(quadrants)))]
        top, left = rng.integers(0, QUADRANT - CROP + 1, 2)
        box = {
            "top": row * QUADRANT + int(top),
            "left": column * QUADRANT + int(left),
            "side": CROP,
            "flip": int(rng.integers(0, 2)),
            "turns": int(rng.integers(0, 4)),
        }
        return crop_sheet(sheet, box, size), box, None

    def foreign(rng_: np.random.Generator, side: int) -> np.ndarray:
        if not donors:  # weave without scikit-image's photographs
            return _noise_patch(rng_, side)
        return random_square(donors[int(rng_.integers(len(donors)))], side, rng_)

    return _write_category(root / category, counts, rng, crop, foreign)


def _object_writer(
    root: Path,
    category: str,
    size: int,
    counts: tuple[int, int, int],
    rng: np.random.Generator,
    seed: int,
) -> dict[str, Any]:
    donor = texture_sheet("weave", seed + 1)

    def draw(held_out: bool) -> tuple[np.ndarray, dict[str, int], np.ndarray]:
        # Every pill is drawn afresh, so test pills are never train pills.
        image, body = draw_pill(size, rng)
        return image, {}, body

    def foreign(rng_: np.random.Generator, side: int) -> np.ndarray:
        return random_square(donor, side, rng_)

    return _write_category(root / category, counts, rng, draw, foreign)


def _write_category(
    folder: Path,
    counts: tuple[int, int, int],
    rng: np.random.Generator,
    make_normal: Callable[[bool], tuple[np.ndarray, dict[str, int], np.ndarray | None]],
    foreign: Callable[[np.random.Generator, int], np.ndarray],
) -> dict[str, Any]:
    """Write one category; `make_normal(held_out)` gives a normal image, its crop box
    (empty for objects) and where a defect may be centred (None: anywhere)."""
    n_train, n_test_good, n_per_defect = counts
    crops: dict[str, dict[str, int]] = {}
    category = folder.name

    def save_normal(relative: str, held_out: bool) -> None:
        image, box, _ = make_normal(held_out)
        save_png(image, folder / relative)
        if box:
            crops[f"{category}/{relative}"] = box

    for i in range(n_train):
        save_normal(f"train/good/{i:03d}.png", held_out=False)
    for i in range(n_test_good):
        save_normal(f"test/good/{i:03d}.png", held_out=True)
    for defect in DEFECTS:
        kind, size_name = defect.rsplit("_", 1)
        for i in range(n_per_defect):
            image, box, allowed = make_normal(True)
            damaged, mask = apply_defect(
                image, kind, size_name, rng, foreign=foreign, allowed=allowed
            )
            save_png(damaged, folder / "test" / defect / f"{i:03d}.png")
            save_png(mask, folder / "ground_truth" / defect / f"{i:03d}_mask.png")
            if box:
                crops[f"{category}/test/{defect}/{i:03d}.png"] = box
    return {
        "train": n_train,
        "test_good": n_test_good,
        "defects": dict.fromkeys(DEFECTS, n_per_defect),
        "crops": crops,
    }


def save_png(pixels: np.ndarray, path: Path) -> None:
    """[0, 1] floats (H, W, 3) or a bool/float mask (H, W) as an 8-bit PNG."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.round(np.clip(np.asarray(pixels, np.float32), 0, 1) * 255).astype(np.uint8)
    Image.fromarray(data).save(path, optimize=False)


# --- textures ------------------------------------------------------------------------------


def texture_sheet(category: str, seed: int) -> np.ndarray:
    """The SHEET x SHEET RGB float image a texture category is cropped from."""
    if category in PHOTO_CATEGORIES:
        gray = _photo(category).astype(np.float32) / 255.0
        return np.repeat(gray[..., None], 3, axis=2)
    if category == "weave":
        return weave_texture(SHEET, np.random.default_rng([seed, zlib.crc32(b"weave-sheet")]))
    raise ValueError(f"{category} is not a texture category")


def _photo(name: str) -> np.ndarray:
    try:
        import skimage.data
    except ImportError as error:
        raise AdxUserError(
            f"category {name} is a photograph bundled with scikit-image, which is not "
            'installed; pip install "scikit-image>=0.22" (or the dev extra), or choose '
            f"categories among {', '.join((*PROCEDURAL_TEXTURES, *OBJECT_CATEGORIES))}"
        ) from error
    image = np.asarray(getattr(skimage.data, name)())
    if image.shape[:2] != (SHEET, SHEET):
        raise ValueError(f"skimage.data.{name}() is {image.shape}, not {SHEET}x{SHEET}")
    return image


def _donor_names(category: str) -> list[str]:
    """Textures a foreign patch comes from: the other photos if scikit-image is there."""
    others = [c for c in (*PHOTO_CATEGORIES, *PROCEDURAL_TEXTURES) if c != category]
    try:
        import skimage.data  # noqa: F401
    except ImportError:
        others = [c for c in others if c not in PHOTO_CATEGORIES]
    return others


def random_square(sheet: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """A side x side square of a texture sheet at a random place: a foreign patch."""
    top, left = rng.integers(0, SHEET - side + 1, 2)
    return sheet[top : top + side, left : left + side]


def crop_sheet(sheet: np.ndarray, box: dict[str, int], size: int) -> np.ndarray:
    """The crop `box` of `sheet`, flipped and turned as it says, resized to size x size."""
    from PIL import Image

    top, left, side = box["top"], box["left"], box["side"]
    patch = sheet[top : top + side, left : left + side]
    if box["flip"]:
        patch = patch[:, ::-1]
    patch = np.rot90(patch, box["turns"])
    data = np.round(np.clip(patch, 0, 1) * 255).astype(np.uint8)
    resized = Image.fromarray(np.ascontiguousarray(data)).resize(
        (size, size), Image.Resampling.LANCZOS
    )
    return np.asarray(resized, np.float32) / 255.0


def weave_texture(side: int, rng: np.random.Generator, period: int = 8) -> np.ndarray:
    """A plain-weave fabric: warp and weft threads crossing over and under, RGB in [0, 1].

    Each thread has its own shade and a slow waviness from random-phase noise,
    so crops differ while the pattern stays regular.
    """
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    wobble = 1.5 * smooth_noise((side, side), rng, sigma=12.0)
    xs, ys = x + wobble, y + wobble.T
    warp_index = np.floor(xs / period).astype(int)
    weft_index = np.floor(ys / period).astype(int)
    # A thread is brightest along its middle and darker at its edges.
    across_warp = np.sin(np.pi * (xs / period - warp_index)) ** 0.6
    across_weft = np.sin(np.pi * (ys / period - weft_index)) ** 0.6
    warp_on_top = (warp_index + weft_index) % 2 == 0
    n_threads = side // period + 4
    warp_shade = 1 + 0.08 * rng.standard_normal(n_threads + 8).astype(np.float32)
    weft_shade = 1 + 0.08 * rng.standard_normal(n_threads + 8).astype(np.float32)
    warp_colour = np.array([0.22, 0.33, 0.55], np.float32)  # denim blue
    weft_colour = np.array([0.75, 0.74, 0.70], np.float32)  # off-white
    warp = (
        across_warp[..., None]
        * warp_shade[np.clip(warp_index, 0, n_threads + 7)][..., None]
        * warp_colour
    )
    weft = (
        across_weft[..., None]
        * weft_shade[np.clip(weft_index, 0, n_threads + 7)][..., None]
        * weft_colour
    )
    fabric = np.where(warp_on_top[..., None], warp, weft)
    grain = 0.03 * rng.standard_normal((side, side, 1)).astype(np.float32)
    return np.clip(0.1 + 0.85 * fabric + grain, 0, 1).astype(np.float32)


def smooth_noise(shape: tuple[int, int], rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise scaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return field / (field.std() + 1e-8)


# --- the object category -------------------------------------------------------------------


def draw_pill(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A speckled capsule on a plain background, and the capsule's body mask.

    Position (a few % of the side), angle (+-6 degrees), tint and the speckles
    vary from pill to pill; the background is plain, so a defect there or a
    shifted outline is visible.
    """
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    cy, cx = 0.5 + rng.uniform(-0.03, 0.03, 2)
    angle = np.deg2rad(rng.uniform(-6, 6))
    u = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
    v = -(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)
    half_length, radius = 0.30, 0.15
    # Distance to the capsule's axis segment: a stadium shape.
    along = np.clip(u, -half_length + radius, half_length - radius)
    distance = np.hypot(u - along, v)
    body = distance <= radius
    edge = np.clip((radius - distance) * size, 0, 1)  # one-pixel antialiased outline
    background = np.array([0.80, 0.82, 0.85], np.float32)
    image = np.broadcast_to(background, (size, size, 3)).copy()
    image += 0.01 * rng.standard_normal((size, size, 1)).astype(np.float32)
    colour = np.array([0.93, 0.90, 0.84], np.float32) * rng.uniform(0.97, 1.03)
    # Rounded shading: brighter along the middle, darker towards the rim.
    shading = 1 - 0.25 * (np.clip(distance / radius, 0, 1) ** 2)
    pill = shading[..., None] * colour
    speckles = rng.random((size, size)) < 0.012
    if size >= 256:  # speckles about 1 % of the side across, as at 128 px
        speckles = ndimage.binary_dilation(speckles, iterations=size // 256)
    speckles &= body
    pill = np.where(speckles[..., None], np.array([0.70, 0.25, 0.22], np.float32), pill)
    image = (1 - edge[..., None]) * image + edge[..., None] * pill
    return np.clip(image, 0, 1).astype(np.float32), body


# --- defects -------------------------------------------------------------------------------


def apply_defect(
    image: np.ndarray,
    kind: str,
    size: str,
    rng: np.random.Generator,
    foreign: Callable[[np.random.Generator, int], np.ndarray] | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`image` (H, W, 3) in [0, 1] with one defect pasted in, and its boolean mask.

    Every changed pixel lies inside the mask. `foreign(rng, side)` gives a
    texture patch (foreign_texture; default: a random-phase noise texture);
    `allowed` (H, W) is where the defect's centre may lie (default: anywhere
    a margin away from the border).
    """
    if kind not in DEFECT_KINDS:
        raise ValueError(f"unknown defect kind {kind!r}; kinds are {DEFECT_KINDS}")
    if size not in DEFECT_SIZES:
        raise ValueError(f"unknown defect size {size!r}; sizes are {tuple(DEFECT_SIZES)}")
    side = image.shape[0]
    low, high = DEFECT_SIZES[size]
    extent = max(3.0, rng.uniform(low, high) * side)
    centre = _centre(image.shape[:2], extent, rng, allowed)
    image = image.astype(np.float32, copy=True)
    if kind == "scratch":
        return _scratch(image, centre, 2 * extent, rng)
    mask = blob_mask(image.shape[:2], centre, extent / 2, rng)
    if allowed is not None:
        mask &= ndimage.binary_dilation(allowed, iterations=2)
    if not mask.any():  # a tiny blob can fall between pixels: keep one
        mask[int(centre[0]), int(centre[1])] = True
    if kind == "missing_texture":
        return _missing_texture(image, mask), mask
    if kind == "colour_spot":
        return _colour_spot(image, mask, rng), mask
    return _foreign_texture(image, mask, rng, foreign or _noise_patch), mask


def _centre(
    shape: tuple[int, int], extent: float, rng: np.random.Generator, allowed: np.ndarray | None
) -> tuple[float, float]:
    margin = int(np.ceil(extent / 2)) + 1
    h, w = shape
    if allowed is not None:
        inner = ndimage.binary_erosion(allowed, iterations=max(1, margin // 2))
        candidates = np.argwhere(inner if inner.any() else allowed)
        y, x = candidates[int(rng.integers(len(candidates)))]
        return float(y), float(x)
    y = rng.uniform(margin, max(margin + 1, h - margin))
    x = rng.uniform(margin, max(margin + 1, w - margin))
    return float(y), float(x)


def blob_mask(
    shape: tuple[int, int], centre: tuple[float, float], radius: float, rng: np.random.Generator
) -> np.ndarray:
    """An irregular blob: an ellipse whose radius wanders with a few low harmonics."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    dy, dx = y - centre[0], x - centre[1]
    angle = rng.uniform(0, np.pi)
    squash = rng.uniform(0.6, 1.0)
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / squash
    theta = np.arctan2(v, u)
    wander = sum(
        rng.uniform(0, 0.12) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4)
    )
    return np.hypot(u, v) <= radius * (1 + wander)


def _feather(mask: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """A soft edge that stays inside `mask` (so the mask covers every changed pixel)."""
    alpha = ndimage.gaussian_filter(mask.astype(np.float32), sigma) * mask
    return np.clip(alpha * 2, 0, 1)[..., None]


def _missing_texture(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    # The mean colour around and inside the region: what a smooth repair or a
    # worn-off print looks like; texture (variance) goes, brightness stays.
    around = ndimage.binary_dilation(mask, iterations=3)
    flat = image[around].mean(axis=0)
    alpha = _feather(mask)
    return (1 - alpha) * image + alpha * flat


def _colour_spot(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # A tint orthogonal to luminance: the spot changes colour, not brightness.
    direction = rng.standard_normal(3).astype(np.float32)
    direction -= LUMA * (direction @ LUMA) / (LUMA @ LUMA)
    direction /= np.abs(direction).max() + 1e-8
    tinted = image + rng.uniform(0.18, 0.3) * direction
    alpha = _feather(mask)
    return np.clip((1 - alpha) * image + alpha * tinted, 0, 1)


def _foreign_texture(
    image: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    foreign: Callable[[np.random.Generator, int], np.ndarray],
) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    top, left = rows.min(), cols.min()
    height, width = rows.max() - top + 1, cols.max() - left + 1
    side = int(max(height, width))
    patch = np.asarray(foreign(rng, side), np.float32)[:height, :width]
    if patch.ndim == 2:
        patch = np.repeat(patch[..., None], 3, axis=2)
    inside = mask[top : top + height, left : left + width]
    region = image[top : top + height, left : left + width]
    # Match mean and standard deviation per channel: other texture, same energy.
    own, theirs = region[inside], patch[inside]
    scale = (own.std(axis=0) + 1e-3) / (theirs.std(axis=0) + 1e-3)
    matched = (patch - theirs.mean(axis=0)) * scale + own.mean(axis=0)
    alpha = _feather(inside)
    out = image.copy()
    out[top : top + height, left : left + width] = (1 - alpha) * region + alpha * np.clip(
        matched, 0, 1
    )
    return out


def _noise_patch(rng: np.random.Generator, side: int) -> np.ndarray:
    """A random-phase noise texture: what a foreign patch is without a donor texture."""
    return np.stack([smooth_noise((side, side), rng, 1.5) for _ in range(3)], axis=2) * 0.2 + 0.5


def _scratch(
    image: np.ndarray, centre: tuple[float, float], length: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One to three thin curves (quadratic Bezier) near `centre`, all bright or all dark."""
    h, w = image.shape[:2]
    mask = np.zeros((h, w), bool)
    for _ in range(int(rng.integers(1, 4))):
        angle = rng.uniform(0, np.pi)
        direction = np.array([np.sin(angle), np.cos(angle)])
        offset = rng.uniform(-0.15, 0.15, 2) * length
        start = np.array(centre) + offset - direction * length / 2
        end = np.array(centre) + offset + direction * length / 2
        bend = (start + end) / 2 + rng.uniform(-0.25, 0.25, 2) * length
        t = np.linspace(0, 1, int(4 * length) + 8)[:, None]
        points = (1 - t) ** 2 * start + 2 * (1 - t) * t * bend + t**2 * end
        rows = np.clip(np.round(points[:, 0]).astype(int), 0, h - 1)
        cols = np.clip(np.round(points[:, 1]).astype(int), 0, w - 1)
        line = np.zeros((h, w), bool)
        line[rows, cols] = True
        width = int(rng.integers(1, 4))
        if width > 1:
            line = ndimage.binary_dilation(line, structure=np.ones((width, width), bool))
        mask |= line
    bright = bool(rng.integers(0, 2))
    level = rng.uniform(0.85, 1.0) if bright else rng.uniform(0.0, 0.15)
    out = image.copy()
    out[mask] = 0.25 * out[mask] + 0.75 * level
    return out, mask
