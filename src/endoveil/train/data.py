"""Labelled data for training and evaluation: discovery, loading, and source-wise splits.

A DATA path may be:

- a dataset root with ``train/`` and ``val/`` splits (like ``../shared/data``): each split is
  read as below, and the splits are kept;
- an image-folder root with ``in_body/`` and ``out_of_body/``; images directly inside a class
  folder belong to one source named after the root, images in a sub-folder to a source named
  after that sub-folder;
- a folder of videos (or a ``videos/`` sub-folder), or a single video, each with an
  annotation beside it (endoveil labels JSON, ROBAN JSON, OoBNet CSV or interval CSV).

Splits are made by source (an image folder or a video), never by frame: neighbouring frames
are near-duplicates, and a frame-wise split would measure memory, not generalisation.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from endoveil.detect.formats import find_annotation, read_frame_mask
from endoveil.errors import EndoveilError, LabelsFormatError, MediaError

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "Dataset",
    "Sample",
    "data_hash",
    "discover",
    "load_images",
    "split_by_source",
    "video_samples",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm", ".mpg", ".ts"})
CLASS_DIRS = {"in_body": 0, "out_of_body": 1}


@dataclass(frozen=True)
class Sample:
    """One labelled picture: an image file, or one frame of a video.

    Attributes:
        path: the image or video file.
        label: 1 = out of body, 0 = in body.
        source: where it comes from, for per-source metrics (image folder, or the part of a
            video's name before ``__``).
        group: the unit of splitting (the image folder, or the video itself).
        frame_index: the frame of a video; None for an image.
        time_s: that frame's time from the stream's first frame.
    """

    path: Path
    label: int
    source: str
    group: str
    frame_index: int | None = None
    time_s: float | None = None

    @property
    def key(self) -> str:
        """A stable name, used for hashing the data and in reports."""
        return f"{self.path}#{self.frame_index}" if self.frame_index is not None else str(self.path)


@dataclass
class Dataset:
    """Samples discovered from DATA paths; ``val`` is empty when no split was given."""

    train: list[Sample] = field(default_factory=list)
    val: list[Sample] = field(default_factory=list)
    videos_train: list[Path] = field(default_factory=list)
    videos_val: list[Path] = field(default_factory=list)

    def extend(self, other: Dataset) -> None:
        self.train += other.train
        self.val += other.val
        self.videos_train += other.videos_train
        self.videos_val += other.videos_val


def discover(
    paths: Iterable[Path | str], *, frames_per_second: float = 2.0, split: str = "train"
) -> Dataset:
    """Find every labelled image and video frame under ``paths``.

    Args:
        paths: DATA paths (see the module docstring); any mix.
        frames_per_second: how densely labelled videos are sampled.
        split: where samples go when a path has no ``train/``/``val/`` split of its own.

    Raises:
        EndoveilError: a path does not exist or holds no labelled data.
    """
    data = Dataset()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise EndoveilError("no such file or folder", path=path)
        found = Dataset()
        if path.is_dir() and (path / "train").is_dir():
            found.extend(_discover_one(path / "train", frames_per_second, "train"))
            if (path / "val").is_dir():
                found.extend(_discover_one(path / "val", frames_per_second, "val"))
        else:
            found = _discover_one(path, frames_per_second, split)
        if not (found.train or found.val):
            raise EndoveilError(
                "no labelled data: expected in_body/ and out_of_body/ image folders, a train/ "
                "and val/ split, or videos with annotations beside them",
                path=path,
            )
        data.extend(found)
    return data


def _discover_one(path: Path, fps: float, split: str) -> Dataset:
    samples: list[Sample] = []
    videos: list[Path] = []
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise EndoveilError("not a video or a folder of labelled data", path=path)
        videos.append(path)
    else:
        for class_dir, label in CLASS_DIRS.items():
            if (path / class_dir).is_dir():
                samples += _image_samples(path / class_dir, label, default_source=path.name)
        for folder in (path, path / "videos"):
            if folder.is_dir():
                videos += sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    for video in videos:
        samples += video_samples(video, fps)
    out = Dataset()
    if split == "val":
        out.val, out.videos_val = samples, videos
    else:
        out.train, out.videos_train = samples, videos
    return out


def _image_samples(class_dir: Path, label: int, default_source: str) -> list[Sample]:
    samples = []
    for file in sorted(class_dir.rglob("*")):
        if file.suffix.lower() not in IMAGE_SUFFIXES or not file.is_file():
            continue
        rel = file.relative_to(class_dir).parts
        source = rel[0] if len(rel) > 1 else default_source
        samples.append(Sample(file, label, source, group=f"images/{source}"))
    return samples


def video_samples(video: Path, frames_per_second: float) -> list[Sample]:
    """Frames of a labelled video, about ``frames_per_second`` of them per second.

    Raises:
        LabelsFormatError: the video has no annotation beside it, or a malformed one.
    """
    from endoveil.media.probe import probe

    annotation = find_annotation(video)
    if annotation is None:
        raise LabelsFormatError(
            "no annotation beside the video (.labels.json, _labels.json, .intervals.csv or .csv)",
            path=video,
        )
    info = probe(video)
    mask = read_frame_mask(annotation, info.frame_times)
    fps = float(info.fps) or 25.0
    every = max(1, round(fps / frames_per_second))
    source = video.stem.split("__")[0] if "__" in video.stem else video.stem
    return [
        Sample(video, int(mask[i]), source, f"video/{video.name}", i, float(info.frame_times[i]))
        for i in range(0, info.frame_count, every)
    ]


def split_by_source(
    samples: Sequence[Sample], val_fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """Hold out whole groups (image folders, videos) until each class has ``val_fraction``.

    The order of groups is a hash of the seed and the group name, so the split is
    deterministic and does not change when unrelated groups are added.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    by_group: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_group[s.group].append(s)
    order = sorted(by_group, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    totals = np.bincount([s.label for s in samples], minlength=2)
    taken = np.zeros(2)
    val_groups: set[str] = set()
    for group in order:
        counts = np.bincount([s.label for s in by_group[group]], minlength=2)
        main = int(np.argmax(counts))
        # A group joins val only if its main class still needs samples and it would not
        # take every group of that class (training needs both classes).
        wanted = taken[main] + counts[main] <= val_fraction * totals[main] or taken[main] == 0
        if wanted and taken[main] + counts[main] < totals[main]:
            val_groups.add(group)
            taken += counts
    train = [s for s in samples if s.group not in val_groups]
    val = [s for s in samples if s.group in val_groups]
    return train, val


def data_hash(samples: Sequence[Sample]) -> str:
    """A short fingerprint of which files and labels a model was trained on."""
    digest = hashlib.sha256()
    for s in sorted(samples, key=lambda s: s.key):
        digest.update(f"{s.path.name}#{s.frame_index}:{s.label}\n".encode())
    return digest.hexdigest()[:16]


def _fit_side(image: npt.NDArray[np.uint8], max_side: int) -> npt.NDArray[np.uint8]:
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def load_images(
    samples: Sequence[Sample],
    max_side: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[npt.NDArray[np.uint8]]:
    """Decode every sample to RGB, shrunk (aspect kept) so its longer side is <= ``max_side``.

    Video frames are decoded in one pass per video.

    Raises:
        MediaError: an image or video cannot be read.
    """
    out: list[npt.NDArray[np.uint8] | None] = [None] * len(samples)
    frames_of: dict[Path, dict[int, int]] = defaultdict(dict)
    done = 0
    for i, s in enumerate(samples):
        if s.frame_index is None:
            image = cv2.imread(str(s.path), cv2.IMREAD_COLOR)
            if image is None:
                raise MediaError("cannot read image", path=s.path)
            out[i] = _fit_side(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), max_side)
            done += 1
            if progress:
                progress(done, len(samples))
        else:
            frames_of[s.path][s.frame_index] = i
    for video, wanted in frames_of.items():
        for index, image in _decode_frames(video, set(wanted)):
            out[wanted[index]] = _fit_side(image, max_side)
            done += 1
            if progress:
                progress(done, len(samples))
    missing = [samples[i].key for i, image in enumerate(out) if image is None]
    if missing:
        raise MediaError(f"{len(missing)} frames could not be decoded, e.g. {missing[0]}")
    return out  # type: ignore[return-value]


def _decode_frames(video: Path, wanted: set[int]) -> Iterable[tuple[int, npt.NDArray[np.uint8]]]:
    from endoveil.media.reader import FrameReader, upright

    last = max(wanted)
    with FrameReader(video, threads=True) as reader:
        for frame in reader:
            if frame.index in wanted and frame.video_frame is not None:
                yield frame.index, upright(frame.video_frame).to_ndarray(format="rgb24")
            if frame.index >= last:
                break
