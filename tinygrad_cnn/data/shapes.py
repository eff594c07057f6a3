"""Synthetic shapes: an offline dataset generated from a seed, with labels AND per-pixel masks.

`make_shapes` draws one shape per image (classification); `make_shapes_seg` draws several
non-overlapping shapes per image (segmentation). Each shape kind is a test on pixel
coordinates, evaluated for all images at once with broadcasting:

    circle    |p - c| <= r                      ring      0.55 r <= |p - c| <= r
    square    max(|u|, |v|) <= 0.8 r            cross     |u| <= r and |v| <= 0.35 r, or swapped
    triangle  u cos(a_i) + v sin(a_i) <= r / 2 for the three edge normals a_i = 0, 120, 240 deg

where (u, v) = p - c rotated by the shape's random angle. Position, size, angle, background
and foreground brightness and the noise level are random per image. Read next: `loader.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "ring")
MIN_SIZE = 12


def render_shapes(
    kinds: np.ndarray,
    center_y: np.ndarray,
    center_x: np.ndarray,
    radius: np.ndarray,
    angle: np.ndarray,
    size: int,
) -> np.ndarray:
    """Boolean masks (M, size, size) of M shapes; `kinds` index `SHAPE_CLASSES`, the other
    arrays (M,) give each shape's center (pixels), outer radius (pixels) and angle (radians).

    Shapes:
        kinds, center_y, center_x, radius, angle: (M,); out: (M, size, size) bool.
    Example:
        >>> one = lambda value: np.array([value])
        >>> square = render_shapes(one(1), one(3.0), one(3.0), one(2.5), one(0.0), size=7)
        >>> square.shape, square.dtype
        ((1, 7, 7), dtype('bool'))
        >>> square[0].astype(int)
        array([[0, 0, 0, 0, 0, 0, 0],
               [0, 1, 1, 1, 1, 1, 0],
               [0, 1, 1, 1, 1, 1, 0],
               [0, 1, 1, 1, 1, 1, 0],
               [0, 1, 1, 1, 1, 1, 0],
               [0, 1, 1, 1, 1, 1, 0],
               [0, 0, 0, 0, 0, 0, 0]])
    """
    coords = np.arange(size, dtype=np.float32)
    dy = coords[None, :, None] - center_y[:, None, None].astype(np.float32)  # (M, size, 1)
    dx = coords[None, None, :] - center_x[:, None, None].astype(np.float32)  # (M, 1, size)
    cos = np.cos(angle).astype(np.float32)[:, None, None]
    sin = np.sin(angle).astype(np.float32)[:, None, None]
    u = dx * cos + dy * sin  # (M, size, size): coordinates in the shape's rotated frame
    v = dy * cos - dx * sin
    r = radius.astype(np.float32)[:, None, None]
    masks = np.zeros((len(kinds), size, size), dtype=bool)
    for k, name in enumerate(SHAPE_CLASSES):  # a loop over the few kinds, not over images
        sel = np.flatnonzero(kinds == k)
        if len(sel) == 0:
            continue
        uk, vk, rk = u[sel], v[sel], r[sel]
        if name in ("circle", "ring"):
            dist2 = uk * uk + vk * vk
            inside = dist2 <= rk * rk
            if name == "ring":
                inside &= dist2 >= (0.55 * rk) ** 2
        elif name == "square":
            inside = np.maximum(np.abs(uk), np.abs(vk)) <= 0.8 * rk
        elif name == "triangle":
            inside = np.ones(uk.shape, dtype=bool)
            for edge in range(3):
                normal = 2 * np.pi * edge / 3
                inside &= uk * np.cos(normal) + vk * np.sin(normal) <= 0.5 * rk
        else:  # cross
            long_u = (np.abs(uk) <= rk) & (np.abs(vk) <= 0.35 * rk)
            long_v = (np.abs(vk) <= rk) & (np.abs(uk) <= 0.35 * rk)
            inside = long_u | long_v
        masks[sel] = inside
    return masks


def _paint(
    rng: np.random.Generator, masks: np.ndarray, contrast: np.ndarray, noise: float
) -> np.ndarray:
    """Images (N, S, S) uint8: a random background, each object `contrast` above it, noise.

    masks: (N, K, S, S) bool, non-overlapping objects; contrast: (N, K) gray levels.
    """
    n = masks.shape[0]
    background = rng.uniform(0, 60, size=(n, 1, 1)).astype(np.float32)
    sigma = rng.uniform(0.25, 1.0, size=(n, 1, 1)).astype(np.float32) * noise
    # each pixel is raised by the contrast of the object covering it (0 where none does)
    raised = np.einsum("nkhw,nk->nhw", masks.astype(np.float32), contrast.astype(np.float32))
    images = background + raised  # (N, S, S)
    images += rng.standard_normal(images.shape, dtype=np.float32) * sigma
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def _check(caller: str, n: int, size: int, classes: Sequence[str]) -> list[int]:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{caller}: n must be a positive int, got {n!r}")
    if not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise ValueError(f"{caller}: size must be an int >= {MIN_SIZE}, got {size!r}")
    unknown = [name for name in classes if name not in SHAPE_CLASSES]
    if unknown or len(classes) == 0 or len(set(classes)) != len(classes):
        raise ValueError(
            f"{caller}: classes must be distinct names from {SHAPE_CLASSES}, got {classes!r}"
        )
    return [SHAPE_CLASSES.index(name) for name in classes]


def make_shapes(
    n: int,
    size: int = 28,
    seed: int | Sequence[int] = 0,
    classes: Sequence[str] = SHAPE_CLASSES,
    noise: float = 16.0,
    max_angle: float = 10.0,
    min_radius: float = 0.27,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n` grayscale images of one shape each, with class labels and foreground masks.

    Every image gets a random position, outer radius (`min_radius` to 42% of `size`), angle
    (within +-`max_angle` degrees), background (0-60), shape brightness (100-195 above the
    background) and Gaussian noise (standard deviation 0.25-1 times `noise`). Classes are
    balanced (n // len(classes) each, the remainder spread over the first ones) and shuffled.
    The same seed gives the same data.

    Args:
        n: number of images.
        size: image side in pixels (>= 12).
        seed: anything `np.random.default_rng` accepts.
        classes: the shape kinds to draw; label k is `classes[k]`.
        noise: the largest noise standard deviation, in gray levels.
        max_angle: the largest rotation, in degrees (the course's small CNN learns the
            default set to > 95% test accuracy from 5,000 images in a few epochs).
        min_radius: the smallest outer radius, as a fraction of `size`.
    Shapes:
        images: (n, size, size) uint8; labels: (n,) int64 in 0..len(classes)-1;
        masks: (n, size, size) uint8, 1 where the shape is, 0 elsewhere.
    Raises:
        ValueError: n < 1, size < 12, or unknown/repeated class names.
    Example:
        >>> images, labels, masks = make_shapes(6, seed=0)
        >>> images.shape, images.dtype, labels.dtype, masks.max()
        ((6, 28, 28), dtype('uint8'), dtype('int64'), np.uint8(1))
        >>> sorted(labels.tolist())
        [0, 0, 1, 2, 3, 4]
    """
    kind_ids = np.asarray(_check("make_shapes", n, size, classes))
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(classes)).astype(np.int64)
    radius = rng.uniform(min_radius, 0.42, size=n) * size
    margin = radius + 0.5
    center_y = margin + rng.uniform(0, 1, size=n) * (size - 1 - 2 * margin)
    center_x = margin + rng.uniform(0, 1, size=n) * (size - 1 - 2 * margin)
    angle = np.deg2rad(rng.uniform(-max_angle, max_angle, size=n))
    masks = render_shapes(kind_ids[labels], center_y, center_x, radius, angle, size)
    contrast = rng.uniform(100, 195, size=(n, 1))
    images = _paint(rng, masks[:, None], contrast, noise)
    return images, labels, masks.astype(np.uint8)


def make_shapes_seg(
    n: int,
    size: int = 64,
    seed: int | Sequence[int] = 0,
    objects: tuple[int, int] = (1, 4),
    multiclass: bool = False,
    classes: Sequence[str] = SHAPE_CLASSES,
    noise: float = 16.0,
) -> tuple[np.ndarray, np.ndarray]:
    """`n` images with several shapes each, and their segmentation masks.

    The canvas is cut into a g x g grid of cells, g = ceil(sqrt(objects[1])); each object takes
    its own random cell and stays inside it, so objects never overlap. Kinds, sizes, angles,
    positions inside the cells and brightness are random per object.

    Args:
        n: number of images.
        size: image side in pixels; each grid cell must be at least 12 pixels.
        seed: anything `np.random.default_rng` accepts.
        objects: (fewest, most) objects per image, inclusive.
        multiclass: masks hold the kind (k + 1 for `classes[k]`, 0 background) instead of 0/1.
        classes: the shape kinds to draw.
        noise: the largest noise standard deviation, in gray levels.
    Shapes:
        images: (n, size, size) uint8; masks: (n, size, size) uint8 with values 0/1, or
        0..len(classes) when multiclass.
    Raises:
        ValueError: bad n, size, objects or classes.
    Example:
        >>> images, masks = make_shapes_seg(2, seed=0, multiclass=True)
        >>> images.shape, masks.shape, int(masks.max()) <= len(SHAPE_CLASSES)
        ((2, 64, 64), (2, 64, 64), True)
    """
    caller = "make_shapes_seg"
    kind_ids = np.asarray(_check(caller, n, size, classes))
    low, high = objects
    if not 1 <= low <= high:
        raise ValueError(
            f"{caller}: objects must be (fewest, most) with 1 <= fewest <= most, got {objects!r}"
        )
    grid = int(np.ceil(np.sqrt(high)))
    cell = size // grid
    if cell < MIN_SIZE:
        raise ValueError(
            f"{caller}: {high} objects need a {grid}x{grid} grid of cells; a "
            f"{size}x{size} canvas gives {cell}-pixel cells, below {MIN_SIZE}"
        )
    rng = np.random.default_rng(seed)
    count = rng.integers(low, high + 1, size=n)  # objects in each image
    active = np.arange(high)[None, :] < count[:, None]  # (n, high)
    cells = np.argsort(rng.random((n, grid * grid)), axis=1)[:, :high]  # distinct cells
    label = rng.integers(0, len(classes), size=(n, high))  # index into `classes`
    kind = kind_ids[label]  # index into SHAPE_CLASSES
    radius = rng.uniform(0.30, 0.48, size=(n, high)) * cell
    margin = radius + 0.5
    offset_y = margin + rng.uniform(0, 1, size=(n, high)) * (cell - 1 - 2 * margin)
    offset_x = margin + rng.uniform(0, 1, size=(n, high)) * (cell - 1 - 2 * margin)
    center_y = (cells // grid) * cell + offset_y
    center_x = (cells % grid) * cell + offset_x
    angle = rng.uniform(0, 2 * np.pi, size=(n, high))
    contrast = rng.uniform(100, 195, size=(n, high))
    images = np.empty((n, size, size), dtype=np.uint8)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    chunk = max(1, 2**22 // (high * size * size))  # bound the temporary arrays (~4M pixels)
    for start in range(0, n, chunk):  # chunks of images, each chunk fully vectorised
        part = slice(start, start + chunk)
        m = len(count[part])
        shapes = render_shapes(
            kind[part].ravel(), center_y[part].ravel(), center_x[part].ravel(),
            radius[part].ravel(), angle[part].ravel(), size,
        ).reshape(m, high, size, size)  # fmt: skip
        shapes &= active[part][:, :, None, None]
        images[part] = _paint(rng, shapes, contrast[part], noise)
        values = label[part] + 1 if multiclass else np.ones((m, high), dtype=np.int64)
        masks[part] = np.einsum("nkhw,nk->nhw", shapes.astype(np.uint8), values.astype(np.uint8))
    return images, masks
