"""Probe and reader: an exact frame timeline for every kind of input, and exact mode over it.

Every case decodes fully, in presentation order, with the times its container gives, and then
goes through `run_pipeline` (exact mode, the brightness model) with `verify` passing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from clips import BRIGHT, DARK, textured, write_clip
from endoveil.anonymize.offline import PipelineConfig, run_pipeline
from endoveil.anonymize.verify import verify
from endoveil.detect.classifier import OnnxClassifier
from endoveil.media.inspect import inspect_file
from endoveil.media.probe import probe
from endoveil.media.reader import FrameReader, decoder_cores, decoder_threads, usable_cores

N = 50
OOB = range(20, 35)
SIZE = (160, 120)
VFR_MS = np.cumsum([0] + [80 if i % 3 == 0 else 40 for i in range(N - 1)]).tolist()


def _oob(i: int) -> bool:
    return i in OOB


def _frames(size: tuple[int, int] = SIZE) -> list[npt.NDArray[np.uint8]]:
    return [textured(BRIGHT if _oob(i) else DARK, i, size) for i in range(N)]


def _cfr_times(fps: float = 25) -> npt.NDArray[np.float64]:
    return np.arange(N) / fps


@dataclass(frozen=True)
class Case:
    name: str
    suffix: str
    kwargs: dict[str, object] = field(default_factory=dict)
    size: tuple[int, int] = SIZE
    times: tuple[float, ...] = tuple(_cfr_times())
    codec: str = "h264"
    needs: str = "libx264"


CASES = [
    Case("h264-mp4", ".mp4"),
    Case(
        "vfr-mp4",
        ".mp4",
        {"pts": VFR_MS, "time_base": Fraction(1, 1000)},
        times=tuple(np.asarray(VFR_MS) / 1000),
    ),
    Case(  # the first frame at 1 s: times still count from it
        "offset-mp4",
        ".mp4",
        {"pts": [1000 + 40 * i for i in range(N)], "time_base": Fraction(1, 1000)},
    ),
    Case("mpegts", ".ts"),  # MPEG-TS streams start at 1.4 s
    Case("raw-h264", ".h264"),  # an elementary stream: no timestamps at all
    Case("odd-size", ".mp4", {"pix_fmt": "yuv444p"}, size=(321, 241)),
    Case("10-bit", ".mp4", {"pix_fmt": "yuv420p10le"}),
    Case(
        "hevc",
        ".mp4",
        {"codec": "libx265", "options": {"x265-params": "log-level=error"}},
        codec="hevc",
        needs="libx265",
    ),
    Case("vp9", ".webm", {"codec": "libvpx-vp9"}, codec="vp9", needs="libvpx-vp9"),
    Case(
        "mjpeg-mkv",
        ".mkv",
        {"codec": "mjpeg", "pix_fmt": "yuvj420p"},
        codec="mjpeg",
        needs="mjpeg",
    ),
    Case(
        "mjpeg-avi",
        ".avi",
        {"codec": "mjpeg", "pix_fmt": "yuvj420p"},
        codec="mjpeg",
        needs="mjpeg",
    ),
    Case("mpeg4-avi", ".avi", {"codec": "mpeg4"}, codec="mpeg4", needs="mpeg4"),
]


def _make(case: Case, folder: Path) -> Path:
    if case.needs not in av.codecs_available:
        pytest.skip(f"this PyAV build has no {case.needs} encoder")
    return write_clip(folder / f"{case.name}{case.suffix}", _frames(case.size), **case.kwargs)  # type: ignore[arg-type]


def _psnr(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_timeline_is_exact_and_every_frame_decodes_in_order(case: Case, tmp_path: Path) -> None:
    path = _make(case, tmp_path)
    info = probe(path)

    assert info.codec == case.codec
    assert (info.width, info.height) == case.size
    assert info.frame_count == N
    np.testing.assert_allclose(info.frame_times, case.times, atol=1e-6)
    assert info.frame_times[0] == 0.0
    expected = _frames(case.size)
    with FrameReader(path) as reader:
        frames = list(reader)
    assert [f.index for f in frames] == list(range(N))
    assert all(f.decoded for f in frames)
    assert [f.pts for f in frames] == info.frame_pts.tolist()
    for f in frames[::7]:  # presentation order: frame i shows picture i
        assert f.video_frame is not None
        image = f.video_frame.to_ndarray(format="rgb24")
        closest = max(range(N), key=lambda i: _psnr(image, expected[i]))
        assert closest == f.index, f"frame {f.index} shows picture {closest}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_exact_mode_verifies(case: Case, classifier: OnnxClassifier, tmp_path: Path) -> None:
    path = _make(case, tmp_path)
    result = run_pipeline(path, tmp_path, _config(), classifier)

    assert result.video_path is not None
    mask = result.labels.oob_mask()
    assert mask[list(OOB)].all(), "every truly out-of-body frame is hidden"
    assert not mask[:15].any(), "in-body frames far from the segment stay visible"
    report = verify(path, result.video_path, result.labels)
    assert report.ok, report.problems or report.findings
    out = probe(result.video_path)
    assert (out.codec, out.pix_fmt, out.container) == ("h264", "yuv420p", "mov,mp4,m4a,3gp,3g2,mj2")
    assert (out.width, out.height) == (case.size[0] & ~1, case.size[1] & ~1)
    np.testing.assert_allclose(out.frame_times, case.times, atol=1e-3)
    assert not [f for f in inspect_file(result.video_path) if f.severity == "identifying"]


def _config() -> PipelineConfig:
    return PipelineConfig(margin_s=0.2, smoothing_s=0.2, sample_every=1)


def _rotated_clip(path: Path, degrees: int, size: tuple[int, int]) -> list[npt.NDArray[np.uint8]]:
    frames = _frames(size)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv444p"
        stream.set_display_rotation(degrees)
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return frames


@pytest.mark.parametrize(
    ("degrees", "size"),
    [(90, (160, 120)), (180, (160, 120)), (270, (160, 120)), (-90, (161, 121))],
)
def test_rotation_metadata_gives_upright_output(
    degrees: int, size: tuple[int, int], classifier: OnnxClassifier, tmp_path: Path
) -> None:
    path = tmp_path / f"rot{degrees}.mp4"
    frames = _rotated_clip(path, degrees, size)
    info = probe(path)
    turns = (degrees // 90) % 4
    assert info.rotation == turns * 90
    w, h = size
    assert info.display_size == ((h, w) if turns % 2 else (w, h))

    result = run_pipeline(path, tmp_path, _config(), classifier)
    assert result.video_path is not None
    assert result.labels.oob_mask()[list(OOB)].all()
    assert verify(path, result.video_path, result.labels).ok
    with av.open(str(result.video_path)) as container:
        first = next(container.decode(video=0))
    assert first.rotation == 0, "the output carries no rotation: its pixels are upright"
    image = first.to_ndarray(format="rgb24")
    upright, wrong = np.rot90(frames[0], turns), np.rot90(frames[0], turns + 2)
    oh, ow = image.shape[:2]
    assert (ow, oh) == (info.display_size[0] & ~1, info.display_size[1] & ~1)
    error = np.abs(image.astype(int) - upright[:oh, :ow]).mean()
    error_wrong = np.abs(image.astype(int) - wrong[:oh, :ow]).mean()
    assert error < error_wrong / 2, (error, error_wrong)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_sampled_detection_judges_every_frame(
    case: Case, classifier: OnnxClassifier, tmp_path: Path
) -> None:
    """Sampling may skip pictures on purpose; none of them may count as undecodable."""
    path = _make(case, tmp_path)
    config = PipelineConfig(margin_s=0.2, smoothing_s=0.2, sample_every=4, labels_only=True)
    labels = run_pipeline(path, tmp_path, config, classifier).labels
    assert labels.extra.get("undecodable_frames", 0) == 0
    assert labels.oob_mask()[list(OOB)].all()
    assert not labels.oob_mask()[:12].any()


def test_decoder_threads_by_cores_picture_size_and_seeking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """4 threads a core while decoding runs straight through; fewer where each thread would hold
    large pictures (8K keeps FFmpeg's one more than the cores); FFmpeg's count where every seek
    drains the threads, and one thread on one core."""
    clip = write_clip(tmp_path / "small.mp4", _frames((320, 240)), options={"threads": "1"})
    info = probe(clip)
    assert info.slices_per_picture == 1
    cores = 2
    monkeypatch.setattr("endoveil.media.reader.usable_cores", lambda: cores)
    assert decoder_threads(info) == ("AUTO", 8)
    assert decoder_threads(info, seeking=True) == ("AUTO", 3)
    assert decoder_threads(replace(info, width=3840, height=2160)) == ("AUTO", 7)
    assert decoder_threads(replace(info, width=7680, height=4320)) == ("AUTO", 3)
    cores = 1
    assert decoder_threads(info) == ("AUTO", 1)
    cores = 8
    assert decoder_threads(info) == ("AUTO", 16)


def test_jobs_side_by_side_share_the_decoders_cores(tmp_path: Path) -> None:
    """Parallel cases each grant their decoders a share of the cores, not the whole machine."""
    clip = write_clip(tmp_path / "small.mp4", _frames((320, 240)), options={"threads": "1"})
    info = probe(clip)
    everything = decoder_threads(info)
    with decoder_cores(1):
        assert decoder_threads(info) == ("AUTO", 1)
        with decoder_cores(2):
            assert decoder_threads(info) == ("AUTO", 8)
        assert decoder_threads(info) == ("AUTO", 1)
    with decoder_cores(None):
        assert decoder_threads(info) == everything


def test_a_case_decodes_on_its_share_of_the_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from endoveil.cases import worker
    from endoveil.cases.discover import Case

    seen: list[int] = []
    monkeypatch.setattr(worker, "_run", lambda *_: seen.append(usable_cores()))
    job = worker.CaseJob(
        index=1,
        case=Case("c", tmp_path, ()),
        pseudonym="p",
        output_root=tmp_path,
        work_dir=tmp_path / "work",
        pipeline=PipelineConfig(),
        cores=1,
    )
    assert worker.process_case(job).ok
    assert seen == [1]


def test_a_codec_without_frame_threads_gets_slice_threads(tmp_path: Path) -> None:
    """ "AUTO" lets FFmpeg pick: MPEG-2 has no frame threads, and must not fall back to one."""
    clip = tmp_path / "clip.mpg"
    with av.open(str(clip), "w", format="mpeg") as container:
        stream = container.add_stream("mpeg2video", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for image in _frames((320, 240))[:10]:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    info = probe(clip)
    with FrameReader(clip, info) as reader:
        context = reader._stream.codec_context
        assert sum(f.decoded for f in reader) == info.frame_count
        assert context.thread_count > 1


@pytest.mark.parametrize("slices", [1, 2, 4])
def test_sliced_pictures_decode_with_slice_threads_to_the_same_pixels(
    slices: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hardware and sliced-thread encoders cut pictures into slices: the probe counts them, the
    reader decodes with slice threads where every core gets one slice (no waiting on
    references), else with frame threads, and yields exactly the pictures of a single-threaded
    decode."""
    options = {"x264-params": f"slices={slices}:bframes=2", "threads": "1"}
    clip = write_clip(tmp_path / "sliced.mp4", _frames((320, 240)), options=options)
    info = probe(clip)
    assert info.slices_per_picture == slices
    monkeypatch.setattr("endoveil.media.reader.usable_cores", lambda: 2)
    assert decoder_threads(info) == (("SLICE", 2) if slices == 2 else ("AUTO", 8))
    monkeypatch.setattr("endoveil.media.reader.usable_cores", lambda: 8)
    assert decoder_threads(info) == ("AUTO", 16)  # fewer slices than cores: frame threads
    monkeypatch.setattr("endoveil.media.reader.usable_cores", lambda: 2)
    with FrameReader(clip, info) as threaded, FrameReader(clip, info, threads=False) as single:
        pairs = list(zip(threaded, single, strict=True))
    for a, b in pairs:
        assert a.video_frame is not None and b.video_frame is not None
        assert np.array_equal(a.video_frame.to_ndarray(), b.video_frame.to_ndarray())


def test_both_fields_of_a_picture_are_not_counted_as_slices() -> None:
    """Interlaced recorders may put a picture's two fields in one packet; each field starts
    again at macroblock 0 (``first_mb_in_slice`` 0: the bit after the NAL header is 1)."""
    from endoveil.media.probe import _h264_slice_count

    start = b"\x00\x00\x00\x01"
    first, later = b"\x25\x88\x84", b"\x25\x4c\x84"  # IDR slices at macroblock 0 / 1
    sps = b"\x67\x64\x00\x28"
    assert _h264_slice_count(start + sps + start + first + start + later, None) == 2
    two_fields = start + first + start + later + start + first + start + later
    assert _h264_slice_count(two_fields, None) == 2
    assert _h264_slice_count(start + first + start + first, None) == 1
