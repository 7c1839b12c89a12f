"""Frame classifiers: p(out of body) for a batch of frames.

The model contract (any ONNX file with it works with ``--model``):

- input ``image``: uint8, shape ``[N, S, S, 3]``, RGB, the whole frame resized to S×S
  (no crop); N is dynamic. Normalisation happens inside the graph.
- output ``p_out``: float32, shape ``[N]``, probability that the frame is out of body.
- optional metadata properties: ``endoveil.name``, ``endoveil.version`` and
  ``endoveil.threshold`` (the operating threshold chosen on validation data).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from endoveil.detect.labels import ModelInfo
from endoveil.errors import ModelError

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = [
    "DEFAULT_MODEL",
    "Classifier",
    "OnnxClassifier",
    "ScriptedClassifier",
    "default_model_path",
    "resize_for_model",
    "safe_scores",
]

DEFAULT_MODEL = "default.onnx"
DEFAULT_THRESHOLD = 0.5


class Classifier(Protocol):
    """What the pipeline needs of a model (a static protocol: on Python 3.11 a runtime
    ``isinstance`` check would read the properties, and so wait for a model still loading)."""

    @property
    def input_size(self) -> int:
        """Side of the square images `score` takes."""
        ...

    @property
    def threshold(self) -> float:
        """The operating threshold the model was validated at."""
        ...

    @property
    def info(self) -> ModelInfo:
        """Name, version and hash, as labels record them."""
        ...

    def score(self, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """p(out of body) for ``images`` of shape [N, S, S, 3] (uint8 RGB)."""
        ...


def safe_scores(p_out: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Scores clipped to [0, 1]; a NaN or infinite score (a broken model) counts as out of
    body, never as in body."""
    return np.clip(np.nan_to_num(p_out, nan=1.0, posinf=1.0, neginf=1.0), 0.0, 1.0)


def resize_for_model(image: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.uint8]:
    """Resize a whole RGB frame to size×size the way the models were trained (area filter)."""
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def default_model_path() -> Path:
    """The model shipped inside the package."""
    return Path(str(resources.files("endoveil.models").joinpath(DEFAULT_MODEL)))


@dataclass(frozen=True)
class _Loaded:
    session: ort.InferenceSession
    input_size: int
    threshold: float
    info: ModelInfo


class OnnxClassifier:
    """An ONNX Runtime session on the CPU.

    Args:
        path: the ONNX file; the shipped default model when None.
        threads: intra-op threads; None lets ONNX Runtime use every core.
        background: create the session in a thread and return at once; the first use of the
            model waits for it, and raises `ModelError` there if it cannot be loaded. Loading
            (0.1-0.2 s) then overlaps what the caller does meanwhile, e.g. probing the video.

    Raises:
        ModelError: the file is missing, not ONNX, or lacks the documented interface (with
            ``background``, only a missing file is reported here).

    Example:
        >>> clf = OnnxClassifier()
        >>> frames = np.zeros((2, clf.input_size, clf.input_size, 3), np.uint8)
        >>> clf.score(frames).shape
        (2,)
    """

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        threads: int | None = None,
        background: bool = False,
    ) -> None:
        self.path = Path(path) if path is not None else default_model_path()
        if not self.path.is_file():
            raise ModelError("model file not found", path=self.path)
        self._threads = threads
        self._loaded: Future[_Loaded] = Future()
        if background:
            # Not a daemon: ONNX Runtime aborts the process if the interpreter exits while it
            # builds a session, so exit waits for the load (at most a few tenths of a second).
            threading.Thread(target=self._load, name="endoveil-model").start()
        else:
            self._loaded.set_result(self._open())

    def _load(self) -> None:
        try:
            self._loaded.set_result(self._open())
        except Exception as exc:  # handed to whoever uses the model first
            self._loaded.set_exception(exc)

    def failed(self) -> bool:
        """Whether loading has ended in an error (False while it is still loading)."""
        return self._loaded.done() and self._loaded.exception() is not None

    def _ready(self) -> _Loaded:
        try:
            return self._loaded.result()
        except ModelError as exc:
            # A new error each time: re-raising the stored one would chain every caller's
            # traceback onto it.
            raise ModelError(exc.message, path=exc.path) from exc.__cause__
        except Exception as exc:
            raise ModelError(f"cannot load the model: {exc}", path=self.path) from exc

    def _open(self) -> _Loaded:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if self._threads:
            options.intra_op_num_threads = self._threads
        # Idle pool threads sleep instead of spinning: the model always shares the cores with
        # decoding (and encoding, and live capture), and spinning took CPU from them (offline
        # detection ran about 15% slower with it, measured side by side).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        # Read once: the hash in the model's info is of the very bytes the session runs.
        model = self._read()
        try:
            session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime raises its own untyped errors
            raise ModelError(f"not a loadable ONNX model: {exc}", path=self.path) from exc
        meta = session.get_modelmeta().custom_metadata_map
        return _Loaded(
            session=session,
            input_size=self._check_interface(session),
            threshold=float(meta.get("endoveil.threshold", DEFAULT_THRESHOLD)),
            info=ModelInfo(
                name=meta.get("endoveil.name", self.path.stem),
                version=meta.get("endoveil.version", ""),
                sha256=hashlib.sha256(model).hexdigest(),
            ),
        )

    def _read(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read the model: {exc.strerror}", path=self.path) from exc

    def wait(self) -> OnnxClassifier:
        """Wait until the session is ready.

        Raises:
            ModelError: it could not be loaded.
        """
        self._ready()
        return self

    @property
    def input_size(self) -> int:
        return self._ready().input_size

    @property
    def threshold(self) -> float:
        return self._ready().threshold

    @property
    def info(self) -> ModelInfo:
        return self._ready().info

    def _check_interface(self, session: ort.InferenceSession) -> int:
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = {o.name for o in session.get_outputs()}
        image = inputs.get("image")
        if image is None or "p_out" not in outputs:
            raise ModelError(
                "model must take input 'image' [N,S,S,3] uint8 and give output 'p_out' [N]; "
                f"it has inputs {sorted(inputs)} and outputs {sorted(outputs)}",
                path=self.path,
            )
        shape = image.shape
        if image.type != "tensor(uint8)" or len(shape) != 4 or shape[3] != 3:
            raise ModelError(
                f"input 'image' must be uint8 [N,S,S,3], got {image.type} {shape}", path=self.path
            )
        if not isinstance(shape[1], int) or shape[1] != shape[2]:
            raise ModelError(f"input 'image' must be square and fixed, got {shape}", path=self.path)
        return int(shape[1])

    def score(self, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        loaded = self._ready()
        size = loaded.input_size
        if images.ndim != 4 or images.shape[1:] != (size, size, 3):
            raise ValueError(f"images must have shape [N,{size},{size},3], got {images.shape}")
        if len(images) == 0:
            return np.empty(0, np.float32)
        try:
            (p_out,) = loaded.session.run(["p_out"], {"image": np.ascontiguousarray(images)})
        except Exception as exc:
            raise ModelError(f"inference failed: {exc}", path=self.path) from exc
        return safe_scores(np.asarray(p_out, np.float32).reshape(len(images)))


class ScriptedClassifier:
    """A classifier that answers from a script: for tests and demos that must not load ONNX.

    Args:
        decide: maps a batch of images to p_out; e.g. mean brightness above a level.
        input_size: the frame size it asks for.

    Example:
        >>> bright = ScriptedClassifier(lambda x: (x.mean(axis=(1, 2, 3)) > 128).astype("f4"))
        >>> bright.score(np.full((1, 32, 32, 3), 255, np.uint8)).tolist()
        [1.0]
    """

    def __init__(
        self,
        decide: Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.float32] | Sequence[float]],
        *,
        input_size: int = 32,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self._decide = decide
        self.input_size = input_size
        self.threshold = threshold
        self.info = ModelInfo(name="scripted", version="test")

    def score(self, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        return safe_scores(np.asarray(self._decide(images), np.float32).reshape(len(images)))
