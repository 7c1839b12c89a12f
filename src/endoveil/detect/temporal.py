"""Temporal post-processing: from per-frame scores to clean, safety-padded OOB segments.

Every step can only add out-of-body frames, never remove them, so post-processing is safe by
construction:

1. **fill**: a frame that was not scored takes the safer (higher) score of its scored
   neighbours;
2. **hysteresis**: a run of frames with ``p >= threshold_low`` is out of body if it holds at
   least one frame with ``p >= threshold``;
3. **smoothing** (two-sided closing): an in-body gap shorter than ``smoothing_s`` between two
   out-of-body runs is closed;
4. **margin**: each segment grows by ``margin_s`` on both sides.

When the scored frames carry colour signatures (``Labels.colour``, computed by the scan), an
**extraction memory** (`endoveil.detect.extraction`) runs before steps 3 and 4: once a frame
scores confidently out of body (or a run of frames is odd for this video: far above its own
in-body scores and unlike its colours), every frame stays hidden until the scope is shown to be back
(in-body scores *and* this video's own in-body colours, sustained), so that a classifier that
takes drapes, gloves or skin for tissue cannot un-hide the middle of an excursion.

Live use cannot look ahead; `CausalGate` is its fail-closed counterpart: it anonymizes from
the start, enters out-of-body on the first suspicious frame, and returns to clear only after
``hold_s`` seconds of confident in-body scores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from endoveil.detect.extraction import ExtractionGuard, MemoryParams, excursion_mask
from endoveil.detect.labels import Segment, segments_from_mask

__all__ = ["CausalGate", "TemporalParams", "fill_scores", "postprocess"]


@dataclass(frozen=True)
class TemporalParams:
    """Post-processing settings; the defaults were chosen on the validation split.

    Args:
        threshold: a frame scoring at least this is out of body.
        threshold_low: hysteresis floor; None means ``threshold / 2``.
        smoothing_s: in-body gaps shorter than this between OOB segments are closed.
        margin_s: padding added before and after every segment.
        memory: use the extraction memory where colour signatures are available.
        back_s: how long the evidence of being back inside must last.
        back_similarity: colour similarity to the video's own pre-excursion in-body view
            that counts as evidence.
        noref_back_s: without an in-body reference (the video starts outside), this long in
            body ends an excursion.
        odd_entry_s: a run of frames this long that score far above the video's own in-body
            frames and look unlike them also starts an excursion (0: only confident frames).
    """

    threshold: float = 0.5
    threshold_low: float | None = None
    smoothing_s: float = 1.0
    margin_s: float = 1.0
    memory: bool = True
    back_s: float = MemoryParams.back_s
    back_similarity: float = MemoryParams.back_similarity
    noref_back_s: float = MemoryParams.noref_back_s
    odd_entry_s: float = MemoryParams.enter_s

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.threshold_low is not None and not 0.0 < self.threshold_low <= self.threshold:
            raise ValueError(f"threshold_low must be in (0, threshold], got {self.threshold_low}")
        if self.smoothing_s < 0 or self.margin_s < 0:
            raise ValueError("smoothing_s and margin_s must be >= 0")
        if self.back_s < 0 or self.noref_back_s < 0 or not 0 <= self.back_similarity <= 1:
            raise ValueError("back_s, noref_back_s must be >= 0 and back_similarity in [0, 1]")
        if self.odd_entry_s < 0:
            raise ValueError("odd_entry_s must be >= 0")

    @property
    def low(self) -> float:
        return self.threshold_low if self.threshold_low is not None else self.threshold / 2

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "threshold_low": self.low}

    def memory_params(self) -> MemoryParams:
        return MemoryParams(
            threshold=self.threshold,
            low=self.low,
            back_s=self.back_s,
            back_similarity=self.back_similarity,
            noref_back_s=self.noref_back_s,
            enter_s=self.odd_entry_s,
        )


def fill_scores(
    index: npt.NDArray[np.int64], p_out: npt.NDArray[np.float32], frame_count: int
) -> npt.NDArray[np.float32]:
    """One score per frame: scored frames keep theirs, the others take the higher neighbour.

    A video with no scored frame at all is out of body throughout (it could not be judged),
    and so is a frame whose score is not a number.
    """
    if len(index) == 0:
        return np.ones(frame_count, dtype=np.float32)
    p_out = np.nan_to_num(np.asarray(p_out, np.float32), nan=1.0, posinf=1.0, neginf=1.0)
    frames = np.arange(frame_count)
    after = np.clip(np.searchsorted(index, frames, side="left"), 0, len(index) - 1)
    before = np.clip(np.searchsorted(index, frames, side="right") - 1, 0, len(index) - 1)
    return np.maximum(p_out[before], p_out[after]).astype(np.float32)


def _hysteresis(p: npt.NDArray[np.float32], high: float, low: float) -> npt.NDArray[np.bool_]:
    candidate = p >= low
    padded = np.concatenate([[False], candidate, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    mask = np.zeros(len(p), dtype=bool)
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        if np.any(p[start:end] >= high):
            mask[start:end] = True
    return mask


def _close_gaps(
    mask: npt.NDArray[np.bool_], times: npt.NDArray[np.float64], max_gap_s: float
) -> npt.NDArray[np.bool_]:
    out = mask.copy()
    oob = np.flatnonzero(mask)
    if len(oob) < 2 or max_gap_s <= 0:
        return out
    gap_starts = np.flatnonzero(np.diff(oob) > 1)
    for g in gap_starts:
        first_in, next_out = oob[g] + 1, oob[g + 1]
        if times[next_out] - times[first_in] < max_gap_s:
            out[first_in:next_out] = True
    return out


def _pad(
    segments: tuple[Segment, ...], times: npt.NDArray[np.float64], margin_s: float
) -> npt.NDArray[np.bool_]:
    mask = np.zeros(len(times), dtype=bool)
    for seg in segments:
        # The frame on screen at (start - margin) is the first to hide; every frame that starts
        # before (end + margin) is hidden too.
        start = max(int(np.searchsorted(times, seg.start_s - margin_s, side="right")) - 1, 0)
        end = int(np.searchsorted(times, seg.end_s + margin_s - 1e-9, side="left"))
        mask[start : max(end, seg.end_frame)] = True
    return mask


def postprocess(
    index: npt.NDArray[np.int64],
    p_out: npt.NDArray[np.float32],
    frame_times: npt.NDArray[np.float64],
    duration_s: float,
    params: TemporalParams,
    colour: npt.NDArray[np.uint8] | None = None,
) -> tuple[Segment, ...]:
    """Turn scores of some frames into the final out-of-body segments of the whole video.

    Args:
        index: indices of the scored frames, increasing.
        p_out: their scores.
        frame_times: the time of every frame of the video (seconds, increasing).
        duration_s: the video's duration.
        params: thresholds, smoothing and margin.
        colour: the scored frames' colour signatures (`colour_signatures`), which turn on
            the extraction memory; None keeps to the scores alone.

    Example:
        >>> times = np.arange(10) / 10
        >>> postprocess(np.arange(10), np.r_[np.zeros(5), np.ones(5)].astype("f4"),
        ...             times, 1.0, TemporalParams(margin_s=0.2))[0].start_frame
        3
    """
    frame_times = np.asarray(frame_times, np.float64)
    p = fill_scores(np.asarray(index, np.int64), np.asarray(p_out, np.float32), len(frame_times))
    mask = _hysteresis(p, params.threshold, params.low)
    if colour is not None and params.memory and len(index):
        mask |= _excursions(np.asarray(index, np.int64), p, frame_times, colour, params)
    mask = _close_gaps(mask, frame_times, params.smoothing_s)
    raw = segments_from_mask(mask, frame_times, duration_s)
    padded = _pad(raw, frame_times, params.margin_s) if params.margin_s > 0 else mask
    # Closing again after padding merges segments whose margins now touch or nearly touch.
    padded = _close_gaps(padded, frame_times, params.smoothing_s)
    return segments_from_mask(padded, frame_times, duration_s)


def _excursions(
    index: npt.NDArray[np.int64],
    p: npt.NDArray[np.float32],
    frame_times: npt.NDArray[np.float64],
    colour: npt.NDArray[np.uint8],
    params: TemporalParams,
) -> npt.NDArray[np.bool_]:
    """Every frame of the video inside an excursion; between two scored frames the safer
    answer wins."""
    away = excursion_mask(frame_times[index], p[index], colour, params.memory_params())
    return fill_scores(index, away.astype(np.float32), len(frame_times)) > 0.5


class CausalGate:
    """Live, fail-closed decision: should the frame at time ``t`` be anonymized?

    It starts anonymized; a frame scoring ``>= low`` (or no score: model slow or failing)
    puts it in out-of-body at once; it returns to clear only after ``hold_s`` seconds in which
    every score was below ``low``. Frames given with a colour signature also feed an
    `ExtractionGuard` (when ``params.memory``): after a confident out-of-body frame, or a run
    of frames odd for this video, the gate stays closed until the memory has seen the scope
    back inside. It can only hide more.

    Example:
        >>> gate = CausalGate(TemporalParams(threshold=0.5), hold_s=1.0)
        >>> [gate.update(t, 0.0) for t in (0.0, 0.5, 1.0)]
        [True, True, False]
    """

    def __init__(self, params: TemporalParams, hold_s: float = 2.0) -> None:
        if hold_s < 0:
            raise ValueError("hold_s must be >= 0")
        self.params = params
        self.hold_s = hold_s
        self._clear_since: float | None = None
        self.anonymizing = True
        self.memory = ExtractionGuard(params.memory_params()) if params.memory else None

    def update(
        self, t: float, p_out: float | None, colour: npt.NDArray[np.uint8] | None = None
    ) -> bool:
        """Feed the score of the frame at time ``t`` (None if it could not be scored) and,
        optionally, its colour signature."""
        away = False
        if self.memory is not None and colour is not None:
            away = self.memory.update(t, p_out, colour)
        if p_out is None or not np.isfinite(p_out) or p_out >= self.params.low or away:
            self.fail()
            return True
        if self._clear_since is None:
            self._clear_since = t
        self.anonymizing = t - self._clear_since < self.hold_s
        return self.anonymizing

    def fail(self) -> None:
        """Force anonymization (source stall, model error); clear needs a new hold period."""
        self._clear_since = None
        self.anonymizing = True
