"""Case discovery: one folder per case, natural order, groups, ignored files."""

from __future__ import annotations

from pathlib import Path

import pytest

from endoveil.cases.discover import discover_cases, natural_key


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["VID10.MP4", "VID2.MP4", "VID1.MP4"], ["VID1.MP4", "VID2.MP4", "VID10.MP4"]),
        (["vid10.mp4", "VID9.MP4"], ["VID9.MP4", "vid10.mp4"]),
        (
            ["REC_0010.mts", "REC_0009.mts", "REC_0100.mts"],
            ["REC_0009.mts", "REC_0010.mts", "REC_0100.mts"],
        ),
        (
            ["20240131_101500.mp4", "20240131_094500.mp4", "20240130_235959.mp4"],
            ["20240130_235959.mp4", "20240131_094500.mp4", "20240131_101500.mp4"],
        ),
        (["b 2.mp4", "a 10.mp4", "a 9.mp4"], ["a 9.mp4", "a 10.mp4", "b 2.mp4"]),
        (["Ørsted 2.mp4", "Ørsted 11.mp4"], ["Ørsted 2.mp4", "Ørsted 11.mp4"]),
    ],
)
def test_natural_order(names: list[str], expected: list[str]) -> None:
    assert sorted(names, key=natural_key) == expected


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_each_folder_is_a_case_with_segments_in_natural_order(tmp_path: Path) -> None:
    for name in ("VID10.MP4", "VID2.mp4", "VID1.MP4", "notes.txt", ".VID3.MP4"):
        _touch(tmp_path / "Zoë 10" / name)
    _touch(tmp_path / "Zoë 10" / "DCIM 2" / "VID11.MP4")
    _touch(tmp_path / "Zoë 9" / "a.mkv")
    (tmp_path / "empty").mkdir()
    _touch(tmp_path / "loose.mp4")

    found = discover_cases(tmp_path)

    assert [c.case_id for c in found.cases] == ["Zoë 9", "Zoë 10"]
    case = found.cases[1]
    assert [str(p.relative_to(case.folder)) for p in case.segments] == [
        "DCIM 2/VID11.MP4",
        "VID1.MP4",
        "VID2.mp4",
        "VID10.MP4",
    ]
    ignored = {p.name: why for p, why in found.ignored}
    assert set(ignored) == {"empty", "loose.mp4"}
    assert "group-by" in ignored["loose.mp4"]


def test_group_by_groups_loose_files(tmp_path: Path) -> None:
    for name in ("P001_2.mp4", "P001_10.mp4", "P002_1.mp4", "other.mp4"):
        _touch(tmp_path / name)
    found = discover_cases(tmp_path, group_by=r"^(?P<case>P\d+)_")
    assert [(c.case_id, [p.name for p in c.segments]) for c in found.cases] == [
        ("P001", ["P001_2.mp4", "P001_10.mp4"]),
        ("P002", ["P002_1.mp4"]),
    ]
    assert [p.name for p, _ in found.ignored] == ["other.mp4"]


def test_patterns_choose_segments(tmp_path: Path) -> None:
    _touch(tmp_path / "c" / "a.MP4")
    _touch(tmp_path / "c" / "b.avi")
    found = discover_cases(tmp_path, patterns=["*.mp4"])
    assert [p.name for p in found.cases[0].segments] == ["a.MP4"]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"group_by": "("}, ValueError), ({}, NotADirectoryError)],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, str], error: type[Exception]) -> None:
    root = tmp_path if kwargs else tmp_path / "missing"
    with pytest.raises(error):
        discover_cases(root, **kwargs)  # type: ignore[arg-type]
