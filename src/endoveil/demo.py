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


def tissue_texture(rng: np.random.Generator, w: int, h: int) -> npt.NDArray[np.uint8]:
    big = 2 * w
    noise = cv2.GaussianBlur(rng.random((h, big)).astype(np.float32), (0, 0), 18)
    noise = (noise - noise.min()) / (np.ptp(noise) + 1e-6)
    img = np.empty((h, big, 3), np.float32)
    img[..., 0] = 150 + 90 * noise  # red
    img[..., 1] = 40 + 60 * noise**2
    img[..., 2] = 45 + 50 * noise**2
    for _ in range(40):  # vessels
        pts = np.cumsum(rng.normal(0, 12, (12, 2)), axis=0) + rng.random(2) * (big, h)
        cv2.polylines(img, [pts.astype(np.int32)], False, (110, 20, 30), int(rng.integers(1, 4)))
    return np.clip(cv2.GaussianBlur(img, (0, 0), 1.5), 0, 255).astype(np.uint8)


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
    h, w = mask.shape
    x = int((np.sin(t * 0.7) * 0.5 + 0.5) * (tissue.shape[1] - w))
    frame = tissue[:, x : x + w].copy()
    tip = (int(w * (0.3 + 0.25 * np.sin(t))), int(h * (0.55 + 0.15 * np.cos(t * 1.3))))
    cv2.line(frame, (w, h), tip, (170, 170, 175), 22)
    cv2.circle(frame, (tip[0] + 40, tip[1] - 60), 9, (255, 255, 255), -1)  # specular highlight
    frame[~mask] = 0
    return frame


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
    mask = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (h * 0.62) ** 2
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
