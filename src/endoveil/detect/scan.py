"""Score a video with a classifier and post-process the scores into out-of-body segments."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import VideoReformatter

from endoveil.detect.batches import BatchScorer
from endoveil.detect.classifier import Classifier
from endoveil.detect.extraction import SIGNATURE_SIZE
from endoveil.detect.labels import Labels, VideoSummary
from endoveil.detect.temporal import TemporalParams, postprocess
from endoveil.media.probe import VideoInfo, probe
from endoveil.media.reader import FrameReader, to_model_image

__all__ = ["SCORES_PER_SECOND", "Progress", "auto_sample_every", "scan_video", "summarize"]

# Scoring about 6 frames per second catches any out-of-body moment longer than a sixth of a
# second; the safer-neighbour fill and the margin cover the frames in between.
SCORES_PER_SECOND = 6
# ONNX Runtime scores 4 to 32 images a batch at the same speed per image (2.1 ms on 2 cores);
# small batches start scoring sooner and leave less to score once decoding has ended (a 1080p
# labels-only run took 0.93 of the time it took with batches of 32, bench/offline.py), and 8
# rather than 4 halves the hand-overs to the worker.
BATCH_SIZE = 8

Progress = Callable[[int, int], None]
"""Called with (frames done, frames in total)."""


def auto_sample_every(fps: float) -> int:
    """How many frames apart to score so that about `SCORES_PER_SECOND` frames are scored."""
    return max(1, round(fps / SCORES_PER_SECOND)) if fps > 0 else 1


def summarize(info: VideoInfo) -> VideoSummary:
    """The part of `VideoInfo` that labels keep (display size: rotation applied)."""
    width, height = info.display_size
    return VideoSummary(
        duration_s=round(info.duration_s, 6),
        fps=round(float(info.fps), 6),
        frame_count=info.frame_count,
        width=width,
        height=height,
    )


def scan_video(
    path: Path | str,
    classifier: Classifier,
    *,
    params: TemporalParams | None = None,
    sample_every: int | None = None,
    info: VideoInfo | None = None,
    progress: Progress | None = None,
    on_scored: Callable[[int, npt.NDArray[np.uint8]], None] | None = None,
) -> Labels:
    """Score every ``sample_every``-th frame of a video and derive its out-of-body segments.

    Frames that cannot be decoded count as out of body (p_out = 1): a stretch that cannot be
    judged is hidden.

    Args:
        path: the video.
        classifier: the model.
        params: post-processing; defaults use the classifier's threshold.
        sample_every: score one frame in this many; None picks `auto_sample_every`.
        info: the video's `probe` result, if already known.
        progress: called as frames are decoded.
        on_scored: called with (frame index, model image) for every scored frame, in order,
            from the scoring thread; fast mode keeps tiny previews from it to draw hidden frames
            without decoding them again.

    Returns:
        Labels with the scored frames and the final segments.
    """
    info = info or probe(path)
    params = params or TemporalParams(threshold=classifier.threshold)
    every = sample_every or auto_sample_every(float(info.fps))
    if every < 1:
        raise ValueError("sample_every must be >= 1")

    index: list[int] = []
    p_out: list[float] = []
    colour: list[npt.NDArray[np.uint8]] = []  # colour signatures, for the extraction memory

    # Score the first decoded frame at or after every sampling point; with sampling, pictures
    # nothing refers to are not even decoded. The model scores one batch in a worker thread
    # while the next is decoded; batches are cut exactly where scoring in line cut them.
    next_sample = 0
    reformatter = VideoReformatter()  # used by the worker thread only

    def model_image(index: int, frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
        image = to_model_image(frame, classifier.input_size, reformatter)
        if on_scored:
            on_scored(index, image)
        return image

    with (
        FrameReader(path, info, skip_nonref=every > 1) as reader,
        BatchScorer(classifier, BATCH_SIZE, prepare=model_image) as scorer,
    ):
        for frame in reader:
            if frame.video_frame is not None and frame.index >= next_sample:
                # Resized in the worker too: the decoder's thread only decodes.
                scorer.add(frame.index, frame.video_frame)
                next_sample = frame.index + every
            elif frame.video_frame is None and not frame.skipped:
                scorer.flush()
                index.append(frame.index)
                p_out.append(1.0)
                colour.append(np.zeros(SIGNATURE_SIZE, np.uint8))
            if progress:
                progress(frame.index + 1, info.frame_count)
        for batch in scorer.finish():
            index.extend(batch.index)
            p_out.extend(batch.p_out.tolist())
            colour.extend(batch.colour)
        undecodable = reader.undecodable

    order = np.argsort(index, kind="stable")
    idx = np.asarray(index, np.int64)[order]
    scores = np.asarray(p_out, np.float32)[order]
    signatures = np.asarray(colour, np.uint8).reshape(-1, SIGNATURE_SIZE)[order]
    segments = postprocess(idx, scores, info.frame_times, info.duration_s, params, signatures)
    return Labels(
        video=summarize(info),
        index=idx,
        time_s=info.frame_times[idx] if len(idx) else np.empty(0),
        p_out=scores,
        segments=segments,
        model=classifier.info,
        params={**params.as_dict(), "sample_every": every},
        extra={"undecodable_frames": undecodable} if undecodable else {},
        colour=signatures,
    )
