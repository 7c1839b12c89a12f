"""Synthetic near-field pictures: what the scope sees just outside the patient, and the odd
in-body views that must stay in body.

A real extraction mostly shows things a few centimetres from the lens (drapes, gloves, skin,
towels and gauze, the trocar's tube and valve), out of focus, inside the scope's round field.
The far operating room the public data is full of is the rare case. These generators draw the
near field procedurally, and make close, defocused crops of real training pictures; for the in
body they make the hard counterparts (smoke and white-out, red-out, fog, gauze or a specimen
bag in the abdomen, instruments close up) from real in-body training pictures, so that the
model learns tissue rather than framing, blur or colour cast.

Everything is drawn from the ``numpy.random.Generator`` passed in, and every generator takes
its ranges from a `Ranges`: training uses `TRAIN_RANGES`; ``bench/nearfield.py`` uses
`HELDOUT_RANGES` and other seeds, so that the benchmark does not measure memory of the
generator's exact draws.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

__all__ = [
    "HELDOUT_RANGES",
    "IN_BODY_KINDS",
    "OUT_OF_BODY_KINDS",
    "TRAIN_RANGES",
    "Ranges",
    "closeup",
    "disk_blur",
    "draw_in_body",
    "draw_out_of_body",
    "scope_field",
    "square",
    "synthesize",
]

Image = npt.NDArray[np.uint8]
Span = tuple[float, float]


@dataclass(frozen=True)
class Ranges:
    """The parameter ranges of the generators (OpenCV hue: 0..180).

    Attributes:
        drape_hues: hue bands of blue/green drapes and towels.
        glove_hues: hue bands of latex/nitrile gloves (brown, blue, white-ish ones use low
            saturation).
        folds: how many fold waves cross a drape.
        glints: how many specular glints per picture.
        zoom: magnification of close-up crops of real pictures.
        defocus: defocus radius as a share of the picture side.
        veil: opacity of smoke / white-out in the body.
    """

    drape_hues: tuple[Span, ...]
    glove_hues: tuple[Span, ...]
    folds: tuple[int, int]
    glints: tuple[int, int]
    zoom: Span
    defocus: Span
    veil: Span


TRAIN_RANGES = Ranges(
    drape_hues=((95.0, 108.0), (112.0, 122.0), (55.0, 70.0), (78.0, 88.0)),
    glove_hues=((8.0, 16.0), (100.0, 110.0), (20.0, 26.0)),
    folds=(1, 5),
    glints=(0, 8),
    zoom=(3.0, 8.0),
    defocus=(0.0, 0.04),
    veil=(0.4, 0.85),
)
"""Used by `endoveil train`."""

HELDOUT_RANGES = Ranges(
    drape_hues=((108.0, 112.0), (88.0, 95.0), (70.0, 78.0)),
    glove_hues=((16.0, 20.0), (110.0, 116.0)),
    folds=(6, 8),
    glints=(9, 13),
    zoom=(8.0, 10.0),
    defocus=(0.04, 0.06),
    veil=(0.85, 0.9),
)
"""Used only by the benchmark: bands and ranges no training draw comes from."""


# helpers ------------------------------------------------------------------------------------
def _span(rng: np.random.Generator, span: Span) -> float:
    return float(rng.uniform(*span))


def _hue(rng: np.random.Generator, bands: Sequence[Span]) -> float:
    return _span(rng, bands[int(rng.integers(len(bands)))])


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> npt.NDArray[np.float32]:
    """Low-frequency noise in [0, 1]: ``cells`` random values per side, bicubic upsampled."""
    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    field = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / max(hi - lo, 1e-6)


def _hsv_fill(
    h: npt.NDArray[np.float32], s: npt.NDArray[np.float32], v: npt.NDArray[np.float32]
) -> Image:
    hsv = np.stack([np.clip(h, 0, 179), np.clip(s, 0, 255), np.clip(v, 0, 255)], axis=-1)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def _folds(rng: np.random.Generator, size: int, ranges: Ranges) -> npt.NDArray[np.float32]:
    """Shading of folded cloth, paper or plastic, in [-1, 1]: soft warped waves plus a few
    sharp creases (ridged noise)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    warp = _smooth_noise(rng, size, 3) * rng.uniform(0.3, 1.5)
    shade = np.zeros((size, size), np.float32)
    count = int(rng.integers(ranges.folds[0], ranges.folds[1] + 1))
    for _ in range(count):
        angle = rng.uniform(0, np.pi)
        freq = rng.uniform(0.5, 3.0)
        phase = rng.uniform(0, 2 * np.pi)
        u = xx * np.cos(angle) + yy * np.sin(angle) + warp
        shade += np.sin(2 * np.pi * freq * u + phase).astype(np.float32) * rng.uniform(0.2, 0.8)
    creases = 1 - np.abs(2 * _smooth_noise(rng, size, int(rng.integers(2, 6))) - 1)
    shade += (creases**4 * rng.uniform(0.5, 2.0)).astype(np.float32)
    return np.tanh(shade / max(1.0, np.sqrt(count))).astype(np.float32)


def _glints(
    image: Image,
    rng: np.random.Generator,
    ranges: Ranges,
    ridge: npt.NDArray[np.float32] | None = None,
) -> Image:
    """Specular glints: small bright spots and a few streaks, on ridges when ``ridge`` is
    given."""
    size = image.shape[0]
    mask = np.zeros((size, size), np.float32)
    count = int(rng.integers(ranges.glints[0], ranges.glints[1] + 1))
    ys, xs = np.nonzero(ridge > np.quantile(ridge, 0.97)) if ridge is not None else ((), ())
    for _ in range(count):
        if len(ys) and rng.random() < 0.7:
            k = int(rng.integers(len(ys)))
            centre = (int(xs[k]), int(ys[k]))
        else:
            centre = (int(rng.integers(size)), int(rng.integers(size)))
        long = int(rng.integers(1, max(2, size // (8 if rng.random() < 0.3 else 30))))
        axes = (long, int(rng.integers(1, max(2, size // 50))))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, rng.uniform(0.5, 1), -1)
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=max(0.8, size / 150))[..., None]
    return (image * (1 - mask) + 255 * mask).astype(np.uint8)


def _defocus(image: Image, rng: np.random.Generator, ranges: Ranges) -> Image:
    return disk_blur(image, int(_span(rng, ranges.defocus) * image.shape[0]))


def disk_blur(image: Image, radius: int) -> Image:
    """A lens out of focus: the mean over a disk of ``radius`` pixels (none below 1)."""
    if radius < 1:
        return image
    kernel = np.zeros((2 * radius + 1, 2 * radius + 1), np.float32)
    cv2.circle(kernel, (radius, radius), radius, 1.0, -1)
    return cv2.filter2D(image, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT_101)


def _vignette(image: Image, rng: np.random.Generator) -> Image:
    """The scope's own light: bright in the centre, falling off toward the edge."""
    size = image.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    cx, cy = rng.normal(0, 0.08, 2)
    falloff = 1 - rng.uniform(0.2, 0.7) * np.clip(((xx - cx) ** 2 + (yy - cy) ** 2) * 4, 0, 1)
    return np.clip(image * falloff[..., None] * rng.uniform(0.8, 1.3), 0, 255).astype(np.uint8)


def scope_field(image: Image, rng: np.random.Generator) -> Image:
    """Show ``image`` inside a round or octagonal endoscope field on black."""
    size = image.shape[0]
    mask = np.zeros((size, size), np.uint8)
    centre = (
        size // 2 + int(rng.normal(0, size * 0.02)),
        size // 2 + int(rng.normal(0, size * 0.02)),
    )
    radius = int(size * rng.uniform(0.38, 0.62))
    if rng.random() < 0.75:
        cv2.circle(mask, centre, radius, 255, -1, cv2.LINE_AA)
    else:
        angles = np.arange(8) * np.pi / 4 + np.pi / 8
        pts = np.stack(
            [centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)], 1
        )
        cv2.fillPoly(mask, [pts.astype(np.int32)], 255, cv2.LINE_AA)
    alpha = (mask.astype(np.float32) / 255)[..., None]
    return (image * alpha + rng.integers(0, 12) * (1 - alpha)).astype(np.uint8)


# out of body --------------------------------------------------------------------------------
def drape(rng: np.random.Generator, size: int, ranges: Ranges) -> Image:
    """Blue/green paper or cloth drape, or clear plastic over it, folded, with glints."""
    folds = _folds(rng, size, ranges)
    hue = np.full((size, size), _hue(rng, ranges.drape_hues), np.float32)
    sat = np.full((size, size), rng.uniform(50, 220), np.float32)
    val = rng.uniform(80, 200) + folds * rng.uniform(20, 60)
    # Paper or non-woven fibres: fine noise smeared along one direction.
    texture = rng.normal(0, rng.uniform(3, 14), (size, size)).astype(np.float32)
    texture = cv2.GaussianBlur(texture, (0, 0), sigmaX=rng.uniform(0.5, 2.5), sigmaY=0.6)
    image = _hsv_fill(hue, sat + texture, val + texture)
    if rng.random() < 0.4:  # clear plastic on top: whitish, washed out, strong glints
        film = rng.uniform(0.3, 0.7)
        image = (image * (1 - film) + rng.uniform(170, 240) * film).astype(np.uint8)
    return _glints(image, rng, ranges, ridge=folds)


def glove(rng: np.random.Generator, size: int, ranges: Ranges) -> Image:
    """Gloved fingers (brown, blue or white latex) held close, over a drape or skin."""
    base = drape(rng, size, ranges) if rng.random() < 0.6 else skin(rng, size, ranges)
    hue = _hue(rng, ranges.glove_hues)
    sat = rng.uniform(10, 60) if rng.random() < 0.3 else rng.uniform(60, 170)
    mask = np.zeros((size, size), np.float32)
    angle = rng.uniform(0, np.pi)
    width = int(size * rng.uniform(0.12, 0.3))
    for k in range(int(rng.integers(1, 5))):
        offset = (k - 1.5) * width * 1.1 + rng.normal(0, width * 0.2)
        cx = size / 2 + offset * np.cos(angle + np.pi / 2)
        cy = size / 2 + offset * np.sin(angle + np.pi / 2)
        length = size * rng.uniform(0.4, 1.0)
        p1 = (int(cx - length * np.cos(angle)), int(cy - length * np.sin(angle)))
        p2 = (int(cx + length * 0.3 * np.cos(angle)), int(cy + length * 0.3 * np.sin(angle)))
        cv2.line(mask, p1, p2, 1.0, width, cv2.LINE_AA)
    # Round shading across each finger: brighter along its middle.
    dist = cv2.distanceTransform((mask > 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    shade = np.clip(dist / max(width / 2, 1), 0, 1)
    val = rng.uniform(90, 200) * (0.55 + 0.45 * shade)
    finger = _hsv_fill(np.full_like(shade, hue), np.full_like(shade, sat), val.astype(np.float32))
    finger = _glints(finger, rng, ranges, ridge=shade)
    m = cv2.GaussianBlur(mask, (0, 0), sigmaX=1.5)[..., None]
    return (base * (1 - m) + finger * m).astype(np.uint8)


def skin(rng: np.random.Generator, size: int, ranges: Ranges) -> Image:
    """The patient's skin, often iodine-prepped (orange-brown blotches), with pores."""
    blotch = _smooth_noise(rng, size, int(rng.integers(2, 7)))
    prepped = rng.random() < 0.6
    hue = (rng.uniform(8, 18) if prepped else rng.uniform(5, 15)) + blotch * 4
    sat = (rng.uniform(120, 220) if prepped else rng.uniform(50, 120)) * (0.7 + 0.5 * blotch)
    val = rng.uniform(110, 220) * (0.75 + 0.3 * blotch)
    pores = rng.normal(0, rng.uniform(3, 9), (size, size)).astype(np.float32)
    pores = cv2.GaussianBlur(pores, (0, 0), sigmaX=0.8)
    image = _hsv_fill(
        hue.astype(np.float32), sat.astype(np.float32), (val + pores).astype(np.float32)
    )
    if rng.random() < 0.3:  # the port's incision and a suture line
        y = int(rng.integers(size // 4, 3 * size // 4))
        cv2.line(
            image,
            (0, y),
            (size, y + int(rng.integers(-size // 4, size // 4))),
            (90, 30, 25),
            max(1, size // 60),
        )
    return _glints(image, rng, ranges) if rng.random() < 0.5 else image


def towel(rng: np.random.Generator, size: int, ranges: Ranges) -> Image:
    """Woven towel or gauze on the back table: a fine grid, folded, white, green or blue."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    pitch = rng.uniform(2.5, 7.0)
    angle = rng.uniform(0, np.pi)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    weave = (np.sin(2 * np.pi * u / pitch) * np.sin(2 * np.pi * v / pitch)).astype(np.float32)
    folds = _folds(rng, size, ranges)
    white = rng.random() < 0.5
    hue = np.full((size, size), _hue(rng, ranges.drape_hues), np.float32)
    sat = np.full((size, size), rng.uniform(0, 30) if white else rng.uniform(60, 180), np.float32)
    val = rng.uniform(140, 230) + 20 * weave + 40 * folds
    image = _hsv_fill(hue, sat, val.astype(np.float32))
    if rng.random() < 0.25:  # a few blood stains on used gauze
        stain = _smooth_noise(rng, size, 4) > rng.uniform(0.7, 0.9)
        image[stain] = (image[stain] * np.array([0.8, 0.25, 0.25])).astype(np.uint8)
    return image


_CAP_TEXT = ("5-12mm", "XCEL", "VERSAPORT", "KII", "12 mm", "SEAL", "LOT 2231", "STERILE", "11mm")


def trocar(rng: np.random.Generator, size: int, ranges: Ranges) -> Image:
    """Inside a trocar: a dark metal/plastic tube, the valve's bright flaps, cap text."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    cx, cy = rng.normal(0, 0.1, 2)
    r = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    kind = rng.random()
    grey = rng.uniform(0.6, 1.0, 3).astype(np.float32)
    if kind < 0.4:  # the tube: dark centre, a bright ring of its wall
        ring = np.exp(-(((r - rng.uniform(0.2, 0.45)) / rng.uniform(0.03, 0.1)) ** 2))
        lum = 20 + 170 * ring + rng.uniform(0, 30) * (1 - r)
    elif kind < 0.75:  # the valve: flaps meeting in a slit or star
        theta = np.arctan2(yy - cy, xx - cx)
        blades = int(rng.integers(2, 6))
        lum = 120 + 70 * np.cos(blades * theta + rng.uniform(0, np.pi)) * np.clip(r * 3, 0, 1)
        lum = lum * (0.7 + 0.3 * np.cos(r * rng.uniform(8, 20)))
    else:  # the cap from close: a plain surface with printed text
        lum = np.full((size, size), rng.uniform(120, 220), np.float32)
    image = np.clip(lum[..., None] * grey, 0, 255).astype(np.uint8)
    if kind >= 0.6:
        colour = tuple(int(c) for c in rng.integers(0, 80, 3))
        for _ in range(int(rng.integers(1, 3))):
            text = str(rng.choice(_CAP_TEXT))
            org = (int(rng.integers(0, size // 2)), int(rng.integers(size // 5, size)))
            cv2.putText(
                image,
                text,
                org,
                cv2.FONT_HERSHEY_SIMPLEX,
                size / 220 * rng.uniform(0.7, 1.6),
                colour,
                max(1, size // 90),
                cv2.LINE_AA,
            )
    return _glints(image, rng, ranges)


def closeup(image: Image, rng: np.random.Generator, size: int, ranges: Ranges) -> Image:
    """A crop of ``image`` magnified ``ranges.zoom`` times, resized to ``size``²."""
    h, w = image.shape[:2]
    side = min(h, w, max(4, int(min(h, w) / _span(rng, ranges.zoom))))
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    return cv2.resize(
        image[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_CUBIC
    )


OUT_OF_BODY_KINDS: dict[str, Callable[[np.random.Generator, int, Ranges], Image]] = {
    "drape": drape,
    "glove": glove,
    "skin": skin,
    "towel": towel,
    "trocar": trocar,
}


def draw_out_of_body(
    kind: str, rng: np.random.Generator, size: int, ranges: Ranges = TRAIN_RANGES
) -> Image:
    """One near-field out-of-body picture of ``kind``, as the scope sees it (defocus, its
    light's fall-off, sometimes its round field)."""
    image = OUT_OF_BODY_KINDS[kind](rng, size, ranges)
    return _finish(image, rng, ranges)


def _finish(image: Image, rng: np.random.Generator, ranges: Ranges) -> Image:
    image = _vignette(_defocus(image, rng, ranges), rng)
    return scope_field(image, rng) if rng.random() < 0.5 else image


# in body ------------------------------------------------------------------------------------
def smoke(image: Image, rng: np.random.Generator, ranges: Ranges) -> Image:
    """Surgical smoke / white-out: a dense, uneven white veil over tissue."""
    size = image.shape[0]
    veil = _span(rng, ranges.veil) * (0.7 + 0.3 * _smooth_noise(rng, size, 3))
    colour = rng.uniform(200, 255) * rng.uniform(0.93, 1.0, 3)
    blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=size * rng.uniform(0.005, 0.03))
    return (blurred * (1 - veil[..., None]) + colour * veil[..., None]).astype(np.uint8)


def redout(image: Image, rng: np.random.Generator, ranges: Ranges) -> Image:
    """Red-out: blood on the lens or close to it; dark, saturated red, little detail."""
    size = image.shape[0]
    blood = np.array([rng.uniform(90, 200), rng.uniform(0, 25), rng.uniform(0, 25)], np.float32)
    amount = np.clip(_span(rng, ranges.veil) * (0.6 + 0.6 * _smooth_noise(rng, size, 3)), 0, 1)
    out = image * (1 - amount[..., None]) + blood * amount[..., None]
    return (
        _glints(out.astype(np.uint8), rng, ranges) if rng.random() < 0.5 else out.astype(np.uint8)
    )


def fog(image: Image, rng: np.random.Generator, ranges: Ranges) -> Image:
    """A fogged lens just after insertion: soft, low contrast, a pale cast."""
    size = image.shape[0]
    soft = cv2.GaussianBlur(image, (0, 0), sigmaX=size * rng.uniform(0.02, 0.06))
    amount = _span(rng, ranges.veil) * 0.7
    cast = rng.uniform(150, 230) * rng.uniform(0.85, 1.0, 3)
    return (soft * (1 - amount) + cast * amount).astype(np.uint8)


def gauze_inside(image: Image, rng: np.random.Generator, ranges: Ranges) -> Image:
    """Gauze or a specimen bag inside the abdomen, over part of the tissue."""
    size = image.shape[0]
    region = _smooth_noise(rng, size, 2) > rng.uniform(0.35, 0.65)
    if rng.random() < 0.5:  # white gauze, soaked pink or red in places
        woven = towel(rng, size, ranges).astype(np.float32)
        grey = woven.mean(axis=2, keepdims=True)
        tint = np.array([1.0, rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0)], np.float32)
        patch = np.clip(grey * tint, 0, 255).astype(np.uint8)
    else:  # a translucent bag: tissue seen through whitish plastic, with glints
        film = rng.uniform(0.3, 0.6)
        patch = _glints(
            (image * (1 - film) + 210 * film).astype(np.uint8),
            rng,
            ranges,
            ridge=_folds(rng, size, ranges),
        )
    m = cv2.GaussianBlur(region.astype(np.float32), (0, 0), sigmaX=2)[..., None]
    return (image * (1 - m) + patch * m).astype(np.uint8)


def instrument(image: Image, rng: np.random.Generator, ranges: Ranges) -> Image:
    """An instrument shaft or jaw close to the lens: grey metal or black plastic, glints."""
    size = image.shape[0]
    mask = np.zeros((size, size), np.float32)
    start = (int(rng.integers(-size // 4, size)), int(rng.choice([-size // 8, size + size // 8])))
    end = (int(rng.integers(size // 4, 3 * size // 4)), int(rng.integers(size // 4, 3 * size // 4)))
    width = int(size * rng.uniform(0.15, 0.5))
    cv2.line(mask, start, end, 1.0, width, cv2.LINE_AA)
    dist = cv2.distanceTransform((mask > 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    shade = np.clip(dist / max(width / 2, 1), 0, 1)
    metal = rng.random() < 0.6
    lum = (rng.uniform(110, 200) if metal else rng.uniform(15, 50)) * (0.5 + 0.5 * shade)
    tint = rng.uniform(0.9, 1.05, 3)
    tool = _glints(
        np.clip(lum[..., None] * tint, 0, 255).astype(np.uint8), rng, ranges, ridge=shade
    )
    tool = _defocus(tool, rng, ranges)
    m = cv2.GaussianBlur(mask, (0, 0), sigmaX=1.0)[..., None]
    return (image * (1 - m) + tool * m).astype(np.uint8)


IN_BODY_KINDS: dict[str, Callable[[Image, np.random.Generator, Ranges], Image]] = {
    "smoke": smoke,
    "redout": redout,
    "fog": fog,
    "gauze": gauze_inside,
    "instrument": instrument,
    "closeup": lambda image, _rng, _ranges: image,  # the close, defocused crop alone
}


def draw_in_body(
    kind: str, source: Image, rng: np.random.Generator, size: int, ranges: Ranges = TRAIN_RANGES
) -> Image:
    """One hard in-body picture of ``kind`` made from the real in-body picture ``source``."""
    if kind == "closeup" or rng.random() < 0.3:
        base = closeup(source, rng, size, ranges)
    else:
        base = square(source, size)
    return _finish(IN_BODY_KINDS[kind](base, rng, ranges), rng, ranges)


def square(image: Image, size: int) -> Image:
    """The centre square of ``image``, resized to size×size."""
    h, w = image.shape[:2]
    side = min(h, w)
    y, x = (h - side) // 2, (w - side) // 2
    return cv2.resize(image[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_AREA)


def synthesize(
    in_body: Sequence[Image],
    out_of_body: Sequence[Image],
    per_kind: int,
    seed: int,
    size: int,
    ranges: Ranges = TRAIN_RANGES,
) -> list[tuple[str, int, Image]]:
    """``per_kind`` pictures of every kind: (kind, label, image), label 1 = out of body.

    Out of body: the procedural kinds, and ``closeup_out`` (close, defocused crops of real
    out-of-body pictures). In body: the hard kinds, each made from real in-body pictures.
    Picture ``i`` of a kind comes from its own generator seeded with (seed, kind, i), so it
    does not change when other kinds or counts change.
    """
    out: list[tuple[str, int, Image]] = []

    def rng_for(kind: str, i: int) -> np.random.Generator:
        tag = int.from_bytes(hashlib.sha256(kind.encode()).digest()[:4], "little")
        return np.random.default_rng([seed, tag, i])

    for kind in OUT_OF_BODY_KINDS:
        out += [
            (kind, 1, draw_out_of_body(kind, rng_for(kind, i), size, ranges))
            for i in range(per_kind)
        ]
    if out_of_body:
        for i in range(per_kind):
            rng = rng_for("closeup_out", i)
            source = out_of_body[int(rng.integers(len(out_of_body)))]
            out.append(("closeup_out", 1, _finish(closeup(source, rng, size, ranges), rng, ranges)))
    if in_body:
        for kind in IN_BODY_KINDS:
            for i in range(per_kind):
                rng = rng_for(kind, i)
                source = in_body[int(rng.integers(len(in_body)))]
                out.append((kind, 0, draw_in_body(kind, source, rng, size, ranges)))
    return out
