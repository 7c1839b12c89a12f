"""Colour: every picture endoveil writes is 8-bit limited-range ("TV") yuv420p, converted from
whatever the source is, and tagged with the source's matrix, primaries and transfer.

- **range**: full-range ("PC"/JPEG) sources — MJPEG, H.264 ``yuvj420p``, ``fullrange=on`` —
  are scaled to limited range (16-235), which is what the output is flagged as; copying full
  range levels unconverted darkens shadows and washes out highlights.
- **bit depth**: 10-bit sources are converted to 8 bits by swscale.
- **matrix** (BT.601 / BT.709 / BT.2020...): kept — the Y'CbCr values are not re-matrixed —
  and written into the output's VUI, so players decode them as the source asked; an
  unspecified matrix stays unspecified (players guess the same way for both files).
- **primaries and transfer**: not converted (no tone mapping), only carried over as tags.
"""

from __future__ import annotations

from dataclasses import dataclass

import av

__all__ = ["FULL", "LIMITED", "ColourTags", "is_full_range", "supported_matrix"]

UNSPECIFIED, LIMITED, FULL = 0, 1, 2  # AVColorRange
# Matrices swscale can convert with (AVColorSpace); others fall back to its default (BT.601).
_SWSCALE_MATRICES = frozenset({1, 4, 5, 6, 7, 9, 10})


@dataclass(frozen=True)
class ColourTags:
    """The colour description an output carries (AVColorSpace, primaries, transfer codes)."""

    matrix: int = 2
    primaries: int = 2
    transfer: int = 2

    @classmethod
    def of(cls, source: av.VideoFrame | av.codec.context.CodecContext) -> ColourTags:
        return cls(int(source.colorspace), int(source.color_primaries), int(source.color_trc))

    def apply(self, target: av.VideoFrame | av.codec.context.CodecContext) -> None:
        """Tag ``target`` (an encoder, or a frame about to be encoded) as limited range with
        these matrix, primaries and transfer."""
        target.color_range = LIMITED
        target.colorspace = self.matrix
        target.color_primaries = self.primaries
        target.color_trc = self.transfer


def is_full_range(frame: av.VideoFrame) -> bool:
    """Whether the frame's levels span 0-255 (flagged so, or a ``yuvj`` pixel format)."""
    return int(frame.color_range) == FULL or frame.format.name.startswith("yuvj")


def supported_matrix(frame: av.VideoFrame) -> int | None:
    """The frame's matrix where swscale can use it, else None (swscale's default)."""
    matrix = int(frame.colorspace)
    return matrix if matrix in _SWSCALE_MATRICES else None
