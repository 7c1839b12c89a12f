"""`Labels`: validation that names the field, slicing, JSON round trip, malformed files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from endoveil.detect.labels import (
    SCHEMA,
    Labels,
    ModelInfo,
    Segment,
    VideoSummary,
    mask_from_segments,
    segments_from_mask,
)
from endoveil.errors import LabelsFormatError

VIDEO = VideoSummary(duration_s=1.0, fps=10.0, frame_count=10, width=64, height=48)
TIMES = np.arange(10) / 10


def make_labels(
    p_out: list[float] | None = None,
    index: list[int] | None = None,
    segments: tuple[Segment, ...] = (),
    **kwargs: Any,
) -> Labels:
    p = [0.1] * 10 if p_out is None else p_out
    idx = list(range(len(p))) if index is None else index
    return Labels(VIDEO, np.asarray(idx), TIMES[: len(idx)], np.asarray(p), segments, **kwargs)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Labels(VIDEO, np.arange(3), np.zeros(2), np.zeros(3)), r"Labels\.time_s .*\(3,\)"),
        (lambda: Labels(VIDEO, np.arange(3), np.zeros(3), np.zeros(4)), r"Labels\.p_out .*\(4,\)"),
        (
            lambda: Labels(VIDEO, np.zeros((1, 3)), np.zeros(3), np.zeros(3)),
            r"Labels\.index .*\(1, 3\)",
        ),
        (lambda: make_labels([0.1, 0.2], index=[3, 3]), r"Labels\.index must be strictly"),
        (lambda: make_labels([0.1, 1.5]), r"Labels\.p_out must lie in \[0, 1\]"),
        (lambda: make_labels([-0.1]), r"Labels\.p_out"),
        (
            lambda: make_labels(segments=(Segment(0, 4, 0, 0.4), Segment(3, 5, 0.3, 0.5))),
            r"Labels\.segments overlap",
        ),
        (lambda: make_labels(segments=(Segment(8, 11, 0.8, 1.1),)), r"Labels\.segments end"),
        (lambda: Segment(4, 4, 0.4, 0.4), r"segment frames .*\[4, 4\)"),
        (lambda: Segment(-1, 4, 0, 0.4), r"segment frames"),
    ],
)
def test_validation_names_the_field(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_valid_labels_and_helpers() -> None:
    seg = (Segment(5, 8, 0.5, 0.8), Segment(1, 3, 0.1, 0.3))
    labels = make_labels(segments=seg, model=ModelInfo("m", "1", "ab"), params={"threshold": 0.5})
    assert [s.start_frame for s in labels.segments] == [1, 5], "segments are sorted"
    assert labels.oob_mask().tolist() == [0, 1, 1, 0, 0, 1, 1, 1, 0, 0]
    assert labels.oob_frame_count == 5
    assert labels.oob_seconds == pytest.approx(0.5)
    assert len(labels) == 10
    sub = labels[2:5]
    assert sub.index.tolist() == [2, 3, 4] and sub.segments == labels.segments
    masked = labels[labels.index % 2 == 0]
    assert masked.index.tolist() == [0, 2, 4, 6, 8]
    assert len(labels) == 10, "slicing returns a new object"
    assert len(Labels.empty(VIDEO)) == 0 and not Labels.empty(VIDEO).oob_mask().any()
    assert labels.with_segments((), margin_s=2.0).params == {"threshold": 0.5, "margin_s": 2.0}
    assert labels != labels.with_segments(())


@pytest.mark.parametrize(
    "mask",
    [[], [0, 0, 0], [1, 1, 1], [1, 0, 1, 1, 0], [0, 1, 1, 0, 0, 1]],
)
def test_segments_and_masks_round_trip(mask: list[int]) -> None:
    m = np.asarray(mask, bool)
    times = np.arange(len(m)) * 0.25
    segments = segments_from_mask(m, times, duration_s=len(m) * 0.25)
    assert np.array_equal(mask_from_segments(segments, len(m)), m)
    if len(m) and m[-1]:
        assert segments[-1].end_s == len(m) * 0.25, "a run to the end ends at the duration"


def test_segments_from_mask_checks_lengths() -> None:
    with pytest.raises(ValueError, match="mask has 2 frames"):
        segments_from_mask(np.ones(2, bool), np.arange(3.0), 3.0)


def test_json_round_trip(tmp_path: Path) -> None:
    labels = make_labels(
        [0.1, 0.9, 0.95, 0.2],
        index=[0, 3, 6, 9],
        segments=(Segment(2, 8, 0.2, 0.8),),
        model=ModelInfo("model", "2", "f" * 64),
        params={"threshold": 0.5, "sample_every": 3},
        extra={"undecodable_frames": 1},
    )
    path = tmp_path / "clip.labels.json"
    labels.save(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["schema"] == SCHEMA
    assert set(doc) == {"schema", "video", "model", "params", "frames", "segments", "extra"}
    assert Labels.load(path) == labels
    assert not list(tmp_path.glob("*.part*"))


def _doc() -> dict[str, Any]:
    return make_labels(segments=(Segment(2, 4, 0.2, 0.4),)).to_dict()


def _set(path: str, value: Any) -> dict[str, Any]:
    doc = _doc()
    *parents, key = path.split(".")
    target: Any = doc
    for p in parents:
        target = target[int(p)] if p.isdigit() else target[p]
    if value is _DELETE:
        del target[key]
    else:
        target[key] = value
    return doc


_DELETE = object()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "must be an object"),
        (json.dumps(_set("schema", "endoveil/labels@9")), "schema 'endoveil/labels@9'"),
        (json.dumps(_set("video", _DELETE)), "video"),
        (json.dumps(_set("video.frame_count", -1)), "video.frame_count"),
        (json.dumps(_set("video.colour", "red")), "video.colour"),
        (json.dumps(_set("frames.p_out", ["high"] * 10)), "frames.p_out.0"),
        (json.dumps(_set("segments.0.end_frame", 0)), "segments.0.end_frame"),
        (json.dumps(_set("segments.0.end_frame", 99)), "Labels.segments end"),
        (json.dumps(_set("frames.index", [0] * 10)), "Labels.index"),
        (json.dumps(_set("surprise", 1)), "surprise"),
    ],
)
def test_malformed_json_raises_labels_format_error(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.labels.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LabelsFormatError, match=message) as info:
        Labels.load(path)
    assert info.value.path == path
    assert "\n" not in str(info.value)


def test_missing_labels_file(tmp_path: Path) -> None:
    with pytest.raises(LabelsFormatError, match="cannot read labels"):
        Labels.load(tmp_path / "none.labels.json")


def test_colour_signatures_round_trip_and_follow_slicing(tmp_path: Path) -> None:
    colour = np.arange(10 * 48, dtype=np.uint8).reshape(10, 48)
    labels = make_labels(colour=colour)
    path = tmp_path / "c.labels.json"
    labels.save(path)
    data = json.loads(path.read_text())
    assert isinstance(data["frames"]["colour"][0], str)  # one compact base64 row per frame
    loaded = Labels.load(path)
    assert loaded == labels
    np.testing.assert_array_equal(loaded.colour, colour)
    np.testing.assert_array_equal(labels[2:4].colour, colour[2:4])
    # Labels without the column are written as before, without a "colour" key.
    make_labels().save(path)
    assert "colour" not in json.loads(path.read_text())["frames"]
    assert Labels.load(path).colour is None


@pytest.mark.parametrize(
    ("rows", "message"),
    [(["not base64!"] * 10, "not base64"), (["AAAA"] * 9 + ["AAAAAAAA"], "different lengths")],
)
def test_malformed_colour_column(rows: list[str], message: str, tmp_path: Path) -> None:
    data = make_labels().to_dict()
    data["frames"]["colour"] = rows
    with pytest.raises(LabelsFormatError, match=message):
        Labels.from_dict(data)


def test_colour_column_must_match_the_frames() -> None:
    with pytest.raises(ValueError, match="colour"):
        make_labels(colour=np.zeros((3, 48), np.uint8))
