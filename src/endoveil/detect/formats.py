"""Label formats other than endoveil's own: ROBAN JSON, OoBNet CSV and interval CSV.

- ROBAN: ``{"labels": [0/1 per frame], "frames": [0..N-1]}`` (1 = out of body).
- OoBNet: CSV ``FRAME_ID,OOB``, one value per frame (read: a probability, >= 0.5 is out of
  body; written: the final decision, 1.0 or 0.0).
- Interval CSV: ``start_s,end_s``, one out-of-body interval per row, in seconds from the
  video stream's first frame; hand-made annotations use it.

Every reader turns its file into one boolean per frame (True = out of body), so training,
evaluation and review treat all formats alike.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from endoveil.atomic import write_text_atomic
from endoveil.detect.labels import Labels
from endoveil.errors import LabelsFormatError

__all__ = [
    "LABEL_FORMATS",
    "LabelsFormat",
    "find_annotation",
    "labels_text",
    "mask_from_intervals",
    "read_frame_mask",
    "read_intervals_csv",
    "write_labels",
]

LabelsFormat = Literal["endoveil", "roban", "oobnet-csv"]
LABEL_FORMATS: tuple[LabelsFormat, ...] = ("endoveil", "roban", "oobnet-csv")

# Suffixes looked for beside a video, in order of preference.
ANNOTATION_SUFFIXES = (".labels.json", "_labels.json", ".intervals.csv", ".csv")


def write_labels(labels: Labels, path: Path, fmt: LabelsFormat = "endoveil") -> None:
    """Write ``labels`` to ``path`` in the given format, atomically."""
    write_text_atomic(path, labels_text(labels, fmt))


def labels_text(labels: Labels, fmt: LabelsFormat = "endoveil") -> str:
    """``labels`` as the text of a file in the given format."""
    if fmt == "endoveil":
        return json.dumps(labels.to_dict(), indent=1) + "\n"
    if fmt == "roban":
        frames = list(range(labels.video.frame_count))
        doc = {"labels": labels.oob_mask().astype(int).tolist(), "frames": frames}
        return json.dumps(doc) + "\n"
    if fmt == "oobnet-csv":
        return _oobnet_csv(labels)
    raise ValueError(f"unknown labels format {fmt!r}; choose one of {LABEL_FORMATS}")


def _oobnet_csv(labels: Labels) -> str:
    # The OOB column carries the final post-processed decision (1.0 / 0.0) rather than raw
    # scores, so a tool that thresholds OoBNet output at 0.5 sees exactly the padded segments.
    out = io.StringIO()
    out.write("FRAME_ID,OOB\n")
    for i, oob in enumerate(labels.oob_mask().tolist()):
        out.write(f"{i},{1.0 if oob else 0.0:.1f}\n")
    return out.getvalue()


def read_intervals_csv(path: Path) -> list[tuple[float, float]]:
    """Read an interval CSV (header ``start_s,end_s``) into a list of (start, end) seconds."""
    rows = _read_csv(path)
    if not rows or [h.strip() for h in rows[0]] != ["start_s", "end_s"]:
        raise LabelsFormatError("interval CSV must start with the header start_s,end_s", path=path)
    intervals = []
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            start, end = (float(cell) for cell in row)
        except ValueError as exc:
            raise LabelsFormatError(
                f"line {line_no}: expected two numbers, got {row}", path=path
            ) from exc
        if not (math.isfinite(start) and math.isfinite(end)):
            # Dropping the row would un-hide the frames it was meant to hide.
            raise LabelsFormatError(
                f"line {line_no}: start_s and end_s must be finite numbers, got {row}", path=path
            )
        if end < start or start < 0:
            raise LabelsFormatError(f"line {line_no}: need 0 <= start_s <= end_s", path=path)
        intervals.append((start, end))
    return intervals


def mask_from_intervals(
    intervals: list[tuple[float, float]], frame_times: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    """True for every frame whose time lies in some [start, end) interval.

    An interval that ends at the video's duration covers the last frame, since frame times
    are their start times.
    """
    mask = np.zeros(len(frame_times), dtype=bool)
    for start, end in intervals:
        mask |= (frame_times >= start - 1e-6) & (frame_times < end - 1e-6)
    return mask


def read_frame_mask(path: Path, frame_times: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Read any supported annotation file as one boolean per frame (True = out of body).

    Args:
        path: endoveil labels JSON, ROBAN JSON, OoBNet CSV or interval CSV.
        frame_times: the video's frame times in seconds from its first frame.
    """
    path = Path(path)
    n = len(frame_times)
    if path.suffix.lower() == ".json":
        mask = _json_mask(path, n)
    else:
        rows = _read_csv(path)
        header = [h.strip() for h in rows[0]] if rows else []
        if header == ["start_s", "end_s"]:
            mask = mask_from_intervals(read_intervals_csv(path), frame_times)
        elif header == ["FRAME_ID", "OOB"]:
            mask = _oobnet_mask(rows[1:], n, path)
        else:
            raise LabelsFormatError(
                "unknown CSV: expected header start_s,end_s or FRAME_ID,OOB", path=path
            )
    if len(mask) != n:
        raise LabelsFormatError(f"labels cover {len(mask)} frames, the video has {n}", path=path)
    return mask


def find_annotation(video: Path) -> Path | None:
    """The annotation file beside ``video`` (``clip.labels.json``, ``clip.intervals.csv``...)."""
    video = Path(video)
    for suffix in ANNOTATION_SUFFIXES:
        candidate = video.with_name(video.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def _json_mask(path: Path, n: int) -> npt.NDArray[np.bool_]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise LabelsFormatError(f"cannot read JSON labels: {reason}", path=path) from exc
    if isinstance(data, dict) and "schema" in data:
        return Labels.from_dict(data, path=path).oob_mask()
    if isinstance(data, dict) and "labels" in data:
        values, frames = data["labels"], data.get("frames")
        if not isinstance(values, list) or not isinstance(frames, list | None):
            raise LabelsFormatError("ROBAN labels: 'labels' and 'frames' must be lists", path=path)
        frames = list(range(len(values))) if frames is None else frames
        if len(frames) != len(values):
            raise LabelsFormatError(
                "ROBAN labels: 'labels' and 'frames' differ in length", path=path
            )
        mask = np.zeros(max(n, len(values)), dtype=bool)
        try:
            index = np.asarray(frames, dtype=np.int64)
            if np.any(index < 0):  # numpy would count a negative frame from the end
                raise IndexError(f"negative frame number {int(index.min())}")
            scores = np.asarray(values, dtype=float)
            if not np.all(np.isfinite(scores)):  # NaN would count as in body
                raise ValueError("labels must be finite numbers")
            mask[index] = scores >= 0.5
        except (ValueError, IndexError, TypeError) as exc:
            raise LabelsFormatError(f"ROBAN labels: {exc}", path=path) from exc
        return mask
    raise LabelsFormatError("JSON is neither endoveil/labels@1 nor ROBAN labels", path=path)


def _oobnet_mask(rows: list[list[str]], n: int, path: Path) -> npt.NDArray[np.bool_]:
    mask = np.zeros(n, dtype=bool)
    seen = 0
    for line_no, row in enumerate(rows, start=2):
        if not row:
            continue
        try:
            frame, prob = int(row[0]), float(row[1])
        except (ValueError, IndexError) as exc:
            raise LabelsFormatError(f"line {line_no}: expected FRAME_ID,OOB", path=path) from exc
        if not 0 <= frame < n:
            raise LabelsFormatError(f"line {line_no}: frame {frame} outside the video", path=path)
        if not math.isfinite(prob):  # NaN compares as "in body": it would un-hide the frame
            raise LabelsFormatError(f"line {line_no}: OOB must be a finite number", path=path)
        mask[frame] = prob >= 0.5
        seen += 1
    if seen != n:
        raise LabelsFormatError(f"OoBNet CSV has {seen} frames, the video has {n}", path=path)
    return mask


def _read_csv(path: Path) -> list[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelsFormatError(f"cannot read CSV: {exc}", path=path) from exc
