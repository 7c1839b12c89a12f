"""ROBAN JSON, OoBNet CSV and interval CSV: write/read round trips and malformed inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from endoveil.detect.formats import (
    find_annotation,
    mask_from_intervals,
    read_frame_mask,
    read_intervals_csv,
    write_labels,
)
from endoveil.detect.labels import Labels, Segment, VideoSummary
from endoveil.errors import LabelsFormatError

N = 12
TIMES = np.arange(N) * 0.5  # 2 fps
VIDEO = VideoSummary(duration_s=6.0, fps=2.0, frame_count=N, width=64, height=48)


def _labels(*segments: tuple[int, int]) -> Labels:
    segs = tuple(Segment(a, b, TIMES[a], TIMES[b] if b < N else 6.0) for a, b in segments)
    return Labels(VIDEO, np.arange(N), TIMES, np.full(N, 0.2), segs)


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("endoveil", "x.labels.json"), ("roban", "x_labels.json"), ("oobnet-csv", "x.oobnet.csv")],
)
@pytest.mark.parametrize("segments", [(), ((0, 3),), ((2, 5), (9, 12))])
def test_write_then_read_gives_the_same_frames(
    fmt: str, name: str, segments: tuple[tuple[int, int], ...], tmp_path: Path
) -> None:
    labels = _labels(*segments)
    path = tmp_path / name
    write_labels(labels, path, fmt)  # type: ignore[arg-type]
    assert np.array_equal(read_frame_mask(path, TIMES), labels.oob_mask())


def test_roban_and_oobnet_layouts(tmp_path: Path) -> None:
    labels = _labels((2, 4))
    write_labels(labels, tmp_path / "a_labels.json", "roban")
    doc = json.loads((tmp_path / "a_labels.json").read_text(encoding="utf-8"))
    assert doc == {"labels": [0, 0, 1, 1] + [0] * 8, "frames": list(range(N))}
    write_labels(labels, tmp_path / "a.oobnet.csv", "oobnet-csv")
    lines = (tmp_path / "a.oobnet.csv").read_text(encoding="utf-8").splitlines()
    assert lines[:4] == ["FRAME_ID,OOB", "0,0.0", "1,0.0", "2,1.0"]
    assert len(lines) == N + 1


def test_write_labels_rejects_an_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown labels format"):
        write_labels(_labels(), tmp_path / "x", "xml")  # type: ignore[arg-type]


def test_oobnet_probabilities_threshold_at_half(tmp_path: Path) -> None:
    path = tmp_path / "probs.csv"
    rows = "\n".join(f"{i},{p}" for i, p in enumerate([0.1, 0.5, 0.49, 0.99] + [0.0] * 8))
    path.write_text("FRAME_ID,OOB\n" + rows + "\n", encoding="utf-8")
    assert read_frame_mask(path, TIMES)[:4].tolist() == [False, True, False, True]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("start_s,end_s\n", []),
        ("start_s,end_s\n1.0,2.5\n\n4,6\n", [(1.0, 2.5), (4.0, 6.0)]),
        (" start_s , end_s \n0,0.5\n", [(0.0, 0.5)]),
    ],
)
def test_interval_csv_reads(text: str, expected: list[tuple[float, float]], tmp_path: Path) -> None:
    path = tmp_path / "a.intervals.csv"
    path.write_text(text, encoding="utf-8")
    assert read_intervals_csv(path) == expected


def test_intervals_become_frames() -> None:
    mask = mask_from_intervals([(1.0, 2.0), (5.5, 6.0)], TIMES)
    assert np.flatnonzero(mask).tolist() == [2, 3, 11], "end is exclusive; the duration covers"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.csv", "begin,end\n1,2\n", "unknown CSV"),
        ("a.csv", "", "unknown CSV"),
        ("a.intervals.csv", "start_s,end_s\n1,two\n", "line 2: expected two numbers"),
        ("a.intervals.csv", "start_s,end_s\n1,2,3\n", "line 2"),
        ("a.intervals.csv", "start_s,end_s\n3,2\n", "line 2: need 0 <= start_s <= end_s"),
        ("a.intervals.csv", "start_s,end_s\n-1,2\n", "need 0 <= start_s"),
        # A non-finite row must be refused: dropping it would un-hide its frames.
        ("a.intervals.csv", "start_s,end_s\nnan,nan\n", "line 2: .* must be finite"),
        ("a.intervals.csv", "start_s,end_s\n1,2\n0,inf\n", "line 3: .* must be finite"),
        ("a.csv", "FRAME_ID,OOB\n" + "".join(f"{i},nan\n" for i in range(N)), "finite"),
        ("a.json", '{"labels": [NaN], "frames": [0]}', "finite"),
        ("a.csv", "FRAME_ID,OOB\n0,0.1\n", "OoBNet CSV has 1 frames, the video has 12"),
        ("a.csv", "FRAME_ID,OOB\n0,abc\n", "line 2: expected FRAME_ID,OOB"),
        ("a.csv", "FRAME_ID,OOB\n0\n", "line 2: expected FRAME_ID,OOB"),
        ("a.csv", "FRAME_ID,OOB\n12,1\n", "line 2: frame 12 outside the video"),
        ("a.json", "{bad", "cannot read JSON labels"),
        ("a.json", '{"something": 1}', "neither endoveil/labels@1 nor ROBAN"),
        ("a.json", '{"labels": [0, 1], "frames": [0]}', "differ in length"),
        ("a.json", '{"labels": 5}', "must be lists"),
        ("a.json", '{"labels": [0], "frames": 3}', "must be lists"),
        ("a.json", '{"labels": [[0, 1]], "frames": [0]}', "ROBAN labels"),
        ("a.json", '{"labels": [0, 1], "frames": [0, 99]}', "ROBAN labels"),
        ("a.json", '{"labels": [0, 1], "frames": [0, -1]}', "ROBAN labels"),
        ("a.json", '{"labels": ["yes"], "frames": [0]}', "ROBAN labels"),
        ("a.json", json.dumps({"labels": [0] * 13}), "labels cover 13 frames, the video has 12"),
        ("a.json", '{"schema": "endoveil/labels@1"}', "not endoveil/labels@1"),
    ],
)
def test_malformed_annotations(name: str, text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LabelsFormatError, match=message) as info:
        read_frame_mask(path, TIMES)
    assert info.value.path == path


def test_unreadable_csv(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"start_s,end_s\n\xff\xfe,1\n")
    with pytest.raises(LabelsFormatError, match="cannot read CSV"):
        read_frame_mask(path, TIMES)


def test_find_annotation_prefers_endoveil_labels(tmp_path: Path) -> None:
    video = tmp_path / "case.mp4"
    assert find_annotation(video) is None
    (tmp_path / "case.csv").write_text("", encoding="utf-8")
    assert find_annotation(video) == tmp_path / "case.csv"
    (tmp_path / "case.intervals.csv").write_text("", encoding="utf-8")
    assert find_annotation(video) == tmp_path / "case.intervals.csv"
    (tmp_path / "case.labels.json").write_text("", encoding="utf-8")
    assert find_annotation(video) == tmp_path / "case.labels.json"


def test_binary_json_is_a_labels_format_error(tmp_path: Path) -> None:
    path = tmp_path / "upload.json"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(LabelsFormatError, match="not UTF-8 text"):
        read_frame_mask(path, TIMES)
