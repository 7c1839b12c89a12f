"""Discovery of labelled data in every supported layout and annotation format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clips import write_clip
from endoveil.errors import EndoveilError, LabelsFormatError
from endoveil.train.data import discover, load_images


def test_videos_with_roban_oobnet_and_interval_annotations(tmp_path: Path) -> None:
    # 10 frames at 10 fps each; frames 5..9 out of body, said three ways.
    a = write_clip(tmp_path / "a.mp4", 10, fps=10, size=(64, 48))
    a.with_name("a_labels.json").write_text(json.dumps({"labels": [0] * 5 + [1] * 5}))
    b = write_clip(tmp_path / "site__b.mp4", 10, fps=10, size=(64, 48))
    rows = "".join(f"{i},{1.0 if i >= 5 else 0.0}\n" for i in range(10))
    b.with_name("site__b.csv").write_text("FRAME_ID,OOB\n" + rows)
    c = write_clip(tmp_path / "c.mp4", 10, fps=10, size=(64, 48))
    c.with_name("c.intervals.csv").write_text("start_s,end_s\n0.5,1.0\n")

    data = discover([tmp_path], frames_per_second=10)
    assert len(data.videos_train) == 3 and not data.val
    for video in (a, b, c):
        labels = [s.label for s in data.train if s.path == video]
        assert labels == [0] * 5 + [1] * 5, video.name
    assert {s.source for s in data.train} == {"a", "site", "c"}
    images = load_images(data.train[:3], max_side=32)
    assert images[0].shape == (24, 32, 3)


def test_dataset_root_keeps_its_splits(tmp_path: Path, tiny_data: Path, tiny_val: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "train").symlink_to(tiny_data)
    (root / "val").symlink_to(tiny_val)
    data = discover([root])
    assert len(data.train) == 16 and len(data.val) == 12
    assert {s.source for s in data.val} == {"in_a", "in_b", "ou_c", "ou_d"}


def test_bad_inputs_are_reported(tmp_path: Path) -> None:
    with pytest.raises(EndoveilError, match="no such file"):
        discover([tmp_path / "missing"])
    with pytest.raises(EndoveilError, match="no labelled data"):
        discover([tmp_path])
    write_clip(tmp_path / "bare.mp4", 3, fps=10, size=(64, 48))
    with pytest.raises(LabelsFormatError, match="no annotation"):
        discover([tmp_path])
