"""Score batches of model images in a worker thread while the caller keeps decoding.

ONNX Runtime releases the GIL while it runs, and FFmpeg decodes in its own threads, so on a
machine with two cores the model can score one batch while the next is being decoded; run
one after the other, the two costs add up. `BatchScorer` keeps the order and the batch
boundaries the caller chooses, so the scores are the same as scoring in line.

What a batch yields is `classifier.score`'s output and each image's colour signature
(`endoveil.detect.extraction.colour_signatures`, for the extraction memory), computed in the
same worker from the same images.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from endoveil.detect.classifier import Classifier
from endoveil.detect.extraction import colour_signatures

__all__ = ["BatchScorer", "ScoredBatch"]

# Batches scored or waiting at once: one being scored while the next fills; more would only
# hold memory (an 8-image batch of 160² is 0.6 MB).
MAX_IN_FLIGHT = 2
# Decoded frames waiting for the worker to turn them into model images: each holds a whole
# decoded picture (6 MB at 1080p), so the decoder waits rather than queue more.
MAX_FRAMES_WAITING = 8

T = TypeVar("T")
Prepare = Callable[[int, T], npt.NDArray[np.uint8]]
"""Turns an added item (e.g. a decoded frame) into its model image; runs in the worker."""


@dataclass(frozen=True)
class ScoredBatch:
    """The scores of one batch, in the order its frames were added."""

    index: list[int]
    p_out: npt.NDArray[np.float32]
    colour: npt.NDArray[np.uint8]


class BatchScorer(Generic[T]):
    """Collects frames into batches, makes their model images and scores them in a thread.

    Args:
        classifier: the model.
        batch_size: images per batch (a batch is also cut short by `flush`).
        prepare: makes an added item's model image (with its frame index); None: items are
            model images already. With ``overlap`` it runs in the worker, off the decoder's
            path.
        overlap: work in a worker thread; False works in the caller's thread.

    Use as a context manager; `finish` returns every batch's result, `flush` ends the
    current batch.
    """

    def __init__(
        self,
        classifier: Classifier,
        batch_size: int,
        *,
        prepare: Prepare[T] | None = None,
        overlap: bool = True,
    ) -> None:
        self._classifier = classifier
        self._batch_size = batch_size
        self._prepare = prepare
        self._index: list[int] = []
        self._images: list[Future[npt.NDArray[np.uint8]]] = []
        self._waiting: deque[Future[npt.NDArray[np.uint8]]] = deque()
        self._pending: deque[Future[ScoredBatch]] = deque()
        self._done: list[ScoredBatch] = []
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="endoveil-score") if overlap else None

    def add(self, index: int, item: T) -> None:
        """Queue one frame; a full batch is sent to be scored."""
        self._index.append(index)
        if self._pool is None:
            done: Future[npt.NDArray[np.uint8]] = Future()
            done.set_result(self._image(index, item))
            self._images.append(done)
        else:
            while len(self._waiting) >= MAX_FRAMES_WAITING:
                self._waiting.popleft().result()
            future = self._pool.submit(self._image, index, item)
            self._waiting.append(future)
            self._images.append(future)
        if len(self._images) >= self._batch_size:
            self.flush()

    def flush(self) -> None:
        """Send the frames queued so far as one batch (however few)."""
        if not self._images:
            return
        index, images = self._index, self._images
        self._index, self._images = [], []
        if self._pool is None:
            self._done.append(self._score_batch(index, images))
            return
        while len(self._pending) >= MAX_IN_FLIGHT:
            self._done.append(self._pending.popleft().result())
        self._pending.append(self._pool.submit(self._score_batch, index, images))

    def finish(self) -> list[ScoredBatch]:
        """Score what is left; every batch's result, in order (errors are raised here)."""
        self.flush()
        while self._pending:
            self._done.append(self._pending.popleft().result())
        self._waiting.clear()
        done, self._done = self._done, []
        return done

    def _image(self, index: int, item: T) -> npt.NDArray[np.uint8]:
        if self._prepare is None:
            return item  # type: ignore[return-value]  # items are model images
        return self._prepare(index, item)

    def _score_batch(
        self, index: list[int], images: list[Future[npt.NDArray[np.uint8]]]
    ) -> ScoredBatch:
        # The worker runs tasks in order: every image of this batch is made by now.
        batch = np.stack([image.result() for image in images])
        return ScoredBatch(index, self._classifier.score(batch), colour_signatures(batch))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> BatchScorer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
