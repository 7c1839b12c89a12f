"""`inspect_file` flags whatever could identify someone; pipeline outputs carry none of it."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import pytest
from typer.testing import CliRunner

from clips import textured, write_clip
from endoveil.anonymize.offline import PipelineConfig, run_pipeline
from endoveil.cli import app
from endoveil.detect.classifier import OnnxClassifier
from endoveil.errors import MediaError
from endoveil.media.inspect import Finding, inspect_file, iter_nal_types
from tamper import add_stream_copy

TAGS = {
    "title": "Jane Doe cholecystectomy",
    "comment": "MRN 0012345",
    "creation_time": "2024-01-02T03:04:05Z",
    "encoder": "OR-Cam 3000 serial 42",
}
FRAMES = 50


def _identifying(findings: list[Finding]) -> list[str]:
    return [f"{f.where}: {f.what}" for f in findings if f.severity == "identifying"]


def _tagged(path: Path, extra: Callable[[av.container.OutputContainer], object]) -> Path:
    """A clip with container tags, a stream tag, whatever ``extra`` adds, and x264's SEI."""
    with av.open(str(path), "w") as container:
        container.metadata.update(TAGS)
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.metadata["handler_name"] = "Dr Smith's camera"
        data_stream = extra(container)
        for i in range(FRAMES):
            level = 200 if 20 <= i < 30 else 60
            image = textured(level, i, (160, 120))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            if i == 0 and data_stream is not None:
                packet = av.Packet(b"\x06\x0e\x2b\x34 patient Jane Doe")
                packet.stream, packet.pts, packet.dts = data_stream, 0, 0
                packet.time_base = Fraction(1, 1000)
                container.mux(packet)
        container.mux(stream.encode(None))
    return path


def _mkv_extras(container: av.container.OutputContainer) -> None:
    container.add_attachment("notes.txt", "text/plain", b"patient Jane Doe, room 4")
    container.set_chapters(
        [
            {
                "id": 1,
                "start": 0,
                "end": 1000,
                "time_base": Fraction(1, 1000),
                "metadata": {"title": "Incision by Dr Smith"},
            }
        ]
    )


SOURCES: dict[str, tuple[str, Callable[[av.container.OutputContainer], object], list[str]]] = {
    "mp4-tags": (
        ".mp4",
        lambda _c: None,
        [
            "container tag: title=Jane Doe",
            "container tag: comment=MRN",
            "creation_time=",
            "encoder=",
            "tag: handler_name=Dr Smith",
            "SEI",
        ],
    ),
    "mkv-attachment-chapter": (
        ".mkv",
        _mkv_extras,
        [
            "title=Jane Doe",
            "chapter: Incision by Dr Smith",
            "(attachment)",
            "filename=notes.txt",
            "SEI",
        ],
    ),
    "ts-data-stream": (
        ".ts",
        lambda c: c.add_data_stream("klv"),
        ["(data): non-audiovisual stream", "SEI"],
    ),
}


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tagged")
    return {
        name: _tagged(folder / f"{name}{suffix}", extra)
        for name, (suffix, extra, _) in SOURCES.items()
    }


@pytest.mark.parametrize("name", SOURCES)
def test_identifying_metadata_is_flagged(name: str, sources: dict[str, Path]) -> None:
    found = _identifying(inspect_file(sources[name]))
    for needle in SOURCES[name][2]:
        assert any(needle in line for line in found), (needle, found)


def test_plain_ffmpeg_output_is_flagged(tmp_path: Path) -> None:
    """What any FFmpeg-made MP4 carries: the muxer's version tag and x264's settings SEI."""
    clip = write_clip(tmp_path / "plain.mp4", 10, size=(160, 120))
    found = _identifying(inspect_file(clip))
    assert any(line.startswith("container tag: encoder=Lavf") for line in found), found
    assert any(line.startswith("stream 0 (video): 1 NAL unit(s) of type 6 (SEI)") for line in found)


def test_audio_is_a_notice(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "sound.mp4", 10, size=(160, 120), audio=True)
    notices = [f for f in inspect_file(clip) if f.severity == "notice"]
    assert [f.where for f in notices] == ["stream 1 (audio)"]


@pytest.mark.parametrize(
    ("data", "length_size", "expected"),
    [
        (b"\x00\x00\x00\x01\x67xx\x00\x00\x01\x06yy\x00\x00\x01\x65zz", None, [7, 6, 5]),
        (b"\x00\x00\x00\x02\x06a\x00\x00\x00\x03\x65bc", 4, [6, 5]),
        (b"\x00\x00\x00\x09\x06a", 4, []),  # a length past the end stops the scan
    ],
)
def test_iter_nal_types(data: bytes, length_size: int | None, expected: list[int]) -> None:
    assert list(iter_nal_types(data, "h264", length_size)) == expected


@pytest.mark.parametrize("action", ["blur", "pixelate", "black", "cut"])
@pytest.mark.parametrize("name", SOURCES)
def test_pipeline_output_is_clean(
    name: str, action: str, sources: dict[str, Path], classifier: OnnxClassifier, tmp_path: Path
) -> None:
    config = PipelineConfig(action=action, margin_s=0.1)  # type: ignore[arg-type]
    result = run_pipeline(sources[name], tmp_path, config, classifier)
    assert result.video_path is not None
    assert inspect_file(result.video_path) == []
    with av.open(str(result.video_path)) as container:
        assert [s.type for s in container.streams] == ["video"]


def test_unreadable_file_raises(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    with pytest.raises(MediaError, match="not a video"):
        inspect_file(junk)


def test_cli_inspect_exit_codes(
    sources: dict[str, Path], classifier: OnnxClassifier, tmp_path: Path
) -> None:
    runner = CliRunner()
    result = run_pipeline(sources["mp4-tags"], tmp_path, PipelineConfig(), classifier)
    clean = str(result.video_path)
    tagged = str(sources["mp4-tags"])
    missing = str(tmp_path / "missing.mp4")

    ok = runner.invoke(app, ["inspect", clean])
    assert ok.exit_code == 0 and "clean" in ok.stdout
    found = runner.invoke(app, ["inspect", clean, tagged])
    assert found.exit_code == 3
    assert "identifying metadata" in found.stdout and "Jane Doe" in found.stdout
    failed = runner.invoke(app, ["inspect", clean, missing])
    assert failed.exit_code == 1
    assert [line for line in failed.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {missing}: no such file"
    ]
    assert "Traceback" not in failed.stderr


def test_cli_inspect_reports_every_file_of_a_mix(sources: dict[str, Path], tmp_path: Path) -> None:
    """An unreadable file must not hide an identifying one: both are reported, exit 3."""
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    tagged = str(sources["mp4-tags"])
    result = CliRunner().invoke(app, ["inspect", str(junk), tagged])
    assert result.exit_code == 3
    assert f"{tagged}: identifying metadata" in result.stdout
    assert "2 files: 1 identifying, 1 unreadable, 0 clean" in result.stdout
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {junk}: not a video FFmpeg can read (Invalid data found when processing input)"
    ]


def test_a_second_video_stream_is_named(tmp_path: Path) -> None:
    first = write_clip(tmp_path / "a.mp4", 10, size=(160, 120))
    second = write_clip(tmp_path / "b.mp4", 10, size=(96, 64))
    both = add_stream_copy(first, tmp_path / "both.mp4", second)
    notices = [str(f) for f in inspect_file(both) if f.severity == "notice"]
    assert notices == [
        "[notice] stream 1 (video): a second video stream: endoveil reads only stream 0, "
        "the first video stream, and writes nothing of this one"
    ]


def test_anonymize_says_which_video_stream_it_used(
    classifier: OnnxClassifier, tmp_path: Path
) -> None:
    first = write_clip(tmp_path / "a.mp4", 10, size=(160, 120))
    second = write_clip(tmp_path / "b.mp4", 10, size=(96, 64))
    both = add_stream_copy(first, tmp_path / "both.mp4", second)
    out = tmp_path / "out"
    out.mkdir()
    result = run_pipeline(both, out, PipelineConfig(), classifier)
    assert result.notes == [
        "the input has 2 video streams: stream 0, the first, was used (endoveil anonymizes "
        "one picture stream); stream(s) 1 are not in the output"
    ]
    assert inspect_file(result.video_path) == []
