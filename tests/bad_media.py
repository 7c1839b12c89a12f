"""Builders for broken inputs, and checks that a failed run left nothing behind.

`BAD_INPUTS` cannot be anonymized at all: each must end in one clear error naming the file
and the reason. `DAMAGED_INPUTS` can be partly decoded: the run succeeds and every frame that
could not be decoded is hidden.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from clips import write_clip

SIZE = (160, 120)
FRAMES = 75
OOB = range(10, 20)  # bright frames in every clip built here
GOP = {"g": "10"}  # keyframes every 10 frames: decoding recovers after damage


def _oob(i: int) -> bool:
    return i in OOB


def good_clip(path: Path, **kwargs: object) -> Path:
    """3 s, 160x120, frames 10..19 bright (out of body)."""
    return write_clip(path, FRAMES, oob=_oob, size=SIZE, **kwargs)  # type: ignore[arg-type]


def _missing(folder: Path) -> Path:
    return folder / "missing.mp4"


def _directory(folder: Path) -> Path:
    path = folder / "folder.mp4"
    path.mkdir()
    return path


def _empty(folder: Path) -> Path:
    path = folder / "empty.mp4"
    path.write_bytes(b"")
    return path


def _text(folder: Path) -> Path:
    path = folder / "notes.mp4"
    path.write_text("patient notes, not a video\n" * 20, encoding="utf-8")
    return path


def _random_bytes(folder: Path) -> Path:
    path = folder / "noise.avi"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, np.uint8).tobytes())
    return path


def _audio_only(folder: Path) -> Path:
    path = folder / "sound.mp4"  # audio only, under a video name
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=48000)
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 48000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _truncated_mp4_without_index(folder: Path) -> Path:
    """An MP4 whose index (moov, written last) was cut off: nothing can be located."""
    full = good_clip(folder / "full.mp4")
    path = folder / "cut.mp4"
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    full.unlink()
    return path


def _playlist_text(folder: Path) -> str:
    """An HLS playlist listing a real video that lies outside ``folder``."""
    outside = good_clip(folder.parent / f"{folder.name}-outside.mp4")
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\n{outside}\n#EXT-X-ENDLIST\n"


def _playlist(folder: Path) -> Path:
    path = folder / "playlist.m3u8"
    path.write_text(_playlist_text(folder), encoding="utf-8")
    return path


def _playlist_named_mp4(folder: Path) -> Path:
    path = folder / "playlist.mp4"
    path.write_text(_playlist_text(folder), encoding="utf-8")
    return path


def _concat_list(folder: Path) -> Path:
    outside = good_clip(folder.parent / f"{folder.name}-outside.mp4")
    path = folder / "list.mp4"
    path.write_text(f"ffconcat version 1.0\nfile '{outside}'\n", encoding="utf-8")
    return path


def _huge_mjpeg(side: int) -> Callable[[Path], Path]:
    """An MJPEG AVI whose headers (stream and every JPEG) declare ``side``×``side`` frames."""

    def build(folder: Path) -> Path:
        small = write_clip(
            folder / "small.avi", 5, size=(64, 48), codec="mjpeg", pix_fmt="yuvj420p"
        )
        data = bytearray(small.read_bytes())
        small.unlink()
        pos = data.find(b"\xff\xc0")  # each JPEG's start of frame: height, then width
        while pos != -1:
            data[pos + 5 : pos + 9] = side.to_bytes(2, "big") * 2
            pos = data.find(b"\xff\xc0", pos + 2)
        strf = data.find(b"strf")  # the stream's BITMAPINFOHEADER: width, then height
        data[strf + 12 : strf + 20] = side.to_bytes(4, "little") * 2
        path = folder / f"huge{side}.avi"
        path.write_bytes(bytes(data))
        return path

    return build


BAD_INPUTS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing": (_missing, "no such file"),
    "directory": (_directory, "is a folder"),
    "zero-bytes": (_empty, "is empty"),
    "text": (_text, "not a video"),
    "random-bytes": (_random_bytes, "not a video"),
    "no-video-stream": (_audio_only, "has no video stream"),
    "mp4-cut-before-index": (_truncated_mp4_without_index, "not a video"),
    # Files that would make FFmpeg read other files (here: one outside the folder).
    "hls-playlist": (_playlist, "not a video type"),
    "hls-playlist-named-mp4": (_playlist_named_mp4, "refers to other files"),
    "concat-list-named-mp4": (_concat_list, "refers to other files"),
    # Damaged headers declaring absurd sizes: named as the input's fault, not memory's.
    "mjpeg-16000x16000": (_huge_mjpeg(16000), "declares 16000x16000 frames"),
    "mjpeg-65000x65000": (_huge_mjpeg(65000), "declares no usable frame size (0x0)"),
}


def _cut_in_half(source: Path, path: Path) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    source.unlink()
    return path


def _faststart_mp4_cut(folder: Path) -> Path:
    """Index first, so the half that is there can be decoded."""
    full = good_clip(folder / "full.mp4", container_options={"movflags": "+faststart"})
    return _cut_in_half(full, folder / "half.mp4")


def _ts_cut(folder: Path) -> Path:
    return _cut_in_half(good_clip(folder / "full.ts", options=GOP), folder / "half.ts")


def _overwrite_middle(source: Path, path: Path, start: float, length: int) -> Path:
    data = bytearray(source.read_bytes())
    at = int(len(data) * start)
    noise = np.random.default_rng(0).integers(0, 256, length, np.uint8).tobytes()
    data[at : at + length] = noise
    path.write_bytes(bytes(data))
    source.unlink()
    return path


def _h264_corrupt(folder: Path) -> Path:
    full = good_clip(folder / "full.h264", options=GOP)
    return _overwrite_middle(full, folder / "corrupt.h264", 0.5, 3000)


def _ts_corrupt(folder: Path) -> Path:
    full = good_clip(folder / "full.ts", options=GOP)
    return _overwrite_middle(full, folder / "corrupt.ts", 0.5, 4000)


DAMAGED_INPUTS: dict[str, Callable[[Path], Path]] = {
    "mp4-faststart-cut-in-half": _faststart_mp4_cut,
    "ts-cut-in-half": _ts_cut,
    "h264-corrupt-stretch": _h264_corrupt,
    "ts-corrupt-stretch": _ts_corrupt,
}


def fingerprint(path: Path) -> tuple[str, int] | None:
    """(sha256, mtime in ns) of a file; None for anything that is not a file."""
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def leftovers(folder: Path) -> list[str]:
    """Everything in ``folder`` (recursively), as relative names; a failed run leaves none."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
