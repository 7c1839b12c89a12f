"""The extraction memory: once the scope is seen leaving, frames stay hidden until there is
positive evidence that it is back inside; a classifier that wavers mid-excursion (drapes,
gloves, skin scored as tissue) cannot un-hide the room. Offline and live (causal)."""

from __future__ import annotations

import numpy as np
import pytest

from endoveil.detect.extraction import (
    SIGNATURE_SIZE,
    ExtractionMemory,
    MemoryParams,
    colour_signatures,
    excursion_mask,
    similarity,
)
from endoveil.detect.labels import mask_from_segments
from endoveil.detect.temporal import CausalGate, TemporalParams, postprocess

FPS = 10
THRESHOLD = 0.5


def _picture(rgb: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 12, (32, 32, 3))
    return np.clip(np.asarray(rgb, float) + noise, 0, 255).astype(np.uint8)


TISSUE = colour_signatures(_picture((190, 70, 60))[None])[0]
OTHER_TISSUE = colour_signatures(_picture((120, 160, 60))[None])[0]  # e.g. ICG-green view
DRAPE = colour_signatures(_picture((50, 90, 180))[None])[0]
SKIN = colour_signatures(_picture((200, 140, 90))[None])[0]
DARK = colour_signatures(np.zeros((1, 32, 32, 3), np.uint8))[0]  # inside the trocar


def _video(
    *parts: tuple[float, list[float], np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate (seconds, repeating score pattern, signature) parts at FPS."""
    p, colour = [], []
    for seconds, pattern, signature in parts:
        n = round(seconds * FPS)
        p += [pattern[i % len(pattern)] for i in range(n)]
        colour += [signature] * n
    times = np.arange(len(p)) / FPS
    return times, np.asarray(p, np.float32), np.asarray(colour, np.uint8)


def _hidden(times: np.ndarray, p: np.ndarray, colour: np.ndarray | None, **kw: float) -> np.ndarray:
    params = TemporalParams(threshold=THRESHOLD, **kw)  # type: ignore[arg-type]
    index = np.arange(len(p))
    duration = float(times[-1] + 1 / FPS)
    segments = postprocess(index, p, times, duration, params, colour)
    return mask_from_segments(segments, len(p))


# The classifier takes the near field for tissue: scores far below the hysteresis floor,
# wavering, yet above this video's own in-body scores (as measured on a real extraction).
WAVERING = [0.003, 0.02, 0.001, 0.2, 0.002, 0.05, 0.0015, 0.004, 0.01, 0.002]


def _extraction(back: np.ndarray = TISSUE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _video(
        (20.0, [0.0001], TISSUE),  # in body: the video's own reference
        (0.6, [0.95], DARK),  # out through the trocar: confident
        (2.0, WAVERING, SKIN),
        (6.0, WAVERING, DRAPE),
        (0.6, [0.95], DARK),  # back in through the trocar
        (10.0, [0.0001], back),
    )


def test_signatures_separate_tissue_from_drapes_and_ignore_the_dark_border() -> None:
    assert TISSUE.shape == (SIGNATURE_SIZE,) and abs(int(TISSUE.sum()) - 255) <= 24
    assert similarity(TISSUE, TISSUE.astype(float)) > 0.95
    assert similarity(DRAPE, TISSUE.astype(float)) < 0.1
    assert not DARK.any()  # a black picture has no colour to compare
    framed = _picture((190, 70, 60))
    yy, xx = np.mgrid[:32, :32]
    framed[(yy - 16) ** 2 + (xx - 16) ** 2 > 12**2] = 0  # round scope field on black
    assert similarity(colour_signatures(framed[None])[0], TISSUE.astype(float)) > 0.8


def test_a_wavering_classifier_does_not_unhide_the_excursion() -> None:
    times, p, colour = _extraction()
    outside = slice(int(20.6 * FPS), int(28.6 * FPS))
    # Without the memory (scores alone), the near field shows between the trocar passages:
    # this is the leak of the real recording.
    assert not _hidden(times, p, None)[outside].all()
    hidden = _hidden(times, p, colour)
    assert hidden[outside].all()
    # ... and the scope's return is found: the in-body end is shown again after the margin.
    assert not hidden[int(31 * FPS) :].any()
    assert not hidden[: int(19 * FPS)].any()


def test_return_needs_positive_evidence() -> None:
    # Back to low scores, but the view never looks like this video's inside and never
    # scores like it: it stays hidden to the end.
    times, p, colour = _video(
        (20.0, [0.0001], TISSUE),
        (0.6, [0.95], DARK),
        (30.0, [0.01, 0.002, 0.03], DRAPE),
    )
    assert _hidden(times, p, colour)[int(20 * FPS) :].all()


def test_return_by_the_videos_own_score_baseline_when_colours_changed() -> None:
    # After the excursion the anatomy looks different (no colour match), but the scores are
    # back at this video's in-body baseline: a longer run brings the view back.
    times, p, colour = _extraction(back=OTHER_TISSUE)
    hidden = _hidden(times, p, colour)
    assert hidden[int(20.6 * FPS) : int(28.6 * FPS)].all()
    assert not hidden[int(36 * FPS) :].any()


def test_a_fully_fooled_classifier_needs_the_longer_score_run() -> None:
    # The drape scores exactly like this video's tissue for 4 s: not enough on scores alone.
    times, p, colour = _video(
        (20.0, [0.0001], TISSUE),
        (0.6, [0.95], DARK),
        (4.0, [0.0001], DRAPE),
        (0.6, [0.95], DARK),
        (10.0, [0.0001], TISSUE),
    )
    hidden = _hidden(times, p, colour)
    assert hidden[int(20 * FPS) : int(25.2 * FPS)].all()
    assert not hidden[int(27.5 * FPS) :].any()


def test_without_a_reference_a_long_in_body_run_is_needed() -> None:
    # The video starts outside: nothing to compare with, so noref_back_s of in-body scores.
    times, p, colour = _video((1.0, [0.9], DRAPE), (12.0, [0.0001], TISSUE))
    hidden = _hidden(times, p, colour, noref_back_s=5.0, margin_s=0.0, smoothing_s=0.0)
    assert hidden[: int(5.9 * FPS)].all()
    assert not hidden[int(6.2 * FPS) :].any()


def test_memory_off_keeps_the_scores_alone() -> None:
    times, p, colour = _extraction()
    np.testing.assert_array_equal(_hidden(times, p, colour, memory=False), _hidden(times, p, None))


def test_memory_only_adds_hidden_frames() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        times, p, colour = _extraction()
        p = np.clip(p + rng.normal(0, 0.2, len(p)).astype(np.float32), 0, 1)
        assert (_hidden(times, p, colour) >= _hidden(times, p, None)).all()


def test_live_gate_stays_closed_through_the_excursion_and_reopens_on_evidence() -> None:
    times, p, colour = _extraction()
    gate = CausalGate(TemporalParams(threshold=THRESHOLD), hold_s=1.0)
    shown = np.array(
        [not gate.update(t, float(q), c) for t, q, c in zip(times, p, colour, strict=True)]
    )
    assert not shown[int(20.6 * FPS) : int(29.2 * FPS)].any()
    assert shown[int(33 * FPS) :].all()
    # Without colour signatures the same gate shows parts of the outside (today's behaviour).
    plain = CausalGate(TemporalParams(threshold=THRESHOLD), hold_s=1.0)
    shown_plain = np.array([not plain.update(t, float(q)) for t, q in zip(times, p, strict=True)])
    assert shown_plain[int(20.6 * FPS) : int(28.6 * FPS)].any()


def test_live_memory_is_causal_and_counts_excursions() -> None:
    times, p, colour = _extraction()
    memory = ExtractionMemory(MemoryParams(threshold=THRESHOLD, low=THRESHOLD / 2))
    away = [memory.update(float(t), float(q), c) for t, q, c in zip(times, p, colour, strict=True)]
    # Causal: it cannot know the scope is back before the evidence has lasted back_s.
    back_in = int(29.2 * FPS)
    assert all(away[int(20 * FPS) : back_in + int(1.5 * FPS)])
    assert not any(away[back_in + int(1.6 * FPS) :])
    assert memory.returned_at == pytest.approx(back_in / FPS)
    assert memory.excursions == 1  # the trocar on the way back is part of the same excursion


@pytest.mark.parametrize("p_out", [None, float("nan")])
def test_an_unscored_frame_never_counts_as_evidence_of_return(p_out: float | None) -> None:
    memory = ExtractionMemory(MemoryParams(threshold=0.5, low=0.25, back_s=0.0))
    for t in range(5):
        memory.update(float(t), 0.0, TISSUE)
    assert memory.update(5.0, 0.9, DARK)
    assert memory.update(6.0, p_out, TISSUE)
    assert not memory.update(7.0, 0.0, TISSUE)


def test_a_short_in_body_start_still_gives_a_reference() -> None:
    # Only 0.4 s in body before the scope leaves (less than guard_s): those frames are the
    # reference, rather than none (which would mean waiting noref_back_s).
    times, p, colour = _video((0.4, [0.0001], TISSUE), (0.4, [0.95], DARK), (4.0, [0.0002], TISSUE))
    memory = ExtractionMemory(MemoryParams(threshold=THRESHOLD, low=THRESHOLD / 2))
    away = [memory.update(float(t), float(q), c) for t, q, c in zip(times, p, colour, strict=True)]
    assert away[5] and not away[-1]


# The classifier never fires: not at the trocar, not outside. The near field still scores
# far above this video's own tissue and looks nothing like it (as measured on a real
# extraction), which is what the odd-run entry reads.
QUIET = [0.003, 0.02, 0.001, 0.01, 0.002, 0.05, 0.0015, 0.004, 0.01, 0.002]


def _quiet_extraction() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _video(
        (20.0, [0.0001], TISSUE),
        (0.6, [0.01], DARK),  # the trocar's tube: dark, unremarkable scores
        (2.0, QUIET, SKIN),
        (6.0, QUIET, DRAPE),
        (0.6, [0.01], DARK),
        (10.0, [0.0001], TISSUE),
    )


def test_an_excursion_the_classifier_never_flags_is_hidden_from_its_first_odd_frame() -> None:
    times, p, colour = _quiet_extraction()
    assert (p < THRESHOLD / 2).all()
    outside = slice(int(20.6 * FPS), int(28.6 * FPS))
    assert not _hidden(times, p, None)[outside].any()  # scores alone: the whole room shows
    hidden = _hidden(times, p, colour)
    assert hidden[outside].all()
    assert not hidden[int(31 * FPS) :].any() and not hidden[: int(19 * FPS)].any()
    # Live (causal) latches once the odd run (the drape, from 22.6 s) has lasted enter_s, and
    # stays closed; what came before it (skin in tissue colours) it could not know.
    gate = CausalGate(TemporalParams(threshold=THRESHOLD), hold_s=1.0)
    shown = np.array(
        [not gate.update(t, float(q), c) for t, q, c in zip(times, p, colour, strict=True)]
    )
    assert not shown[int(23.7 * FPS) : int(29.2 * FPS)].any()
    assert shown[int(33 * FPS) :].all()


@pytest.mark.parametrize(
    ("scores", "signature", "why"),
    [
        ([0.01, 0.03], TISSUE, "scores rise (red-out, smoke) but the view is this video's"),
        ([0.0001, 0.0002], DRAPE, "other colours (ICG, a new organ) scoring like tissue"),
    ],
)
def test_odd_frames_need_both_signals(scores: list[float], signature: np.ndarray, why: str) -> None:
    times, p, colour = _video((20.0, [0.0001], TISSUE), (6.0, scores, signature))
    assert not _hidden(times, p, colour).any(), why


def test_odd_frames_count_only_once_the_video_has_an_in_body_history() -> None:
    # 2 s of tissue (less than enter_history_s) is too little to call anything odd.
    times, p, colour = _video((2.0, [0.0001], TISSUE), (6.0, QUIET, DRAPE))
    assert not _hidden(times, p, colour).any()
    memory = ExtractionMemory(MemoryParams(threshold=THRESHOLD, low=THRESHOLD / 2, enter_s=0))
    times, p, colour = _quiet_extraction()
    away = [memory.update(float(t), float(q), c) for t, q, c in zip(times, p, colour, strict=True)]
    assert not any(away), "enter_s=0 turns the odd-run entry off"


def _memory(**kw: float) -> ExtractionMemory:
    return ExtractionMemory(MemoryParams(threshold=THRESHOLD, low=THRESHOLD / 2, **kw))  # type: ignore[arg-type]


def test_the_odd_run_memory_never_hides_less_than_the_confident_one() -> None:
    """Its reference leaves out high-scoring tissue-like frames, so its baseline (and exits)
    differ; here that alone would have let a drape excursion end at once. The guard hides
    whenever either memory does."""
    times, p, colour = _video(
        (10.0, [1e-5], TISSUE),
        (2.0, [6e-4], TISSUE),
        (10.0, [4.9e-4], TISSUE),
        (1.2, [4e-3], TISSUE),
        (1.2, [0.01], DARK),
        (0.5, [0.95], DARK),
        (10.0, [0.01], DRAPE),
        (10.0, [1e-5], TISSUE),
    )
    confident = MemoryParams(threshold=THRESHOLD, low=THRESHOLD / 2, enter_s=0.0)
    both = MemoryParams(threshold=THRESHOLD, low=THRESHOLD / 2)
    drape = slice(int(25.0 * FPS), int(34.9 * FPS))
    assert excursion_mask(times, p, colour, confident)[drape].all()
    assert excursion_mask(times, p, colour, both)[drape].all()
    rng = np.random.default_rng(11)
    kinds = [TISSUE, OTHER_TISSUE, DRAPE, SKIN, DARK]
    for _ in range(30):
        parts = [
            (float(rng.uniform(0.5, 8)), [float(10 ** rng.uniform(-6, 0))], kinds[rng.integers(5)])
            for _ in range(8)
        ]
        times, p, colour = _video((8.0, [1e-5], TISSUE), *parts)
        assert (
            excursion_mask(times, p, colour, both) >= excursion_mask(times, p, colour, confident)
        ).all()


def test_the_in_body_percentile_follows_a_long_stream() -> None:
    memory = _memory(reference_s=3.0)
    rng = np.random.default_rng(3)
    for k in range(600):
        score = float(np.float32(rng.choice([1e-5, 2e-5, float(rng.uniform(0, 2e-4))])))
        memory.update(k / FPS, score, TISSUE)
        kept = [q for _t, q, _s in memory._inside]
        assert memory._inside_p95() == pytest.approx(np.quantile(kept, 0.95), rel=1e-12)


def test_a_dark_gap_breaks_an_odd_run() -> None:
    # One odd frame, 10 s of dark, one more: not half a second of odd frames.
    times, p, colour = _video(
        (20.0, [0.0001], TISSUE), (0.1, [0.01], DRAPE), (10.0, [0.01], DARK),
        (0.1, [0.01], DRAPE), (10.0, [0.0001], TISSUE),
    )  # fmt: skip
    memory = _memory()
    away = [memory.update(float(t), float(q), c) for t, q, c in zip(times, p, colour, strict=True)]
    assert not any(away)


def test_the_dark_trocar_before_an_odd_run_is_hidden_but_not_a_minute_before_it() -> None:
    times, p, colour = _video(
        (20.0, [0.0001], TISSUE), (1.0, [0.01], DARK), (3.0, QUIET, DRAPE), (10.0, [0.0001], TISSUE)
    )
    away = excursion_mask(times, p, colour, MemoryParams(threshold=THRESHOLD, low=THRESHOLD / 2))
    assert away[int(20.0 * FPS) : int(24.0 * FPS)].all()  # from the trocar's first frame
    assert not away[: int(19.9 * FPS)].any()
    # 60 s of atypical in-body frames (scoring between the floor and the threshold) before
    # the odd run: dated back at most enter_lookback_s.
    times, p, colour = _video((20.0, [0.0001], TISSUE), (60.0, [0.3], TISSUE), (3.0, QUIET, DRAPE))
    away = excursion_mask(times, p, colour, MemoryParams(threshold=THRESHOLD, low=THRESHOLD / 2))
    assert away[int(75.0 * FPS) :].all() and not away[: int(74.9 * FPS)].any()


def test_tissue_that_keeps_scoring_higher_joins_the_reference() -> None:
    # The view inside changes and scores 100x higher for a minute: after settle_s it is this
    # video's inside, so an excursion after it ends when that view comes back.
    times, p, colour = _video(
        (20.0, [1e-5], TISSUE), (60.0, [1e-3, 2e-3], TISSUE), (0.6, [0.95], DARK),
        (5.0, QUIET, DRAPE), (0.6, [0.95], DARK), (20.0, [1e-3, 2e-3], TISSUE),
    )  # fmt: skip
    away = excursion_mask(times, p, colour, MemoryParams(threshold=THRESHOLD, low=THRESHOLD / 2))
    assert away[int(80.6 * FPS) : int(86.2 * FPS)].all()
    assert not away[int(92 * FPS) :].any()
