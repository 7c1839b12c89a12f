"""Remember that the scope left the body, and hide until it is shown to be back.

In a real extraction the classifier sees the trocar and the seal cap (high scores), then the
near field outside — drapes, gloves, skin — which it often takes for tissue. Hiding only the
frames that score high would show the outside between them. `ExtractionMemory` therefore
works as a latch:

- it **enters** an excursion on a confident out-of-body frame (``p >= threshold``), or on a
  run (``enter_s``) of frames that are odd *for this video* though the classifier calls them
  tissue: they score well above the video's own in-body frames (``enter_factor`` × their
  95th percentile, at least ``enter_floor``) and look unlike them (colour similarity below
  ``enter_similarity``). On a real extraction (../shared/DESIGN.md) the outside frames'
  median score was 24 × that percentile and their colour similarity 0.05 on average. Offline
  dates such an excursion back to the last typical frame before the run (at most
  ``enter_lookback_s``); live hides from the frame that completes it. Only typical frames
  join the reference this route compares with (skin in tissue colours would raise it); as
  that reference differs from the confident route's, `ExtractionGuard` runs both and hides
  when either is away;
- it **leaves** only on positive evidence that the scope is back inside: a sustained run
  (``back_s``) of frames that look like this same video's in-body view from before the
  excursion — the intersection of their hue–saturation histograms with the mean histogram of
  the video's preceding in-body frames (`colour_signatures`; dark border and trocar pixels
  masked) is at least ``back_similarity`` — *and* score near this video's own in-body
  baseline (at most ``colour_factor`` × the 95th percentile of the reference frames'
  scores, and at least ``colour_floor``). On one real extraction the colour measure was
  >= 0.38 for every in-body frame and <= 0.41 (mean 0.05) outside; skin can come close, so
  the scores must agree;
- or a longer run (``score_back_s``) of frames scoring as low as the video's own in-body
  frames (``relative_factor`` × that percentile, at least ``relative_floor``): near-field
  frames the classifier takes for tissue still score well above them (on the real
  extraction, median 1.8e-3 against an in-body 95th percentile of 7.6e-5), and this route
  brings the view back when the anatomy after the excursion no longer looks like the
  reference;
- without such a reference (the video starts outside), it leaves after ``noref_back_s`` of
  in-body scores.

A classifier that wavers mid-excursion cannot end it: low scores alone are no evidence.
The memory is causal, so live uses it as it is; offline post-processing runs it over the
scored frames and then adds its usual gap closing and margins.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, replace

import cv2
import numpy as np
import numpy.typing as npt

__all__ = [
    "HUE_BINS",
    "SATURATION_BINS",
    "SIGNATURE_SIZE",
    "ExtractionGuard",
    "ExtractionMemory",
    "MemoryParams",
    "colour_signatures",
    "excursion_mask",
    "similarity",
]

HUE_BINS = 12
SATURATION_BINS = 4
SIGNATURE_SIZE = HUE_BINS * SATURATION_BINS
# Pixels darker than this (V of HSV, 0..255) are the black border around the scope's field or
# the inside of the trocar: they carry no colour and are left out.
DARK = 40
# A picture with less than this share of lit pixels has no usable signature (all zeros).
MIN_LIT = 0.05


def colour_signatures(images: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Hue–saturation histograms of model-input images [N, S, S, 3] (RGB), as uint8 [N, 48]
    summing to about 255; all zeros where almost nothing is lit.

    Computed on the small image the model already gets, so it costs well under a
    millisecond per frame.
    """
    out = np.zeros((len(images), SIGNATURE_SIZE), np.uint8)
    for n, image in enumerate(images):
        hsv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HSV)
        lit = (hsv[..., 2] >= DARK).astype(np.uint8)
        total = int(lit.sum())
        if total < MIN_LIT * lit.size:
            continue
        hist = cv2.calcHist(
            [hsv], [0, 1], lit, [HUE_BINS, SATURATION_BINS], [0, 180, 0, 256]
        ).reshape(-1)
        out[n] = np.round(hist * (255.0 / total)).clip(0, 255).astype(np.uint8)
    return out


def similarity(
    signature: npt.NDArray[np.floating | np.integer], reference: npt.NDArray[np.floating]
) -> float:
    """Histogram intersection in [0, 1] (0 when either side is empty)."""
    a = np.asarray(signature, np.float64)
    b = np.asarray(reference, np.float64)
    sa, sb = a.sum(), b.sum()
    if sa <= 0 or sb <= 0:
        return 0.0
    return float(np.minimum(a / sa, b / sb).sum())


@dataclass(frozen=True)
class MemoryParams:
    """Settings of the extraction memory.

    Args:
        threshold: a frame scoring at least this starts an excursion.
        low: a frame must score below this to count as in body.
        back_s: how long the evidence of being back must last.
        back_similarity: the colour similarity to the pre-excursion reference a frame needs.
        reference_s: the reference is the mean signature of in-body frames of this many
            seconds before the excursion.
        guard_s: in-body frames this close before the excursion are left out of the
            reference (the scope is already on its way out).
        noref_back_s: without a reference, this long in body ends an excursion.
        colour_factor: with the colour route, a frame may score at most this times the
            reference frames' 95th percentile...
        colour_floor: ...or this, whichever is higher.
        score_back_s: how long the score route must last.
        relative_factor: with the score route, a frame may score at most this times the
            reference frames' 95th percentile...
        relative_floor: ...or this, whichever is higher.
        enter_s: how long a run of odd frames must last to start an excursion without a
            confident frame (0: never).
        enter_factor: an odd frame scores at least this times the 95th percentile of the
            video's in-body frames so far...
        enter_floor: ...and at least this...
        enter_similarity: ...and its colour similarity to them is below this.
        enter_history_s: odd frames count only once this much in-body video was seen
            (and at least ``enter_min_frames`` typical frames).
        enter_min_frames: see ``enter_history_s``.
        enter_lookback_s: offline, an excursion entered by odd frames is dated back to the
            last typical frame, at most this long before the odd run.
        settle_s: frames that score high but look like tissue are kept out of the in-body
            reference for this long, then join it (the view inside may simply have changed).
    """

    threshold: float
    low: float
    back_s: float = 1.5
    back_similarity: float = 0.4
    reference_s: float = 120.0
    guard_s: float = 1.0
    noref_back_s: float = 5.0
    colour_factor: float = 30.0
    colour_floor: float = 1e-3
    score_back_s: float = 5.0
    relative_factor: float = 4.0
    relative_floor: float = 1e-4
    enter_s: float = 0.5
    enter_factor: float = 10.0
    enter_floor: float = 5e-4
    enter_similarity: float = 0.25
    enter_history_s: float = 5.0
    enter_min_frames: int = 10
    enter_lookback_s: float = 5.0
    settle_s: float = 10.0


class ExtractionMemory:
    """Causal latch: ``update`` says whether the frame at time ``t`` is part of an excursion.

    Example:
        >>> tissue = np.zeros(48, np.uint8); tissue[0] = 255
        >>> drape = np.zeros(48, np.uint8); drape[30] = 255
        >>> m = ExtractionMemory(MemoryParams(threshold=0.5, low=0.25, back_s=1.0))
        >>> [m.update(t, p, s) for t, p, s in [(0, 0.0, tissue), (5, 0.0, tissue),
        ...   (6, 0.9, drape), (7, 0.0, drape), (8, 0.0, tissue), (9, 0.0, tissue)]]
        [False, False, True, True, True, False]
    """

    def __init__(self, params: MemoryParams) -> None:
        self.params = params
        self._inside: deque[tuple[float, float, npt.NDArray[np.float64]]] = deque()
        self._reference: npt.NDArray[np.float64] | None = None
        self._baseline = 0.0
        self._back_since: float | None = None
        self._low_since: float | None = None
        self._odd_since: float | None = None
        self._last_odd: float | None = None
        self._atypical_since: float | None = None  # first frame since the last typical one
        # Lit frames scoring high but looking like tissue, kept out of the reference for now.
        self._unsettled: deque[tuple[float, float, npt.NDArray[np.uint8]]] = deque()
        self._inside_sum = np.zeros(SIGNATURE_SIZE, np.float64)
        self._inside_scores: list[float] = []  # the same frames' scores, sorted
        self.away = False
        self.excursions = 0
        # When the current (or last) excursion began: earlier than the frame that started it
        # when a run of odd frames did.
        self.entered_at: float | None = None
        # When the run of evidence that ended the last excursion began (None: no evidence).
        self.returned_at: float | None = None

    def update(
        self, t: float, p_out: float | None, signature: npt.NDArray[np.uint8] | None
    ) -> bool:
        """Feed one scored frame (``p_out`` None: it could not be scored); True while the
        scope is out (or not yet shown to be back)."""
        p = self.params
        unsure = p_out is None or not np.isfinite(p_out)
        if unsure or p_out >= p.threshold:
            if not self.away and not unsure:
                self._start(t)
            self._back_since = self._low_since = None
            if not unsure:
                self._odd_since = self._atypical_since = None
            return self.away
        if not self.away:
            return self._watch(t, p_out, signature)
        looks_back, scores_back = self._evidence(p_out, signature)
        self._back_since = (
            (self._back_since if self._back_since is not None else t) if looks_back else None
        )
        self._low_since = (
            (self._low_since if self._low_since is not None else t) if scores_back else None
        )
        if self._reference is None:
            back = self._back_since is not None and t - self._back_since >= p.noref_back_s
        else:
            back = (self._back_since is not None and t - self._back_since >= p.back_s) or (
                self._low_since is not None and t - self._low_since >= p.score_back_s
            )
        if back:
            self.away = False
            # Offline may un-hide the run that proved the return, but not a run that only
            # waited (no reference): nothing showed those frames to be inside.
            starts = [s for s in (self._back_since, self._low_since) if s is not None]
            has_evidence = self._reference is not None and starts
            self.returned_at = min(starts) if has_evidence else None
            self._back_since = self._low_since = None
        return self.away

    def _watch(self, t: float, p_out: float, signature: npt.NDArray[np.uint8] | None) -> bool:
        """In body so far: remember the frame as this video's inside, or count it as odd."""
        p = self.params
        self._settle(t)
        if self._atypical_since is None:
            self._atypical_since = t  # until this frame proves typical
        lit = signature is not None and bool(signature.any())
        if not lit:
            return False  # dark (the trocar's tube): neither evidence nor reference
        assert signature is not None
        high = self._scores_high(t, p_out)
        if high and self._looks_unlike(signature):
            if self._odd_since is None or t - (self._last_odd or t) > p.enter_s:
                self._odd_since = t  # a new run: a long dark gap broke the last one
            self._last_odd = t
            if t - self._odd_since >= p.enter_s:
                # The excursion began where the typical frames ended (the trocar, skin that
                # shares tissue colours), not only where the odd run did.
                self._start(max(self._atypical_since, self._odd_since - p.enter_lookback_s))
                self._odd_since = self._atypical_since = None
                self._unsettled.clear()
                return True
            return False
        self._odd_since = None
        if p_out >= p.low:
            return False
        # Only typical frames join the reference at once: near-field frames that share tissue
        # colours (skin) must not raise the baseline that odd frames are judged by.
        if high:
            self._unsettled.append((t, p_out, signature))
        else:
            self._remember(t, p_out, signature)
            self._atypical_since = None
        return False

    def _settle(self, t: float) -> None:
        """High-scoring, tissue-like frames that lasted ``settle_s`` without an excursion are
        this video's inside after all."""
        while self._unsettled and self._unsettled[0][0] <= t - self.params.settle_s:
            self._remember(*self._unsettled.popleft())

    def _scores_high(self, t: float, p_out: float) -> bool:
        """Scores well above this video's in-body frames (False until it has a history)."""
        p = self.params
        if (
            p.enter_s <= 0
            or len(self._inside) < p.enter_min_frames
            or t - self._inside[0][0] < p.enter_history_s
        ):
            return False
        return p_out >= max(p.enter_factor * self._inside_p95(), p.enter_floor)

    def _inside_p95(self) -> float:
        """95th percentile of the remembered in-body scores (as `numpy.quantile`)."""
        scores = self._inside_scores
        position = 0.95 * (len(scores) - 1)
        below = int(position)
        above = min(below + 1, len(scores) - 1)
        return scores[below] + (scores[above] - scores[below]) * (position - below)

    def _looks_unlike(self, signature: npt.NDArray[np.uint8]) -> bool:
        reference = self._inside_sum / len(self._inside)
        return similarity(signature, reference) < self.params.enter_similarity

    def _start(self, t: float) -> None:
        self.away = True
        self.entered_at = t
        self.excursions += 1
        old = [(p, s) for ts, p, s in self._inside if ts <= t - self.params.guard_s]
        # A short video may have no in-body frame that old: then the ones it has.
        old = old or [(p, s) for _ts, p, s in self._inside]
        if old:
            self._reference = np.mean([s for _p, s in old], axis=0)
            self._baseline = float(np.quantile([p for p, _s in old], 0.95))
        else:
            self._reference = None

    def _remember(self, t: float, p_out: float, signature: npt.NDArray[np.uint8]) -> None:
        kept = signature.astype(np.float64)
        self._inside.append((t, p_out, kept))
        self._inside_sum += kept
        bisect.insort(self._inside_scores, p_out)
        while self._inside and self._inside[0][0] < t - self.params.reference_s:
            _t, old_p, old_s = self._inside.popleft()
            self._inside_sum -= old_s
            del self._inside_scores[bisect.bisect_left(self._inside_scores, old_p)]

    def _evidence(self, p_out: float, signature: npt.NDArray[np.uint8] | None) -> tuple[bool, bool]:
        """(looks like this video's inside, scores like this video's inside)."""
        p = self.params
        if p_out >= p.low:
            return False, False
        if self._reference is None:
            return True, False
        loose = max(p.colour_factor * self._baseline, p.colour_floor)
        tight = max(p.relative_factor * self._baseline, p.relative_floor)
        looks = (
            p_out <= loose
            and signature is not None
            and similarity(signature, self._reference) >= p.back_similarity
        )
        return looks, p_out <= tight


class ExtractionGuard:
    """Two memories side by side; a frame is away when either says so.

    One enters only on confident frames (as the memory always did); the other may also enter
    on a run of odd frames, and keeps near-field frames out of its reference to see them. The
    second only exists to hide more, and since its reference differs, its exits may too: with
    both, nothing is ever hidden less than by the confident memory alone.
    """

    def __init__(self, params: MemoryParams) -> None:
        self.memories = [ExtractionMemory(each) for each in _side_by_side(params)]

    def update(
        self, t: float, p_out: float | None, signature: npt.NDArray[np.uint8] | None
    ) -> bool:
        """As `ExtractionMemory.update`, for both."""
        return any([memory.update(t, p_out, signature) for memory in self.memories])


def excursion_mask(
    times: npt.NDArray[np.float64],
    p_out: npt.NDArray[np.float32],
    signatures: npt.NDArray[np.uint8],
    params: MemoryParams,
) -> npt.NDArray[np.bool_]:
    """For each scored frame (in time order): is it part of an excursion (for either memory
    of `ExtractionGuard`)?

    Offline can look back: a run of odd frames that started an excursion is part of it, back
    to the last typical frame before it (at most ``enter_lookback_s`` earlier); the frames of
    the run that proved the scope back inside were in body, so they are not (live shows the
    first and hides the second while it waits).
    """
    masks = [_memory_mask(times, p_out, signatures, each) for each in _side_by_side(params)]
    return np.logical_or.reduce(masks)


def _side_by_side(params: MemoryParams) -> list[MemoryParams]:
    """The confident-entry memory's settings, and the odd-run one's where it is on."""
    confident = replace(params, enter_s=0.0)
    return [confident, params] if params.enter_s > 0 else [confident]


def _memory_mask(
    times: npt.NDArray[np.float64],
    p_out: npt.NDArray[np.float32],
    signatures: npt.NDArray[np.uint8],
    params: MemoryParams,
) -> npt.NDArray[np.bool_]:
    memory = ExtractionMemory(params)
    away = np.zeros(len(times), dtype=bool)
    before = np.arange(len(times))
    for k, (t, p, s) in enumerate(zip(times, p_out, signatures, strict=True)):
        was_away = memory.away
        away[k] = memory.update(float(t), float(p), s)
        if not was_away and away[k] and memory.entered_at is not None:
            away[(times >= memory.entered_at) & (before < k)] = True
        if was_away and not away[k] and memory.returned_at is not None:
            away[(times >= memory.returned_at) & (before < k)] = False
    return away
