"""Detection with the model scoring in a worker thread scores the same frames, with the same
scores, as scoring in line did: same pictures decoded, same batches, same order."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from bad_media import DAMAGED_INPUTS
from clips import write_clip
from endoveil.detect.batches import BatchScorer
from endoveil.detect.classifier import OnnxClassifier, ScriptedClassifier
from endoveil.detect.scan import BATCH_SIZE, auto_sample_every, scan_video
from endoveil.errors import ModelError
from endoveil.media.probe import probe
from endoveil.media.reader import FrameReader, to_model_image


def _in_line(path: Path, classifier: OnnxClassifier, every: int) -> tuple[list[int], list[float]]:
    """Detection as it was before the overlap: decode, resize, score each full batch in line."""
    index: list[int] = []
    p_out: list[float] = []
    batch: list[tuple[int, npt.NDArray[np.uint8]]] = []

    def flush() -> None:
        if batch:
            scores = classifier.score(np.stack([image for _, image in batch]))
            index.extend(i for i, _ in batch)
            p_out.extend(scores.tolist())
            batch.clear()

    next_sample = 0
    with FrameReader(path, probe(path), skip_nonref=every > 1) as reader:
        for frame in reader:
            if frame.video_frame is not None and frame.index >= next_sample:
                batch.append((frame.index, to_model_image(frame.video_frame, 160)))
                next_sample = frame.index + every
                if len(batch) >= BATCH_SIZE:
                    flush()
            elif frame.video_frame is None and not frame.skipped:
                flush()
                index.append(frame.index)
                p_out.append(1.0)
        flush()
    order = np.argsort(index, kind="stable")
    return np.asarray(index)[order].tolist(), np.asarray(p_out, np.float32)[order].tolist()


@pytest.fixture(scope="module")
def model() -> OnnxClassifier:
    return OnnxClassifier()


@pytest.mark.parametrize("every", [1, 5])
def test_same_frames_and_scores_as_in_line(
    every: int, model: OnnxClassifier, tmp_path: Path
) -> None:
    # 150 frames with B-frames: several batches of 32, pictures skipped when sampling.
    path = write_clip(tmp_path / "clip.mp4", 150, oob=lambda i: 60 <= i < 90, options={"bf": "3"})
    labels = scan_video(path, model, sample_every=every)
    index, p_out = _in_line(path, model, every)
    assert labels.index.tolist() == index
    assert labels.p_out.tolist() == p_out  # bit for bit


@pytest.mark.parametrize("name", DAMAGED_INPUTS)
def test_same_scores_on_damaged_input(name: str, model: OnnxClassifier, tmp_path: Path) -> None:
    path = DAMAGED_INPUTS[name](tmp_path)
    every = auto_sample_every(float(probe(path).fps))
    labels = scan_video(path, model, sample_every=every)
    index, p_out = _in_line(path, model, every)
    assert labels.index.tolist() == index
    assert labels.p_out.tolist() == p_out


def test_batches_keep_order_and_boundaries() -> None:
    sizes: list[tuple[str, int]] = []

    def decide(images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        sizes.append((threading.current_thread().name, len(images)))
        return images[:, 0, 0, 0].astype(np.float32) / 255

    for overlap in (False, True):
        sizes.clear()
        with BatchScorer(ScriptedClassifier(decide), 4, overlap=overlap) as scorer:
            for i in range(10):
                scorer.add(i, np.full((32, 32, 3), i, np.uint8))
                if i == 5:
                    scorer.flush()
            batches = scorer.finish()
        assert [b.index for b in batches] == [[0, 1, 2, 3], [4, 5], [6, 7, 8, 9]]
        assert np.concatenate([b.p_out for b in batches]).tolist() == pytest.approx(
            [i / 255 for i in range(10)]
        )
        threads = {name for name, _ in sizes}
        assert (threads == {"MainThread"}) is not overlap


def test_a_failing_model_fails_the_scan(tmp_path: Path) -> None:
    def broken(images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        raise ModelError("inference failed: out of memory")

    path = write_clip(tmp_path / "clip.mp4", 40)
    with pytest.raises(ModelError, match="out of memory"):
        scan_video(path, ScriptedClassifier(broken), sample_every=1)
