"""Rendering shared by the sets, so that their scenes (background, clutter, objects) differ only in what carries
the label. Frames are float32 (T, H, W, 3) in [0, 1] until ``to_uint8``."""

from __future__ import annotations

import math

import numpy as np

SUPERSAMPLE = 2  # shapes are rasterised at 2x and averaged down: anti-aliased edges, smooth sub-pixel motion


def _shape_mask(shape: str, x: np.ndarray, y: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Inside-test of a shape centred at 0 in its own (rotated) frame; x, y, radius broadcast together."""
    if shape == "disk":
        return x**2 + y**2 <= radius**2
    if shape == "square":
        return np.maximum(np.abs(x), np.abs(y)) <= 0.8 * radius
    if shape == "triangle":  # isosceles, pointing up (-y): asymmetric, so its rotation is visible
        return (y <= 0.6 * radius) & (np.abs(x) <= (y + radius) * 0.55)
    if shape == "cross":
        arm = radius / 3
        return ((np.abs(x) <= arm) & (np.abs(y) <= radius)) | ((np.abs(y) <= arm) & (np.abs(x) <= radius))
    if shape == "ell":  # an "L": no rotational symmetry at all
        return ((x >= -radius) & (x <= -radius / 3) & (np.abs(y) <= radius)) | (
            (y >= radius / 3) & (y <= radius) & (x >= -radius) & (x <= 0.7 * radius))
    if shape == "ring":
        return (x**2 + y**2 <= radius**2) & (x**2 + y**2 >= (0.55 * radius) ** 2)
    if shape == "bar":  # long and thin: tells itself from a square under any rotation
        return (np.abs(x) <= radius) & (np.abs(y) <= radius / 4)
    if shape == "tee":  # a "T": a cross without its lower arm
        arm = radius / 3
        return ((np.abs(y + 2 * arm) <= arm) & (np.abs(x) <= radius)) | ((np.abs(x) <= arm) & (y >= -radius)
                                                                        & (y <= radius))
    raise ValueError(shape)


def render_object(
    size: int, shape: str, cx: np.ndarray, cy: np.ndarray, angle: np.ndarray, radius: float
) -> np.ndarray:
    """Soft masks (T, size, size) of a shape at per-frame centre/angle, wrapping around the borders (torus)."""
    grid = ((np.arange(size * SUPERSAMPLE, dtype=np.float32) + 0.5) / SUPERSAMPLE)
    half = np.float32(size / 2)
    # Offsets to the centre on the torus, in [-size/2, size/2): an object leaving one side enters the other.
    # Kept separable, (T, 1, W) and (T, H, 1), and float32: rendering must stay cheap next to encoding.
    dx = ((grid[None, None, :] - cx.astype(np.float32)[:, None, None] + half) % size - half)
    dy = ((grid[None, :, None] - cy.astype(np.float32)[:, None, None] + half) % size - half)
    cos = np.cos(angle).astype(np.float32)[:, None, None]
    sin = np.sin(angle).astype(np.float32)[:, None, None]
    x, y = cos * dx + sin * dy, -sin * dx + cos * dy  # rotate into the shape's frame
    mask = _shape_mask(shape, x, y, np.float32(radius)).astype(np.float32)
    t = mask.shape[0]
    return mask.reshape(t, size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(2, 4))


def upsample_bilinear(coarse: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w, C) grid values -> (height, width, C), bilinear, the grid's corners on the output's corners."""
    ys, xs = np.linspace(0, coarse.shape[0] - 1, height), np.linspace(0, coarse.shape[1] - 1, width)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, coarse.shape[0] - 1), np.minimum(x0 + 1, coarse.shape[1] - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    rows = coarse[y0] * (1 - fy) + coarse[y1] * fy
    return rows[:, x0] * (1 - fx) + rows[:, x1] * fx


def background(rng: np.random.Generator, size: int, num_frames: int) -> np.ndarray:
    """Static low-frequency colour texture (T, H, W, 3) in [0, 1] plus fresh per-frame pixel noise."""
    texture = upsample_bilinear(rng.uniform(0.25, 0.65, size=(5, 5, 3)), size, size)
    noise = rng.standard_normal(size=(num_frames, size, size, 3), dtype=np.float32) * np.float32(0.03)
    return texture.astype(np.float32)[None] + noise


def hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)


def composite(frames: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> np.ndarray:
    alpha = mask[..., None]
    return frames * (1 - alpha) + alpha * colour.astype(np.float32)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    return (np.clip(frames, 0, 1) * 255 + 0.5).astype(np.uint8)


def linear_path(rng: np.random.Generator, size: int, t: np.ndarray, vx: float, vy: float) -> tuple[np.ndarray, ...]:
    x0, y0 = rng.uniform(0, size, 2)
    return (x0 + vx * t) % size, (y0 + vy * t) % size


def add_distractor(rng: np.random.Generator, frames: np.ndarray, size: int, t: np.ndarray) -> np.ndarray:
    """A grey shape drifting slowly in a random direction: clutter that carries no label information.

    Its drift (at most 0.3 px/frame) stays well below the motion classes' speeds, so it is clutter, not a second
    motion competing with the labelled one."""
    heading, speed = rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.3)
    cx, cy = linear_path(rng, size, t, speed * math.cos(heading), speed * math.sin(heading))
    shape = ("disk", "square", "triangle", "cross", "ell")[rng.integers(5)]
    angle = np.full_like(t, rng.uniform(0, 2 * math.pi))
    mask = render_object(size, shape, cx, cy, angle, rng.uniform(2.5, 4.5))
    return composite(frames, mask, np.full(3, rng.uniform(0.1, 0.9)))
