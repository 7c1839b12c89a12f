"""The one door every input video goes through: a local file, of a video type, whose demuxer
never opens anything else.

FFmpeg picks a demuxer by what a file *contains*, not by its name, and several demuxers read
other files: an HLS playlist (``.m3u8``, or any file starting ``#EXTM3U``) plays whatever
paths or URLs it lists, the concat demuxer (``ffconcat version 1.0``) joins listed files,
image2 expands ``%d`` patterns, and a path such as ``concat:a|b`` or ``subfile,,…`` picks an
FFmpeg *protocol* that opens other files. Any of them would let a file inside the allowed
folders show a video from outside them, unblurred. So every open of an input — probe, reader,
fast mode, verify's original, inspect, a case merge, the GUI's thumbnails, the live file
source — goes through `open_input`, which

- accepts only the video types the GUI's picker and ``endoveil cases`` list
  (`VIDEO_SUFFIXES`),
- lets FFmpeg use only the ``file`` protocol (no ``concat:``, ``subfile:``, network, …), and
- lets it use only demuxers that read the one file they are given (`INPUT_FORMATS`); a file
  that probes as anything else (a playlist renamed ``.mp4``) is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import av

from endoveil.errors import MediaError

__all__ = ["INPUT_FORMATS", "VIDEO_SUFFIXES", "check_video_suffix", "open_input"]

VIDEO_SUFFIXES: tuple[str, ...] = (
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".avi",
    ".mts",
    ".m2ts",
    ".ts",
    ".mpg",
    ".mpeg",
    ".vob",
    ".webm",
    ".wmv",
    ".h264",
)
"""File types read as video (matched without regard to case); nothing else is opened."""

INPUT_FORMATS: tuple[str, ...] = (
    "mov",  # MP4, M4V, MOV (external data references stay off: see OPEN_OPTIONS)
    "mp4",
    "matroska",  # MKV, WebM
    "webm",
    "avi",
    "mpegts",  # TS, MTS, M2TS
    "mpeg",  # MPG, MPEG, VOB (program stream)
    "asf",  # WMV
    "h264",  # raw Annex B
)
"""FFmpeg demuxers that read only the file they are given (no playlist, concat or pattern)."""

OPEN_OPTIONS: dict[str, str] = {
    "protocol_whitelist": "file",
    "format_whitelist": ",".join(INPUT_FORMATS),
    # The MOV demuxer's defaults already ignore external data references; say so anyway.
    "enable_drefs": "0",
    "use_absolute_path": "0",
}


def check_video_suffix(path: Path | str) -> None:
    """Refuse a file whose name is not one of the video types (`VIDEO_SUFFIXES`).

    Raises:
        MediaError: the type is not one endoveil reads.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        shown = suffix or "a file without an extension"
        raise MediaError(
            f"{shown} is not a video type endoveil reads ({' '.join(VIDEO_SUFFIXES)})",
            path=path,
        )


def open_input(path: Path | str) -> av.container.InputContainer:
    """Open a local video file read-only for demuxing, with one clear error for every way
    that fails (missing, a folder, unreadable, empty, not a video type, a demuxer that could
    read other files).

    Raises:
        MediaError: the file cannot or must not be opened.
    """
    path = Path(path)
    if not path.exists():
        raise MediaError("no such file", path=path)
    if path.is_dir():
        raise MediaError("is a folder, not a video file", path=path)
    check_video_suffix(path)
    if not path.is_file():
        raise MediaError("is not a regular file", path=path)  # a FIFO or device never ends
    if not os.access(path, os.R_OK):
        raise MediaError("cannot read: permission denied", path=path)
    if path.stat().st_size == 0:
        raise MediaError("is empty (0 bytes)", path=path)
    # "file:" makes FFmpeg read the name as a file even if it looks like "concat:…".
    url = "file:" + str(path.absolute())
    try:
        container = av.open(url, mode="r", options=dict(OPEN_OPTIONS), metadata_errors="ignore")
    except av.FFmpegError as exc:
        if _refers_to_other_files(path):
            raise MediaError(
                "is a playlist or file list, which refers to other files: only "
                "self-contained video files are read",
                path=path,
            ) from exc
        raise MediaError(f"not a video FFmpeg can read ({_reason(exc)})", path=path) from exc
    return container


LIST_MAGIC = (b"#EXTM3U", b"ffconcat", b"[playlist]", b"<?xml", b"#EXTINF", b"file ")


def _refers_to_other_files(path: Path) -> bool:
    """Whether a refused file starts like a playlist or concat list (for the message only:
    the refusal itself is FFmpeg's format allow-list)."""
    try:
        with path.open("rb") as f:
            head = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return False
    return head.startswith(LIST_MAGIC)


def _reason(exc: av.FFmpegError) -> str:
    return getattr(exc, "strerror", None) or str(exc)
