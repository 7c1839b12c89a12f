"""How an out-of-body frame is hidden: blur, pixelate or black.

Renderers work on decoded PyAV frames and stay in FFmpeg (swscale), so hiding a 1080p frame
costs about a millisecond. Every renderer keeps at most a few dozen pixels of information per
frame: what it outputs cannot be turned back into a recognisable picture.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

import av
import cv2
import numpy as np
import numpy.typing as npt
from av.video.reformatter import VideoReformatter

__all__ = [
    "ACTIONS",
    "Action",
    "Black",
    "Blur",
    "Pixelate",
    "Renderer",
    "renderer_for",
]

Action = Literal["blur", "pixelate", "black", "cut"]
ACTIONS: tuple[Action, ...] = ("blur", "pixelate", "black", "cut")


class Renderer(ABC):
    """Turns a frame into its anonymized version (same size, yuv420p, same timestamp)."""

    @abstractmethod
    def render(self, frame: av.VideoFrame) -> av.VideoFrame:
        """Return the anonymized frame; the input is not modified."""

    @abstractmethod
    def render_preview(
        self, preview: npt.NDArray[np.uint8], width: int, height: int
    ) -> av.VideoFrame:
        """The anonymized frame drawn from a small RGB preview of the whole picture (any size,
        e.g. the model's input), without decoding the frame itself."""

    @staticmethod
    def _stamp(out: av.VideoFrame, like: av.VideoFrame) -> av.VideoFrame:
        out.pts = like.pts
        if like.time_base is not None:  # a freshly made frame has none
            out.time_base = like.time_base
        return out


class _GridRenderer(Renderer):
    """Average the frame over a coarse grid (in FFmpeg), then scale it back up."""

    upscale: str

    def __init__(self, cells: int) -> None:
        if cells < 1:
            raise ValueError("cells must be >= 1")
        self.cells = cells
        # One scaler per direction, kept across frames: setting one up per frame cost as much
        # as the scaling (the same pixels either way). A renderer serves one thread.
        self._down, self._up, self._up_preview = (VideoReformatter() for _ in range(3))

    def _grid(self, width: int, height: int) -> tuple[int, int]:
        """``cells`` cells across the longer side, as many as fit the other way."""
        if width >= height:
            return self.cells, max(1, round(self.cells * height / width))
        return max(1, round(self.cells * width / height)), self.cells

    def render(self, frame: av.VideoFrame) -> av.VideoFrame:
        w, h = frame.width, frame.height
        gw, gh = self._grid(w, h)
        tiny = self._down.reformat(
            frame, width=gw, height=gh, format="yuv420p", interpolation="AREA"
        )
        out = self._up.reformat(
            tiny, width=w, height=h, format="yuv420p", interpolation=self.upscale
        )
        return self._stamp(out, frame)

    def render_preview(
        self, preview: npt.NDArray[np.uint8], width: int, height: int
    ) -> av.VideoFrame:
        grid = cv2.resize(preview, self._grid(width, height), interpolation=cv2.INTER_AREA)
        tiny = av.VideoFrame.from_ndarray(np.ascontiguousarray(grid), format="rgb24")
        return self._up_preview.reformat(
            tiny, width=width, height=height, format="yuv420p", interpolation=self.upscale
        )


class Blur(_GridRenderer):
    """A blur that keeps only a ``cells``-wide grid of average colours, smoothly upscaled.

    Args:
        cells: grid cells across the longer side (default 12: far too coarse for a face,
            a whiteboard or a screen to be recognisable or reconstructed).
    """

    upscale = "BICUBIC"

    def __init__(self, cells: int = 12) -> None:
        super().__init__(cells)


class Pixelate(_GridRenderer):
    """Large flat blocks (ROBAN's look), ``cells`` blocks across the longer side."""

    upscale = "POINT"

    def __init__(self, cells: int = 16) -> None:
        super().__init__(cells)


class Black(Renderer):
    """A black frame."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def render_preview(
        self, preview: npt.NDArray[np.uint8], width: int, height: int
    ) -> av.VideoFrame:
        return self.render(av.VideoFrame(width, height, "yuv420p"))

    def render(self, frame: av.VideoFrame) -> av.VideoFrame:
        key = (frame.width, frame.height)
        if key not in self._cache:
            planes = np.zeros((frame.height * 3 // 2, frame.width), np.uint8)
            planes[frame.height :] = 128
            self._cache[key] = planes
        out = av.VideoFrame.from_ndarray(self._cache[key], format="yuv420p")
        return self._stamp(out, frame)


def renderer_for(action: Action) -> Renderer | None:
    """The renderer for an action; None for ``cut`` (frames are dropped, not drawn)."""
    if action == "blur":
        return Blur()
    if action == "pixelate":
        return Pixelate()
    if action == "black":
        return Black()
    if action == "cut":
        return None
    raise ValueError(f"unknown action {action!r}; choose one of {ACTIONS}")
