"""Augmentations that match what endoscopic and operating-room video really look like.

Every augmentation is applied to BOTH classes with the same probability. That matters most
for the things that correlate with the label in small datasets but must not decide it: black
borders and circular endoscope fields, robotic console bars, on-screen text. An operating-room
picture letterboxed on black must stay out of body, and an endoscope picture filling the frame
must stay in body.

All randomness comes from the ``numpy.random.Generator`` passed in, so a seed reproduces it.
Images are uint8 RGB at any size; the caller resizes to the model input afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["AugmentConfig", "augment"]

Image = npt.NDArray[np.uint8]

_WORDS = (
    "ICG",
    "FIREFLY",
    "ARM 1",
    "ARM 2",
    "CAM",
    "ENERGY",
    "BIPOLAR",
    "CUT",
    "COAG",
    "30°",
    "REC",
    "00:12:45",
    "HD",
    "4K",
    "PATIENT",
    "ID 1234567",
    "2024-05-11",
    "WL",
    "NBI",
    "ZOOM x1.5",
    "AWB",
    "IRIS",
    "ENHANCE",
    "STRYKER",
    "OLYMPUS",
    "STORZ",
    "L",
    "R",
)


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities of each augmentation; ``strength`` scales all of them (0 = none)."""

    strength: float = 1.0
    crop: float = 0.5
    rotate: float = 0.3
    flip: float = 0.5
    content_area: float = 0.55
    photometric: float = 0.8
    fog: float = 0.15
    specular: float = 0.2
    blur: float = 0.25
    overlay: float = 0.35
    compression: float = 0.3


def augment(image: Image, rng: np.random.Generator, config: AugmentConfig | None = None) -> Image:
    """One random, label-preserving variant of ``image``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> augment(np.zeros((90, 120, 3), np.uint8), rng).dtype
        dtype('uint8')
    """
    cfg = config or AugmentConfig()

    # In this order, each with its own probability; borders, bars and text come late so
    # that they stay sharp, as a real screen shows them.
    steps: tuple[tuple[float, Callable[[np.ndarray, np.random.Generator], np.ndarray]], ...] = (
        (cfg.crop, _crop),
        (cfg.flip, lambda img, _rng: img[:, ::-1]),
        (cfg.rotate, _rotate),
        (cfg.fog, _fog),
        (cfg.specular, _specular),
        (cfg.photometric, _photometric),
        (cfg.blur, _blur),
        (cfg.content_area, _content_area),
        (cfg.overlay, _overlay),
        (cfg.compression, _compress),
    )
    out = image
    for probability, step in steps:
        if rng.random() < probability * cfg.strength:
            out = step(out, rng)
    return np.ascontiguousarray(out)


def _crop(image: Image, rng: np.random.Generator) -> Image:
    h, w = image.shape[:2]
    scale = rng.uniform(0.55, 1.0)
    aspect = np.exp(rng.uniform(-0.3, 0.3))
    ch = int(np.clip(h * scale / np.sqrt(aspect), 8, h))
    cw = int(np.clip(w * scale * np.sqrt(aspect), 8, w))
    y = int(rng.integers(0, h - ch + 1))
    x = int(rng.integers(0, w - cw + 1))
    return image[y : y + ch, x : x + cw]


def _rotate(image: Image, rng: np.random.Generator) -> Image:
    h, w = image.shape[:2]
    if rng.random() < 0.2:  # camera held upside down or a rotated recording
        return np.ascontiguousarray(np.rot90(image, int(rng.integers(1, 4))))
    angle = rng.uniform(-25, 25)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT_101)


def _photometric(image: Image, rng: np.random.Generator) -> Image:
    x = image.astype(np.float32) / 255.0
    # Darkness and overexposure: a gain and a gamma, sometimes strong.
    x = x * np.exp(rng.normal(0, 0.35))
    x = np.clip(x, 0, 1) ** np.exp(rng.normal(0, 0.3))
    # Colour cast / white balance: per-channel gains.
    x = x * np.exp(rng.normal(0, 0.12, size=3)).astype(np.float32)
    # Saturation and contrast.
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * np.exp(rng.normal(0, 0.3))
    x = x.mean() + (x - x.mean()) * np.exp(rng.normal(0, 0.2))
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def _fog(image: Image, rng: np.random.Generator) -> Image:
    """Surgical smoke / a fogged lens: a bright, soft veil with low contrast."""
    h, w = image.shape[:2]
    veil = rng.uniform(0.2, 0.6)
    colour = rng.uniform(180, 255, size=3).astype(np.float32)
    noise = cv2.resize(rng.random((4, 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    alpha = np.clip(veil * (0.6 + 0.8 * noise), 0, 0.9)[..., None]
    blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=max(1.0, 0.01 * max(h, w)))
    return (blurred * (1 - alpha) + colour * alpha).astype(np.uint8)


def _specular(image: Image, rng: np.random.Generator) -> Image:
    """Specular highlights: small saturated white blobs, as on wet tissue or shiny objects."""
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, 8))):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(1, max(2, w // 12))), int(rng.integers(1, max(2, h // 16))))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=max(0.5, 0.004 * max(h, w)))[..., None]
    return (image * (1 - mask) + 255 * mask).astype(np.uint8)


def _blur(image: Image, rng: np.random.Generator) -> Image:
    h, w = image.shape[:2]
    radius = max(1, int(rng.uniform(0.005, 0.03) * max(h, w)))
    kind = rng.integers(0, 3)
    if kind == 0:  # Gaussian: out of focus, soft
        return cv2.GaussianBlur(image, (0, 0), sigmaX=radius / 2)
    if kind == 1:  # defocus: a disk kernel
        kernel = np.zeros((2 * radius + 1, 2 * radius + 1), np.float32)
        cv2.circle(kernel, (radius, radius), radius, 1.0, -1)
        return cv2.filter2D(image, -1, kernel / kernel.sum())
    kernel = np.zeros((2 * radius + 1, 2 * radius + 1), np.float32)  # motion
    kernel[radius, :] = 1.0
    matrix = cv2.getRotationMatrix2D((radius, radius), float(rng.uniform(0, 180)), 1.0)
    kernel = cv2.warpAffine(kernel, matrix, kernel.shape[::-1])
    return cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6))


def _content_area(image: Image, rng: np.random.Generator) -> Image:
    """Black borders: a circular endoscope field, or letterbox/pillarbox bars."""
    h, w = image.shape[:2]
    kind = rng.integers(0, 3)
    if kind == 0:  # circular field, sometimes cut by the frame edges
        out = image.copy()
        # From a small disc (thin scopes, or the field shown small) to one cut by the edges.
        radius = rng.uniform(0.3, 0.85) * (min(h, w) if rng.random() < 0.5 else max(h, w))
        centre = (w / 2 + rng.normal(0, 0.03) * w, h / 2 + rng.normal(0, 0.03) * h)
        yy, xx = np.ogrid[:h, :w]
        outside = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 > radius**2
        out[outside] = rng.integers(0, 20)
        return out
    # Place the picture on a black canvas of another aspect ratio (letterbox / pillarbox),
    # as when a 4:3 source is recorded in 16:9 or a console shows it in a window.
    aspect = w / h
    target = float(rng.choice([4 / 3, 16 / 9, 1.0, 5 / 4, 2.0]))
    if abs(target - aspect) < 0.05:
        target = aspect * float(rng.choice([0.7, 1.4]))
    if target > aspect:
        canvas_h, canvas_w = h, int(h * target)
    else:
        canvas_h, canvas_w = int(w / target), w
    canvas = np.full((canvas_h, canvas_w, 3), rng.integers(0, 20), np.uint8)
    scale = rng.uniform(0.75, 1.0)
    ih, iw = max(1, int(h * scale)), max(1, int(w * scale))
    small = cv2.resize(image, (iw, ih), interpolation=cv2.INTER_AREA)
    y = int(rng.integers(0, canvas_h - ih + 1))
    x = int(rng.integers(0, canvas_w - iw + 1))
    canvas[y : y + ih, x : x + iw] = small
    if kind == 2:  # an octagon-like frame: cut the corners as some scopes do
        c = int(min(ih, iw) * rng.uniform(0.1, 0.25))
        corners = [(x, y, 1, 1), (x + iw, y, -1, 1), (x, y + ih, 1, -1), (x + iw, y + ih, -1, -1)]
        pts = [
            np.array([[cx, cy], [cx + sx * c, cy], [cx, cy + sy * c]], np.int32)
            for cx, cy, sx, sy in corners
        ]
        cv2.fillPoly(canvas, pts, (0, 0, 0))
    return canvas


def _overlay(image: Image, rng: np.random.Generator) -> Image:
    """Robotic console bars, icons and on-screen text, drawn on either class."""
    out = image.copy()
    h, w = out.shape[:2]
    if rng.random() < 0.5:  # console bars at the top and/or bottom, with icon-like boxes
        bar = max(2, int(h * rng.uniform(0.05, 0.14)))
        colour = tuple(int(c) for c in rng.integers(0, 70, size=3))
        for y0 in [0, h - bar] if rng.random() < 0.6 else [int(rng.choice([0, h - bar]))]:
            cv2.rectangle(out, (0, y0), (w, y0 + bar), colour, -1)
            for _ in range(int(rng.integers(1, 5))):
                x0 = int(rng.integers(0, max(1, w - bar)))
                box = tuple(int(c) for c in rng.integers(60, 255, size=3))
                cv2.rectangle(out, (x0, y0 + 1), (x0 + bar, y0 + bar - 2), box, -1)
    for _ in range(int(rng.integers(1, 4))):
        text = str(rng.choice(_WORDS))
        scale = max(0.25, h / 400 * rng.uniform(0.6, 1.6))
        colour = (
            (255, 255, 255)
            if rng.random() < 0.6
            else tuple(int(c) for c in rng.integers(0, 256, size=3))
        )
        org = (int(rng.integers(0, max(1, w - 20))), int(rng.integers(10, max(11, h))))
        cv2.putText(
            out,
            text,
            org,
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            colour,
            max(1, int(scale * 2)),
            cv2.LINE_AA,
        )
    return out


def _compress(image: Image, rng: np.random.Generator) -> Image:
    """JPEG blocking and ringing, plus sensor noise, as in heavily compressed recordings."""
    out = image
    if rng.random() < 0.5:
        noise = rng.normal(0, rng.uniform(2, 10), size=out.shape)
        out = np.clip(out + noise, 0, 255).astype(np.uint8)
    quality = int(rng.integers(10, 60))
    ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        return out
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
