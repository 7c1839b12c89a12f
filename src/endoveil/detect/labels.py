"""The `Labels` object every stage passes on, and its JSON schema ``endoveil/labels@1``.

`Labels` holds the scored frames in columns (``index``, ``time_s``, ``p_out``) and the final
out-of-body segments after temporal post-processing. Stages return new objects; none mutates
its input.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from endoveil.atomic import write_text_atomic
from endoveil.errors import LabelsFormatError

__all__ = [
    "SCHEMA",
    "Labels",
    "ModelInfo",
    "Segment",
    "VideoSummary",
    "is_reviewed",
    "mark_reviewed",
    "mask_from_segments",
    "segments_from_mask",
]

SCHEMA = "endoveil/labels@1"

REVIEWED = "reviewed"
"""``extra[REVIEWED] is True``: a person reviewed (and may have changed) the segments, so they
may differ from what the scores imply. The GUI's review page writes it (`mark_reviewed`);
`verify` honours it (`is_reviewed`)."""


@dataclass(frozen=True)
class Segment:
    """One out-of-body interval; ``end_frame`` is exclusive and ``end_s`` is its start time."""

    start_frame: int
    end_frame: int
    start_s: float
    end_s: float

    def __post_init__(self) -> None:
        if self.start_frame < 0 or self.end_frame <= self.start_frame:
            raise ValueError(
                f"segment frames must satisfy 0 <= start < end, got "
                f"[{self.start_frame}, {self.end_frame})"
            )

    @property
    def frame_count(self) -> int:
        return self.end_frame - self.start_frame

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class VideoSummary:
    """What the labels need to know of their video."""

    duration_s: float
    fps: float
    frame_count: int
    width: int
    height: int


@dataclass(frozen=True)
class ModelInfo:
    """Which model scored the frames (empty for hand-made or imported labels)."""

    name: str = ""
    version: str = ""
    sha256: str = ""


def _check_column(name: str, values: npt.NDArray[Any], length: int) -> None:
    if values.ndim != 1 or len(values) != length:
        raise ValueError(f"Labels.{name} must have shape ({length},), got {values.shape}")


@dataclass(eq=False)
class Labels:
    """Per-frame out-of-body scores and the segments that follow from them.

    Args:
        video: the labelled video.
        index: indices of the scored frames, strictly increasing.
        time_s: their presentation times in seconds from the stream's first frame.
        p_out: their probability of being out of body, in [0, 1].
        segments: final out-of-body intervals, sorted and disjoint.
        model: the model that scored the frames.
        params: post-processing parameters (threshold, sample_every, smoothing_s, margin_s...).
        extra: anything else worth keeping (output summary, review status).
        colour: optional colour signatures of the scored frames, uint8 [n, k]
            (`endoveil.detect.extraction.colour_signatures`), so that post-processing with
            the extraction memory can be re-run from a labels file. JSON: ``frames.colour``,
            one base64 string per frame.

    Example:
        >>> labels = Labels.empty(VideoSummary(2.0, 25.0, 50, 64, 48))
        >>> len(labels), labels.oob_mask().any()
        (0, np.False_)
    """

    video: VideoSummary
    index: npt.NDArray[np.int64]
    time_s: npt.NDArray[np.float64]
    p_out: npt.NDArray[np.float32]
    segments: tuple[Segment, ...] = ()
    model: ModelInfo = field(default_factory=ModelInfo)
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    colour: npt.NDArray[np.uint8] | None = None

    def __post_init__(self) -> None:
        self.index = np.asarray(self.index, dtype=np.int64)
        self.time_s = np.asarray(self.time_s, dtype=np.float64)
        self.p_out = np.asarray(self.p_out, dtype=np.float32)
        n = len(self.index)
        _check_column("index", self.index, n)
        _check_column("time_s", self.time_s, n)
        _check_column("p_out", self.p_out, n)
        if self.colour is not None:
            self.colour = np.asarray(self.colour, dtype=np.uint8)
            if self.colour.ndim != 2 or len(self.colour) != n:
                raise ValueError(f"Labels.colour must have shape ({n}, k), got {self.colour.shape}")
        if n and np.any(np.diff(self.index) <= 0):
            raise ValueError("Labels.index must be strictly increasing")
        finite = bool(np.all(np.isfinite(self.p_out)))
        if n and not (finite and self.p_out.min() >= 0 and self.p_out.max() <= 1):
            raise ValueError("Labels.p_out must lie in [0, 1] (no NaN)")
        self.segments = tuple(sorted(self.segments, key=lambda s: s.start_frame))
        for a, b in zip(self.segments, self.segments[1:], strict=False):
            if b.start_frame < a.end_frame:
                raise ValueError(f"Labels.segments overlap: {a} and {b}")
        if self.segments and self.segments[-1].end_frame > self.video.frame_count:
            raise ValueError(
                f"Labels.segments end at frame {self.segments[-1].end_frame}, "
                f"past the video's {self.video.frame_count} frames"
            )

    @classmethod
    def empty(cls, video: VideoSummary) -> Labels:
        """Labels with no scored frame and no segment."""
        return cls(video, np.empty(0, np.int64), np.empty(0), np.empty(0, np.float32))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key: slice | npt.NDArray[np.bool_] | Sequence[int]) -> Labels:
        """The scored frames selected by a slice, mask or index list; segments are kept."""
        colour = self.colour[key] if self.colour is not None else None
        return replace(
            self,
            index=self.index[key],
            time_s=self.time_s[key],
            p_out=self.p_out[key],
            colour=colour,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Labels):
            return NotImplemented
        return (
            self.video == other.video
            and np.array_equal(self.index, other.index)
            and np.allclose(self.time_s, other.time_s)
            and np.allclose(self.p_out, other.p_out, equal_nan=True)
            and self.segments == other.segments
            and self.model == other.model
            and self.params == other.params
            and self.extra == other.extra
            and (
                np.array_equal(self.colour, other.colour)
                if self.colour is not None and other.colour is not None
                else self.colour is None and other.colour is None
            )
        )

    __hash__ = None  # type: ignore[assignment]

    def with_segments(self, segments: Iterable[Segment], **params: Any) -> Labels:
        """A copy with new segments and, optionally, updated params."""
        return replace(self, segments=tuple(segments), params={**self.params, **params})

    def with_review(
        self,
        changes: Labels | Iterable[Segment | tuple[int, int]] | npt.NDArray[np.bool_],
        *,
        frame_times: npt.NDArray[np.float64] | None = None,
        reviewed_at: str | None = None,
    ) -> Labels:
        """A copy whose segments are a reviewer's, marked as reviewed; the scores are kept.

        Args:
            changes: the reviewed out-of-body frames: other labels of the same video (e.g.
                edited in another tool), segments or ``(start_frame, end_frame)`` pairs (end
                exclusive; overlapping ones are joined), or one boolean per frame.
            frame_times: the video's frame times (``probe(video).frame_times``) to time the
                segments; None assumes the constant rate ``video.fps``.
            reviewed_at: when (ISO 8601); recorded in ``extra``.

        Example:
            >>> labels = Labels.empty(VideoSummary(2.0, 25.0, 50, 64, 48))
            >>> reviewed = labels.with_review([(10, 20), (15, 30)])
            >>> reviewed.intervals_frames(), reviewed.extra["reviewed"]
            ([(10, 30)], True)
        """
        count = self.video.frame_count
        if isinstance(changes, Labels):
            if changes.video.frame_count != count:
                raise ValueError(
                    f"reviewed labels cover {changes.video.frame_count} frames, not {count}"
                )
            mask = changes.oob_mask()
        elif isinstance(changes, np.ndarray):
            mask = np.asarray(changes, bool)
            if mask.shape != (count,):
                raise ValueError(f"mask must have shape ({count},), got {mask.shape}")
        else:
            mask = np.zeros(count, bool)
            for change in changes:
                start, end = (
                    (change.start_frame, change.end_frame)
                    if isinstance(change, Segment)
                    else change
                )
                if not 0 <= start < end <= count:
                    raise ValueError(f"segment [{start}, {end}) is not inside 0..{count}")
                mask[start:end] = True
        times = self._frame_times() if frame_times is None else np.asarray(frame_times)
        extra = {**self.extra, REVIEWED: True, "detected_segments": len(self.segments)}
        if reviewed_at is not None:
            extra["reviewed_at"] = reviewed_at
        segments = segments_from_mask(mask, times, self.video.duration_s)
        return replace(self, segments=segments, extra=extra)

    def _frame_times(self) -> npt.NDArray[np.float64]:
        fps = self.video.fps
        if fps <= 0:
            raise ValueError("the video has no frame rate: pass frame_times")
        return np.arange(self.video.frame_count, dtype=np.float64) / fps

    def oob_mask(self) -> npt.NDArray[np.bool_]:
        """One boolean per frame of the video: True where the frame is out of body."""
        return mask_from_segments(self.segments, self.video.frame_count)

    def intervals_s(self) -> list[tuple[float, float]]:
        """The out-of-body segments as ``(start_s, end_s)`` in seconds from the first frame."""
        return [(s.start_s, s.end_s) for s in self.segments]

    def intervals_frames(self) -> list[tuple[int, int]]:
        """The out-of-body segments as ``(start_frame, end_frame)``, end exclusive."""
        return [(s.start_frame, s.end_frame) for s in self.segments]

    @property
    def oob_frame_count(self) -> int:
        return sum(s.frame_count for s in self.segments)

    @property
    def oob_seconds(self) -> float:
        return sum(s.duration_s for s in self.segments)

    # JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        doc = _LabelsDoc(
            schema=SCHEMA,
            video=_VideoDoc(**self.video.__dict__),
            model=_ModelDoc(**self.model.__dict__),
            params=self.params,
            frames=_FramesDoc(
                index=self.index.tolist(),
                time_s=[round(t, 6) for t in self.time_s.tolist()],
                p_out=[round(p, 5) for p in self.p_out.tolist()],
                colour=(
                    [base64.b64encode(row.tobytes()).decode("ascii") for row in self.colour]
                    if self.colour is not None
                    else None
                ),
            ),
            segments=[_SegmentDoc(**s.__dict__) for s in self.segments],
            extra=self.extra,
        )
        out = doc.model_dump(mode="json", by_alias=True)
        if self.colour is None:
            del out["frames"]["colour"]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, path: Path | None = None) -> Labels:
        try:
            doc = _LabelsDoc.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise LabelsFormatError(f"not {SCHEMA}: {where}: {first['msg']}", path=path) from exc
        if doc.schema_ != SCHEMA:
            raise LabelsFormatError(f"schema {doc.schema_!r} is not {SCHEMA!r}", path=path)
        try:
            return cls(
                video=VideoSummary(**doc.video.model_dump()),
                index=np.asarray(doc.frames.index, np.int64),
                time_s=np.asarray(doc.frames.time_s, np.float64),
                p_out=np.asarray(doc.frames.p_out, np.float32),
                segments=tuple(Segment(**s.model_dump()) for s in doc.segments),
                model=ModelInfo(**doc.model.model_dump()),
                params=dict(doc.params),
                extra=dict(doc.extra),
                colour=_decode_colour(doc.frames.colour, path),
            )
        except ValueError as exc:
            raise LabelsFormatError(str(exc), path=path) from exc

    def save(self, path: Path | str, format: str = "endoveil") -> None:
        """Write the labels atomically (temporary file, then rename).

        Args:
            path: the file.
            format: ``endoveil`` (this JSON, everything kept), ``roban`` (ROBAN JSON, one 0/1
                per frame) or ``oobnet-csv`` (``FRAME_ID,OOB``); the last two keep only the
                final per-frame decision.
        """
        if format == "endoveil":
            write_text_atomic(Path(path), json.dumps(self.to_dict(), indent=1) + "\n")
            return
        from endoveil.detect.formats import write_labels  # formats builds on this module

        write_labels(self, Path(path), format)  # type: ignore[arg-type]

    @classmethod
    def load(
        cls,
        path: Path | str,
        *,
        video: VideoSummary | None = None,
        frame_times: npt.NDArray[np.float64] | None = None,
    ) -> Labels:
        """Read labels in any supported format.

        An endoveil JSON is read whole. ROBAN JSON, OoBNet CSV and interval CSV
        (``start_s,end_s``) only give out-of-body frames, so they need the video they label:
        ``video`` (its summary, e.g. ``endoveil.detect_oob(...).video`` or
        ``video_summary(path)``), and ``frame_times`` for exact times (else the constant rate
        ``video.fps`` is assumed).

        Raises:
            LabelsFormatError: the file is unreadable or malformed, or it is not an endoveil
                JSON and ``video`` is not given.
        """
        path = Path(path)
        if not _is_endoveil_json(path):
            if video is None:
                raise LabelsFormatError(
                    "not endoveil/labels@1: give the video to read this format", path=path
                )
            from endoveil.detect.formats import read_frame_mask  # formats builds on this module

            empty = cls.empty(video)
            times = empty._frame_times() if frame_times is None else np.asarray(frame_times)
            mask = read_frame_mask(path, times)
            return replace(empty, segments=segments_from_mask(mask, times, video.duration_s))
        return cls._load_json(path)

    @classmethod
    def _load_json(cls, path: Path) -> Labels:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise LabelsFormatError(f"cannot read labels: {exc.strerror}", path=path) from exc
        except json.JSONDecodeError as exc:
            raise LabelsFormatError(f"not JSON: {exc.msg} at line {exc.lineno}", path=path) from exc
        if not isinstance(data, dict):
            raise LabelsFormatError("labels JSON must be an object", path=path)
        return cls.from_dict(data, path=Path(path))


def _is_endoveil_json(path: Path) -> bool:
    """Whether ``path`` should be read as endoveil JSON: a .json that is not ROBAN's."""
    if path.suffix.lower() != ".json":
        return False
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096)
    except OSError:
        return True  # the JSON reader reports the error
    return '"labels"' not in head or '"schema"' in head


def is_reviewed(labels: Labels) -> bool:
    """Whether a person reviewed these labels' segments (see `REVIEWED`)."""
    return labels.extra.get(REVIEWED) is True


def mark_reviewed(labels: Labels, when: str) -> Labels:
    """A copy marked as reviewed by a person at ``when`` (an ISO time)."""
    return replace(labels, extra={**labels.extra, REVIEWED: True, f"{REVIEWED}_at": when})


def _decode_colour(rows: list[str] | None, path: Path | None) -> npt.NDArray[np.uint8] | None:
    if rows is None:
        return None
    try:
        decoded = [base64.b64decode(row, validate=True) for row in rows]
    except (binascii.Error, ValueError) as exc:
        raise LabelsFormatError(f"frames.colour: not base64: {exc}", path=path) from exc
    if len({len(d) for d in decoded}) > 1:
        raise LabelsFormatError("frames.colour: rows of different lengths", path=path)
    width = len(decoded[0]) if decoded else 0
    return np.frombuffer(b"".join(decoded), np.uint8).reshape(len(decoded), width).copy()


def mask_from_segments(segments: Iterable[Segment], frame_count: int) -> npt.NDArray[np.bool_]:
    """One boolean per frame, True inside any segment."""
    mask = np.zeros(frame_count, dtype=bool)
    for s in segments:
        mask[s.start_frame : s.end_frame] = True
    return mask


def segments_from_mask(
    mask: npt.NDArray[np.bool_], frame_times: npt.NDArray[np.float64], duration_s: float
) -> tuple[Segment, ...]:
    """The runs of True in ``mask`` as segments timed by ``frame_times``.

    A segment's ``end_s`` is the time of its first frame after the run, or the video's
    duration when the run reaches the last frame.
    """
    if len(mask) != len(frame_times):
        raise ValueError(f"mask has {len(mask)} frames, frame_times {len(frame_times)}")
    padded = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    segments = []
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        end_s = float(frame_times[end]) if end < len(frame_times) else float(duration_s)
        segments.append(Segment(int(start), int(end), float(frame_times[start]), end_s))
    return tuple(segments)


# pydantic schema of the JSON document ---------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _VideoDoc(_Strict):
    duration_s: float = Field(ge=0)
    fps: float = Field(ge=0)
    frame_count: int = Field(ge=0)
    width: int = Field(ge=0)
    height: int = Field(ge=0)


class _ModelDoc(_Strict):
    name: str = ""
    version: str = ""
    sha256: str = ""


class _FramesDoc(_Strict):
    index: list[int]
    time_s: list[float]
    p_out: list[float]
    colour: list[str] | None = None


class _SegmentDoc(_Strict):
    start_frame: int = Field(ge=0)
    end_frame: int = Field(ge=1)
    start_s: float
    end_s: float


class _LabelsDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: str = Field(alias="schema")
    video: _VideoDoc
    model: _ModelDoc = Field(default_factory=_ModelDoc)
    params: dict[str, Any] = Field(default_factory=dict)
    frames: _FramesDoc
    segments: list[_SegmentDoc]
    extra: dict[str, Any] = Field(default_factory=dict)
