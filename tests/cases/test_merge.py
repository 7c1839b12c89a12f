"""Merging segments: continuous timeline, no frame lost or doubled at a join, either way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from case_archive import FPS, make_segment
from endoveil.anonymize.verify import frame_similarity
from endoveil.cases.merge import check_segments, merge_segments, plan_merge
from endoveil.errors import MediaError
from endoveil.media.inspect import inspect_file
from endoveil.media.probe import probe
from endoveil.media.reader import FrameReader


def _grey_frames(path: Path) -> list[np.ndarray]:
    with FrameReader(path) as reader:
        frames = []
        for frame in reader:
            assert frame.video_frame is not None, f"frame {frame.index} of {path} undecodable"
            frames.append(frame.video_frame.to_ndarray(format="gray").astype(np.float32))
    return frames


def _assert_continuous(merged: Path, counts: list[int]) -> None:
    info = probe(merged)
    assert info.frame_count == sum(counts), "no frame lost or duplicated"
    steps = np.diff(info.frame_times)
    assert np.allclose(steps, 1 / FPS, atol=1e-3), f"gap or overlap at a join: {steps}"


def test_matching_segments_are_copied_bit_for_bit(tmp_path: Path) -> None:
    # libx264's default preset uses B-frames: reordering must stay valid across the joins.
    paths = [make_segment(tmp_path / f"s{k}.mp4", seed=k, count=20 + 3 * k) for k in range(3)]
    plan = plan_merge(check_segments(paths))
    assert plan.method == "copy", plan.reason
    merged = merge_segments(plan, tmp_path / "merged.mp4")

    _assert_continuous(merged.path, [20, 23, 26])
    assert merged.offsets_s == pytest.approx((0.0, 0.8, 1.72))
    expected = [f for p in paths for f in _grey_frames(p)]
    got = _grey_frames(merged.path)
    assert len(got) == len(expected)
    for n, (a, b) in enumerate(zip(expected, got, strict=True)):
        assert np.array_equal(a, b), f"merged frame {n} differs from its segment's"
    assert not [f for f in inspect_file(merged.path) if f.severity == "identifying"]


@pytest.mark.parametrize(
    ("second", "reason"),
    [
        ({"size": (320, 240)}, "segment 2 is 320x240"),
        ({"codec": "mpeg4"}, "segment 2 is mpeg4"),
    ],
)
def test_mismatched_segments_are_reencoded_in_order(
    tmp_path: Path, second: dict[str, object], reason: str
) -> None:
    first = make_segment(tmp_path / "a.mp4", seed=1, count=20)
    other = make_segment(tmp_path / "b.mp4", seed=2, count=15, **second)
    third = make_segment(tmp_path / "c.mp4", seed=3, count=10)
    plan = plan_merge(check_segments([first, other, third]))
    assert plan.method == "re-encode"
    assert reason in plan.message

    merged = merge_segments(plan, tmp_path / "merged.mp4", crf=12)

    _assert_continuous(merged.path, [20, 15, 10])
    assert probe(merged.path).width == 160
    expected = [f for p in (first, other, third) for f in _grey_frames(p)]
    got = _grey_frames(merged.path)
    for n, (a, b) in enumerate(zip(expected, got, strict=True)):
        corr, psnr, _ = frame_similarity(a, b)
        assert psnr > 28 and corr > 0.8, f"merged frame {n} is not its segment's ({psnr:.1f} dB)"


def test_sound_is_joined_on_the_same_timeline(tmp_path: Path) -> None:
    paths = [make_segment(tmp_path / f"s{k}.mp4", seed=k, count=25, audio=True) for k in range(2)]
    plan = plan_merge(check_segments(paths))
    merged = merge_segments(plan, tmp_path / "merged.mp4", keep_audio=True)
    info = probe(merged.path)
    assert info.has_audio and info.frame_count == 50
    silent = merge_segments(plan, tmp_path / "silent.mp4", keep_audio=False)
    assert not probe(silent.path).has_audio


def test_one_segment_is_used_as_is(tmp_path: Path) -> None:
    path = make_segment(tmp_path / "only.mp4", seed=1, count=10)
    plan = plan_merge(check_segments([path]))
    merged = merge_segments(plan, tmp_path / "pseudonym.mp4")
    assert plan.method == "single" and merged.path.is_symlink()
    assert probe(merged.path).frame_count == 10


def test_corrupt_segment_is_named(tmp_path: Path) -> None:
    good = make_segment(tmp_path / "good.mp4", seed=1, count=10)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(good.read_bytes()[:500])
    with pytest.raises(MediaError) as info:
        check_segments([good, bad])
    assert info.value.path == bad


def test_a_playlist_segment_is_refused(tmp_path: Path) -> None:
    # A case segment that is an HLS playlist (named .mp4) would merge a file from elsewhere.
    good = make_segment(tmp_path / "good.mp4", seed=1, count=10)
    outside = make_segment(tmp_path.parent / f"{tmp_path.name}-outside.mp4", seed=2, count=10)
    playlist = tmp_path / "VID2.mp4"
    playlist.write_text(f"#EXTM3U\n#EXTINF:1,\n{outside}\n#EXT-X-ENDLIST\n", encoding="utf-8")
    with pytest.raises(MediaError) as info:
        check_segments([good, playlist])
    assert info.value.path == playlist and "refers to other files" in info.value.message
