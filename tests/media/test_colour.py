"""Colour range, matrix, primaries, transfer and bit depth survive anonymization: what a
player shows of an in-body frame is what it showed of the original."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from clips import BRIGHT, textured, write_clip
from endoveil.anonymize.offline import PipelineConfig, run_pipeline
from endoveil.anonymize.verify import verify
from endoveil.detect.classifier import OnnxClassifier

DARK = 40  # shadows are where unconverted full-range levels show most
BT709 = {"x264-params": "colormatrix=bt709:colorprim=bt709:transfer=bt709"}
BT601 = {"x264-params": "colormatrix=smpte170m:colorprim=smpte170m:transfer=smpte170m"}

SOURCES = {
    # name: (suffix, codec, pixel format, encoder options)
    "h264-yuvj420p-full-range": (".mp4", "libx264", "yuvj420p", {}),
    "mjpeg-avi-full-range": (".avi", "mjpeg", "yuvj420p", {}),
    "h264-bt709-limited": (".mp4", "libx264", "yuv420p", BT709),
    "h264-bt601-full-range": (".mkv", "libx264", "yuvj420p", BT601),
    "h264-10-bit": (".mp4", "libx264", "yuv420p10le", BT709),
    "hevc-10-bit": (".mp4", "libx265", "yuv420p10le", {}),
}


def _frames() -> list[np.ndarray]:
    return [textured(BRIGHT if 20 <= i < 30 else DARK, i, (160, 120)) for i in range(40)]


def _shown(path: Path, index: int) -> tuple[float, int, int, int]:
    """Mean RGB of frame ``index`` as a player converts it, and the frame's matrix,
    primaries and transfer."""
    with av.open(str(path)) as container:
        for n, frame in enumerate(container.decode(video=0)):
            if n == index:
                rgb = frame.reformat(
                    format="rgb24", src_color_range=frame.color_range, dst_color_range=2
                ).to_ndarray()
                tags = (int(frame.colorspace), int(frame.color_primaries), int(frame.color_trc))
                return float(rgb.mean()), *tags
    raise AssertionError(f"no frame {index}")


@pytest.mark.parametrize("mode", ["exact", "fast"])
@pytest.mark.parametrize("name", SOURCES)
def test_levels_and_tags_survive(
    name: str, mode: str, classifier: OnnxClassifier, tmp_path: Path
) -> None:
    suffix, codec, pix_fmt, options = SOURCES[name]
    source = write_clip(
        tmp_path / f"{name}{suffix}", _frames(), codec=codec, pix_fmt=pix_fmt, options=options
    )
    out = tmp_path / "out"
    out.mkdir()
    result = run_pipeline(source, out, PipelineConfig(mode=mode, margin_s=0.0), classifier)  # type: ignore[arg-type]
    assert result.video_path is not None
    before, *source_tags = _shown(source, 5)
    after, *output_tags = _shown(result.video_path, 5)
    assert after == pytest.approx(before, abs=1.5), (before, after)
    assert output_tags == source_tags
    report = verify(source, result.video_path, result.labels_paths[0])
    assert report.ok, report.problems
