"""Temporal post-processing only ever adds out-of-body frames; the live gate fails closed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from endoveil.detect.labels import mask_from_segments
from endoveil.detect.temporal import CausalGate, TemporalParams, fill_scores, postprocess


def _mask(p_out: list[float], times: list[float] | None = None, **params: float) -> list[int]:
    t = np.arange(len(p_out)) * 0.1 if times is None else np.asarray(times)
    duration = float(t[-1] + 0.1) if len(t) else 0.0
    segments = postprocess(
        np.arange(len(p_out)), np.asarray(p_out, np.float32), t, duration, TemporalParams(**params)
    )
    return mask_from_segments(segments, len(p_out)).astype(int).tolist()


@pytest.mark.parametrize(
    ("index", "p_out", "count", "expected"),
    [
        ([0, 4], [0.1, 0.9], 6, [0.1, 0.9, 0.9, 0.9, 0.9, 0.9]),
        ([0, 4], [0.9, 0.1], 6, [0.9, 0.9, 0.9, 0.9, 0.1, 0.1]),
        ([2], [0.3], 4, [0.3, 0.3, 0.3, 0.3]),
        ([0, 1, 2], [0.2, 0.7, 0.4], 3, [0.2, 0.7, 0.4]),
        ([], [], 3, [1.0, 1.0, 1.0]),  # nothing scored: nothing can be shown
    ],
)
def test_fill_takes_the_safer_neighbour(
    index: list[int], p_out: list[float], count: int, expected: list[float]
) -> None:
    filled = fill_scores(np.asarray(index, np.int64), np.asarray(p_out, np.float32), count)
    np.testing.assert_allclose(filled, expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("p_out", "params", "expected"),
    [
        # a run above the low threshold counts only if it reaches the high one
        ([0, 0.3, 0.6, 0.3, 0, 0.3, 0], {}, [0, 1, 1, 1, 0, 0, 0]),
        ([0, 0.3, 0.6, 0.3, 0], {"threshold_low": 0.5}, [0, 0, 1, 0, 0]),
        ([0.49, 0.49, 0.5], {}, [1, 1, 1]),
        ([0.2, 0.2, 0.2], {}, [0, 0, 0]),
    ],
)
def test_hysteresis(p_out: list[float], params: dict[str, float], expected: list[int]) -> None:
    assert _mask(p_out, smoothing_s=0, margin_s=0, **params) == expected


@pytest.mark.parametrize(
    ("smoothing_s", "expected"),
    [
        (0.0, [1, 0, 0, 1, 0, 0, 0, 0, 1]),
        (0.25, [1, 1, 1, 1, 0, 0, 0, 0, 1]),  # the 0.2 s gap closes, the 0.4 s gap does not
        (0.5, [1, 1, 1, 1, 1, 1, 1, 1, 1]),
    ],
)
def test_gap_closing(smoothing_s: float, expected: list[int]) -> None:
    p = [1, 0, 0, 1, 0, 0, 0, 0, 1]
    assert _mask(p, smoothing_s=smoothing_s, margin_s=0) == expected


def test_margin_is_in_seconds_on_a_vfr_timeline() -> None:
    # Frames 0.1 s apart, then 0.5 s apart: a 0.3 s margin covers 3 short or 1 long frame.
    times = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 1.0, 1.5, 2.0]
    p = [0, 0, 0, 0, 0, 1, 0, 0, 0]
    # start: frames from 0.2 on are within 0.3 s (the frame on screen at 0.2 included);
    # end: the segment ends at 1.0, so frames starting before 1.3 are hidden.
    assert _mask(p, times, smoothing_s=0, margin_s=0.3) == [0, 0, 1, 1, 1, 1, 1, 0, 0]


def test_margin_never_cuts_a_frame_short() -> None:
    # The frame on screen when the margin starts is hidden from its start.
    times = [0.0, 0.5, 1.0, 1.5]
    assert _mask([0, 0, 0, 1], times, smoothing_s=0, margin_s=0.7) == [0, 1, 1, 1]


@pytest.mark.parametrize(
    "params",
    [
        {"threshold": 0.0},
        {"threshold": 1.1},
        {"threshold": 0.5, "threshold_low": 0.6},
        {"threshold_low": 0.0},
        {"smoothing_s": -1},
        {"margin_s": -0.1},
    ],
)
def test_params_validation(params: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TemporalParams(**params)


@st.composite
def _scored_videos(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 60))
    steps = draw(st.lists(st.floats(0.01, 0.5), min_size=n, max_size=n))
    times = np.concatenate([[0.0], np.cumsum(steps[:-1])])
    scored = sorted(draw(st.sets(st.integers(0, n - 1), min_size=1)))
    p = draw(st.lists(st.floats(0, 1), min_size=len(scored), max_size=len(scored)))
    return np.asarray(scored, np.int64), np.asarray(p, np.float32), times, np.asarray(steps)


@settings(max_examples=150, deadline=None)
@given(
    video=_scored_videos(),
    threshold=st.floats(0.05, 1.0),
    smoothing=st.floats(0, 2),
    margins=st.tuples(st.floats(0, 2), st.floats(0, 2)).map(sorted),
)
def test_postprocessing_only_adds_out_of_body_frames(
    video: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    threshold: float,
    smoothing: float,
    margins: list[float],
) -> None:
    index, p, times, steps = video
    n = len(times)
    duration = float(times[-1] + steps[-1])
    filled = fill_scores(index, p, n)

    def run(margin: float) -> np.ndarray:
        params = TemporalParams(threshold=threshold, smoothing_s=smoothing, margin_s=margin)
        return mask_from_segments(postprocess(index, p, times, duration, params), n)

    small, large = run(margins[0]), run(margins[1])
    assert small[filled >= threshold].all(), "a frame scoring >= threshold is never un-marked"
    assert not (small & ~large).any(), "a larger margin never shrinks a segment"
    assert not (run(0.0) & ~small).any()
    assert (filled[index] == p).all(), "scored frames keep their score"
    assert (filled >= p.min()).all()


def test_causal_gate_starts_closed_and_holds() -> None:
    gate = CausalGate(TemporalParams(threshold=0.5), hold_s=1.0)
    assert gate.anonymizing
    decisions = [gate.update(t, p) for t, p in [(0.0, 0.0), (0.5, 0.1), (1.0, 0.1), (1.5, 0.1)]]
    assert decisions == [True, True, False, False]


@pytest.mark.parametrize("bad", [None, float("nan"), float("inf"), 0.25, 0.9])
def test_causal_gate_fails_closed(bad: float | None) -> None:
    gate = CausalGate(TemporalParams(threshold=0.5), hold_s=1.0)
    for t in (0.0, 0.5, 1.0):
        gate.update(t, 0.0)
    assert not gate.anonymizing
    assert gate.update(1.1, bad) is True, "unsure, missing or broken scores anonymize"
    assert gate.update(1.2, 0.0) is True, "clearing needs a new hold period"
    assert gate.update(2.1, 0.0) is True
    assert gate.update(2.2, 0.0) is False


def test_causal_gate_fail_forces_anonymization() -> None:
    gate = CausalGate(TemporalParams(), hold_s=0.0)
    assert gate.update(0.0, 0.0) is False
    gate.fail()
    assert gate.anonymizing
    with pytest.raises(ValueError):
        CausalGate(TemporalParams(), hold_s=-1)
