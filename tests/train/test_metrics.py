"""Frame metrics on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from endoveil.train.data import Sample, split_by_source
from endoveil.train.evaluate import Scored, VideoResult, excursions, summarize
from endoveil.train.metrics import choose_threshold, operating_point, pr_auc, roc_auc


def test_roc_and_pr_auc_by_hand() -> None:
    y = np.array([0, 0, 1, 1], bool)
    p = np.array([0.1, 0.4, 0.35, 0.8])
    assert roc_auc(y, p) == pytest.approx(0.75)
    # Ranked: 0.8 (OOB), 0.4, 0.35 (OOB), 0.1 -> precision 1 at recall 1/2, 2/3 at recall 1.
    assert pr_auc(y, p) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert roc_auc(y, np.full(4, 0.5)) == pytest.approx(0.5)  # ties count one half
    assert math.isnan(roc_auc(np.ones(3, bool), np.ones(3)))


def test_operating_point_counts() -> None:
    point = operating_point(np.array([1, 1, 0, 0, 0], bool), np.array([0.9, 0.2, 0.6, 0.1, 0]), 0.5)
    assert (point.true_pos, point.false_neg, point.true_neg, point.false_pos) == (1, 1, 2, 1)
    assert point.sensitivity == 0.5 and point.specificity == pytest.approx(2 / 3)


def test_threshold_sits_inside_the_band_that_meets_both_targets() -> None:
    y = np.array([0] * 20 + [1] * 10, bool)
    p = np.r_[np.linspace(0.0, 0.2, 20), np.linspace(0.6, 1.0, 10)]
    t = choose_threshold(y, p)
    assert 0.2 < t <= 0.6
    point = operating_point(y, p, t)
    assert point.sensitivity == 1.0 and point.specificity == 1.0


def test_threshold_favours_recall_when_targets_conflict() -> None:
    y = np.array([0, 0, 1, 1], bool)
    p = np.array([0.9, 0.1, 0.3, 0.8])
    assert choose_threshold(y, p) == pytest.approx(0.3)


def test_summary_counts_leaks_and_losses_per_video() -> None:
    scored = Scored(
        key=["a", "b", "c", "d"],
        source=["s1", "s1", "s2", "s2"],
        truth=[True, False, True, False],
        p_out=[0.9, 0.1, 0.2, 0.3],
    )
    video = VideoResult(
        "v.mp4",
        "s2",
        frames=4,
        oob_frames=2,
        leaked=1,
        lost=1,
        time_s=[0, 1, 2, 3],
        p_out=[0.9, 0.1, 0.2, 0.3],
        truth=[True, True, False, False],
        predicted=[True, False, True, False],
    )
    s = summarize(scored, [video], threshold=0.5)
    assert s["frames"]["sensitivity"] == 0.5 and s["frames"]["specificity"] == 1.0
    assert s["sources"]["s1"]["roc_auc"] == 1.0 and s["sources"]["s2"]["roc_auc"] == 0.0
    assert s["video_totals"] == {
        "videos": 1,
        "frames": 4,
        "oob_frames": 2,
        "leaked": 1,
        "lost": 1,
        "excursions": 0,
        "excursions_hidden": 0,
    }
    assert [m["key"] for m in s["misclassified"]] == ["c"]


def test_split_keeps_sources_whole_and_both_classes_in_train() -> None:
    samples = [
        Sample(f"{g}{i}", label, g, g)
        for g, label in [("a", 0), ("b", 0), ("c", 0), ("d", 1), ("e", 1)]  # type: ignore[arg-type]
        for i in range(5)
    ]
    train, val = split_by_source(samples, 0.3, seed=0)
    assert {s.group for s in train}.isdisjoint({s.group for s in val})
    assert {s.label for s in train} == {0, 1} and {s.label for s in val} == {0, 1}
    assert split_by_source(samples, 0.3, seed=0) == (train, val)


def test_excursions_count_leaks_one_by_one() -> None:
    truth = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0, 1], bool)
    hidden = np.array([0, 1, 1, 1, 1, 0, 1, 0, 0, 1], bool)
    found = excursions(truth, hidden, np.arange(10) / 10)
    assert [(e["start_frame"], e["end_frame"], e["leaked"], e["hidden"]) for e in found] == [
        (1, 4, 0, True),
        (6, 8, 1, False),
        (9, 10, 0, True),
    ]
    assert found[1]["start_s"] == 0.6
    assert excursions(np.zeros(3, bool), np.zeros(3, bool), np.arange(3.0)) == []


def test_summary_reports_excursions_fully_hidden() -> None:
    scored = Scored(key=["a"], source=["s"], truth=[True], p_out=[0.9])
    truth = np.array([1, 1, 0, 1, 1], bool)
    hidden = np.array([1, 1, 0, 1, 0], bool)
    video = VideoResult(
        "v.mp4", "s", 5, 4, 1, 0, [], [], [], [], excursions(truth, hidden, np.arange(5.0))
    )
    s = summarize(scored, [video], threshold=0.5)
    assert s["video_totals"]["excursions"] == 2 and s["video_totals"]["excursions_hidden"] == 1
    assert s["videos"][0]["excursions_hidden"] == 1
    assert [e["leaked"] for e in s["videos"][0]["excursion_details"]] == [0, 1]
