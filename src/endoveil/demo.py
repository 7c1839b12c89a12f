"""A generated demo video, so that ``endoveil anonymize`` runs on a fresh machine with no data.

The demo is drawn, not filmed (no real footage can ship): an endoscopic-looking scene (reddish
tissue with vessels and highlights in a circular field, an instrument crossing it), then the
camera "leaves the body" into a drawn operating room (walls, lights, people in scrubs), then
returns. Its ground truth is written beside it as an interval CSV.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

from endoveil.atomic import atomic_path, write_text_atomic

__all__ = [
    "DEMO_OOB_INTERVAL_S",
    "endoscope_frame",
    "make_demo_video",
    "room_scene",
    "tissue_texture",
]

DEMO_SIZE = (640, 360)
DEMO_FPS = 25
DEMO_SECONDS = 16
DEMO_OOB_INTERVAL_S = (6.0, 10.0)


def _noise(rng: np.random.Generator, h: int, w: int, octaves: int = 4) -> npt.NDArray[np.float32]:
    """Multi-scale smooth noise in [0, 1]."""
    total = np.zeros((h, w), np.float32)
    for octave in range(octaves):
        cells = 4 * 2**octave
        small = rng.random((max(2, h * cells // w), cells)).astype(np.float32)
        total += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) / 2**octave
    return (total - total.min()) / (np.ptp(total) + 1e-6)


def tissue_texture(rng: np.random.Generator, w: int, h: int) -> npt.NDArray[np.uint8]:
    """A wide strip of wet abdominal tissue: shaded folds, fat, fine vessels, highlights."""
    big = 2 * w
    folds = _noise(rng, h, big)
    fat = _noise(rng, h, big, 3) > 0.68
    shade = cv2.Sobel(folds, cv2.CV_32F, 1, 1, ksize=5)
    light = np.clip(0.75 + 0.25 * folds + 0.02 * shade, 0, 1.2)
    img = np.empty((h, big, 3), np.float32)
    img[..., 0] = 175 + 50 * folds
    img[..., 1] = 55 + 45 * folds
    img[..., 2] = 50 + 35 * folds
    img[fat] = img[fat] * 0.5 + np.array([230, 190, 90], np.float32) * 0.5
    img *= light[..., None]
    for _ in range(70):  # fine, smooth vessels
        start = rng.random(2) * (big, h)
        bend = np.cumsum(rng.normal(0, 6, (30, 2)), axis=0) + np.linspace(0, 1, 30)[:, None] * (
            rng.normal(0, 80, 2)
        )
        cv2.polylines(img, [(start + bend).astype(np.int32)], False, (120, 25, 40), 1, cv2.LINE_AA)
    for _ in range(160):  # specular glints of wet tissue
        x, y = int(rng.random() * big), int(rng.random() * h)
        cv2.ellipse(
            img,
            (x, y),
            (int(rng.integers(1, 5)), int(rng.integers(1, 3))),
            float(rng.random() * 180),
            0,
            360,
            (255, 250, 245),
            -1,
            cv2.LINE_AA,
        )
    return np.clip(cv2.GaussianBlur(img, (0, 0), 0.8), 0, 255).astype(np.uint8)


def room_scene(w: int, h: int) -> npt.NDArray[np.uint8]:
    big = 2 * w
    img = np.zeros((h, big, 3), np.uint8)
    img[:] = (150, 175, 165)  # pale green walls
    img[int(h * 0.7) :] = (120, 120, 125)  # floor
    for x in range(60, big, 260):  # ceiling lights
        cv2.ellipse(img, (x, 30), (70, 22), 0, 0, 360, (255, 255, 245), -1)
    for x in range(140, big, 300):  # people in scrubs
        cv2.rectangle(img, (x - 40, int(h * 0.38)), (x + 40, int(h * 0.95)), (60, 110, 170), -1)
        cv2.circle(img, (x, int(h * 0.3)), 30, (190, 150, 125), -1)
        cv2.rectangle(img, (x - 25, int(h * 0.3)), (x + 25, int(h * 0.36)), (200, 220, 230), -1)
    cv2.rectangle(
        img, (big // 3, int(h * 0.6)), (big // 3 + 300, int(h * 0.7)), (200, 200, 205), -1
    )
    return cv2.GaussianBlur(img, (0, 0), 1.2)


def endoscope_frame(
    tissue: npt.NDArray[np.uint8], t: float, mask: npt.NDArray[np.bool_]
) -> npt.NDArray[np.uint8]:
    """The laparoscope's view at time ``t``: panning tissue, an instrument, light fall-off."""
    h, w = mask.shape
    x = int((np.sin(t * 0.5) * 0.5 + 0.5) * (tissue.shape[1] - w))
    frame = tissue[:, x : x + w].astype(np.float32)
    tip = (int(w * (0.35 + 0.2 * np.sin(t))), int(h * (0.5 + 0.15 * np.cos(t * 1.3))))
    cv2.line(frame, (w + 40, h + 60), tip, (95, 100, 108), 34, cv2.LINE_AA)  # shaft
    cv2.line(frame, (w + 40, h + 48), (tip[0], tip[1] - 8), (190, 195, 205), 6, cv2.LINE_AA)
    jaw = (tip[0] - 30, tip[1] - 14)
    cv2.line(frame, tip, jaw, (150, 155, 160), 9, cv2.LINE_AA)
    yy, xx = np.mgrid[:h, :w]
    falloff = 1.0 - 0.55 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2) * 2.2
    frame *= np.clip(falloff, 0.15, 1.0)[..., None]
    frame[~mask] = 0
    return np.clip(frame, 0, 255).astype(np.uint8)


def make_demo_video(out_dir: Path) -> Path:
    """Write ``demo/endoveil-demo.mp4`` (and its ``.intervals.csv``) under ``out_dir``."""
    folder = Path(out_dir) / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "endoveil-demo.mp4"
    if path.exists():
        return path
    w, h = DEMO_SIZE
    rng = np.random.default_rng(7)
    tissue, room = tissue_texture(rng, w, h), room_scene(w, h)
    yy, xx = np.mgrid[:h, :w]
    mask = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (w * 0.55) ** 2
    start, end = DEMO_OOB_INTERVAL_S
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=DEMO_FPS)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(DEMO_SECONDS * DEMO_FPS):
            t = i / DEMO_FPS
            if start <= t < end:
                x = int((t - start) / (end - start) * (room.shape[1] - w))
                image = room[:, x : x + w]
            else:
                image = endoscope_frame(tissue, t, mask)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    write_text_atomic(path.with_suffix(".intervals.csv"), f"start_s,end_s\n{start},{end}\n")
    return path
