"""Frame-level metrics in plain numpy (no torch): ROC, PR, operating point, threshold choice.

Out of body is the positive class: sensitivity is OOB recall, specificity is the share of
in-body frames kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "OperatingPoint",
    "choose_threshold",
    "operating_point",
    "pr_auc",
    "roc_auc",
    "roc_curve",
]

Scores = npt.NDArray[np.floating[Any]]
Truth = npt.NDArray[np.bool_]


def roc_curve(y: Truth, p: Scores) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """False- and true-positive rates at every distinct threshold, from (0,0) to (1,1)."""
    y = np.asarray(y, bool)
    p = np.asarray(p, np.float64)
    order = np.argsort(-p, kind="stable")
    p, y = p[order], y[order]
    distinct = np.r_[np.flatnonzero(np.diff(p)), len(p) - 1]
    tps = np.cumsum(y)[distinct]
    fps = (distinct + 1) - tps
    pos, neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return np.r_[0.0, fps / neg], np.r_[0.0, tps / pos]


def roc_auc(y: Truth, p: Scores) -> float:
    """Area under the ROC curve (ties count one half); NaN when a class is missing."""
    y = np.asarray(y, bool)
    if y.all() or not y.any():
        return float("nan")
    fpr, tpr = roc_curve(y, p)
    return float(np.trapezoid(tpr, fpr))


def pr_auc(y: Truth, p: Scores) -> float:
    """Average precision of the out-of-body class (the step-wise area under the PR curve)."""
    y = np.asarray(y, bool)
    if not y.any():
        return float("nan")
    p = np.asarray(p, np.float64)
    order = np.argsort(-p, kind="stable")
    p, y = p[order], y[order]
    distinct = np.r_[np.flatnonzero(np.diff(p)), len(p) - 1]
    tps = np.cumsum(y)[distinct]
    precision = tps / (distinct + 1)
    recall = tps / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


@dataclass(frozen=True)
class OperatingPoint:
    """Counts and rates at one threshold (a frame is out of body when ``p >= threshold``)."""

    threshold: float
    true_pos: int
    false_neg: int
    true_neg: int
    false_pos: int

    @property
    def sensitivity(self) -> float:
        """OOB recall: out-of-body frames caught."""
        total = self.true_pos + self.false_neg
        return self.true_pos / total if total else float("nan")

    @property
    def specificity(self) -> float:
        """In-body frames kept."""
        total = self.true_neg + self.false_pos
        return self.true_neg / total if total else float("nan")

    def to_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "sensitivity": self.sensitivity, "specificity": self.specificity}


def operating_point(y: Truth, p: Scores, threshold: float) -> OperatingPoint:
    """Confusion counts at ``threshold``."""
    y = np.asarray(y, bool)
    pred = np.asarray(p) >= threshold
    return OperatingPoint(
        threshold=float(threshold),
        true_pos=int((pred & y).sum()),
        false_neg=int((~pred & y).sum()),
        true_neg=int((~pred & ~y).sum()),
        false_pos=int((pred & ~y).sum()),
    )


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


def choose_threshold(
    y: Truth, p: Scores, *, recall_target: float = 0.99, specificity_target: float = 0.95
) -> float:
    """The operating threshold: the centre (in logit space) of the band that meets both targets.

    ``hi`` is the highest threshold whose OOB recall still meets ``recall_target``; ``lo`` the
    lowest whose specificity meets ``specificity_target``. When ``lo <= hi`` every threshold in
    between meets both targets and the centre of the band leaves the most room for frames
    unlike the validation data on both sides. When the targets conflict, recall wins (a leaked
    frame costs more than a blurred one) and ``hi`` is returned.
    """
    y = np.asarray(y, bool)
    p = np.asarray(p, np.float64)
    if not y.any() or y.all():
        raise ValueError("choosing a threshold needs both in-body and out-of-body frames")
    pos = np.sort(p[y])
    neg = np.sort(p[~y])
    # Recall >= target holds for thresholds up to the k-th lowest positive score.
    allowed_misses = int(np.floor((1 - recall_target) * len(pos) + 1e-9))
    hi = float(pos[allowed_misses])
    # Specificity >= target holds for thresholds just above the allowed false positives.
    allowed_fp = int(np.floor((1 - specificity_target) * len(neg) + 1e-9))
    lo_score = float(neg[len(neg) - 1 - allowed_fp])
    lo = float(np.nextafter(lo_score, np.inf))
    if lo > hi:
        return hi
    mid = (_logit(lo) + _logit(hi)) / 2
    return float(np.clip(1 / (1 + np.exp(-mid)), lo, hi))
