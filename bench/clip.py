"""Benchmark clips: 1080p30 60 s by default, H.264 (x264 veryfast, B-frames, keyframes every 250).

Built from real images of ../shared/data when present (in body, then 8 s out of body, then in
body again, with a slow zoom so the encoder sees real motion); from endoveil's drawn demo
scenes otherwise. Cached in bench/.cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"
SHARED = ROOT.parent.parent / "shared" / "data"
WIDTH, HEIGHT, FPS, SECONDS = 1920, 1080, 30, 60
OOB_S = (20.0, 28.0)


def _images(folder: Path) -> list[npt.NDArray[np.uint8]]:
    files = sorted(folder.glob("*.jpg"))
    return [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]


def _sources() -> tuple[list[np.ndarray], list[np.ndarray], str]:
    inside = SHARED / "train" / "in_body"
    outside = SHARED / "train" / "out_of_body"
    if inside.is_dir() and outside.is_dir():
        body = _images(inside / "cholecseg") + _images(inside / "endoscapes")[:40]
        room = _images(outside / "oracle_or") + _images(outside / "bedroom")[:30]
        return body, room, "real images from ../shared/data"
    from endoveil.demo import endoscope_frame, room_scene, tissue_texture

    rng = np.random.default_rng(0)
    tissue = tissue_texture(rng, 640, 360)
    yy, xx = np.mgrid[:360, :640]
    mask = (xx - 320) ** 2 + (yy - 180) ** 2 < (360 * 0.62) ** 2
    body = [endoscope_frame(tissue, t / 3, mask) for t in range(40)]
    return body, [room_scene(640, 360)[:, :640]], "drawn demo scenes (../shared/data is absent)"


def _frames(
    body: list[np.ndarray], room: list[np.ndarray], width: int, height: int, seconds: int
) -> Iterator[np.ndarray]:
    for i in range(FPS * seconds):
        t = i / FPS
        pool = room if OOB_S[0] <= t < OOB_S[1] else body
        image = pool[(i // 8) % len(pool)]
        zoom = 1.0 + 0.15 * (0.5 + 0.5 * np.sin(t / 2))
        h, w = image.shape[:2]
        ch, cw = int(h / zoom), int(w / zoom)
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        crop = image[y0 : y0 + ch, x0 : x0 + cw]
        yield cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)


def benchmark_clip(
    width: int = WIDTH, height: int = HEIGHT, seconds: int = SECONDS
) -> tuple[Path, str]:
    """The cached clip (made on first use) and where its pictures came from."""
    body, room, origin = _sources()
    tag = "real" if "shared" in origin else "drawn"
    path = CACHE / f"clip_{height}p{FPS}_{seconds}s_{tag}.mp4"
    if path.exists():
        return path, origin
    CACHE.mkdir(exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "20"}
        for image in _frames(body, room, width, height, seconds):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    tmp.rename(path)
    return path, origin


# A clip made from real surgical video ------------------------------------------------------
SURGICAL_GOP_S = 2
# In-body videos played forwards, then backwards (so the motion stays real and continuous),
# before and after the out-of-body ones: about 10% of the clip is out of body.
IN_BODY_VIDEOS = ("train/videos/rvimlab__endo.mp4", "val/videos/surgicalsam2__video3.mp4")
OUT_OF_BODY_VIDEOS = (
    "val/videos/egoblur__test_face_video.mp4",
    "val/videos/egoblur__test_lp_video.mp4",
    "val/videos/mmpose__demo.mp4",
)


def surgical_clip(slices: int = 1) -> tuple[Path | None, str]:
    """A 1080p30 H.264 clip (CRF 20, B-frames, a keyframe every 2 s) concatenated from the real
    videos of ../shared/data, about 10% out of body; cached. (None, why) without the data.

    ``slices``: slices per picture. 1 is what x264 and ``ffmpeg`` write by default; hardware
    encoders in recorders often cut each picture into several.
    """
    missing = [v for v in (*IN_BODY_VIDEOS, *OUT_OF_BODY_VIDEOS) if not (SHARED / v).is_file()]
    if missing:
        return None, f"skipped: the real videos of ../shared/data are absent ({missing[0]})"
    path = CACHE / f"surgical_{HEIGHT}p{FPS}_gop{SURGICAL_GOP_S}s_{slices}slice.mp4"
    origin = (
        f"real surgical video from ../shared/data, 1080p30, B-frames, 2 s GOP, "
        f"{slices} slice{'s' if slices > 1 else ''} a picture"
    )
    if path.exists():
        return path, origin
    CACHE.mkdir(exist_ok=True)
    body = [_decoded(SHARED / v) for v in IN_BODY_VIDEOS]
    room = [_decoded(SHARED / v) for v in OUT_OF_BODY_VIDEOS]
    forwards = [frame for clip in body for frame in clip]
    sequence = [*forwards, *forwards[::-1], *(f for clip in room for f in clip), *forwards]
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        gop = FPS * SURGICAL_GOP_S
        # Frame threads: PyAV's default (x264's sliced threads) would cut every picture into
        # one slice per encoder thread, which depends on the machine that builds the clip.
        stream.thread_type = "FRAME"
        stream.options = {
            "preset": "veryfast",
            "crf": "20",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=3:slices={slices}",
        }
        for image in sequence:
            frame = av.VideoFrame.from_ndarray(_fit(image), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    tmp.rename(path)
    return path, origin


def _decoded(path: Path) -> list[npt.NDArray[np.uint8]]:
    """A video's frames resampled to `FPS` by time (nearest earlier frame), small RGB."""
    with av.open(str(path)) as container:
        frames = [
            (float(f.time or 0.0), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)
        ]
    start = frames[0][0]
    times = np.array([t - start for t, _ in frames])
    duration = times[-1] + (times[-1] / max(len(times) - 1, 1) if len(times) > 1 else 0.1)
    picks = np.searchsorted(times, np.arange(0, duration, 1 / FPS), side="right") - 1
    return [frames[max(int(i), 0)][1] for i in picks]


def _fit(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Scaled into WIDTH×HEIGHT keeping its aspect, black bars around (as scopes show)."""
    h, w = image.shape[:2]
    scale = min(WIDTH / w, HEIGHT / h)
    nw, nh = round(w * scale) & ~1, round(h * scale) & ~1
    out = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    y0, x0 = (HEIGHT - nh) // 2, (WIDTH - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out
