"""Builders for test media: short clips whose out-of-body frames are known, and a tiny model.

The brightness model answers p_out ≈ 1 for bright frames (mean > 128) and ≈ 0 for dark ones,
so a clip made of dark and bright frames has a known truth while going through the real
ONNX Runtime path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

DARK, BRIGHT = 60, 200


def textured(level: int, index: int, size: tuple[int, int], seed: int = 0) -> npt.NDArray[np.uint8]:
    """A detailed RGB frame of mean brightness ``level`` that changes a little per ``index``.

    Detail matters: `verify` must be able to tell an intact frame from an anonymized one.
    """
    w, h = size
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 40, (h // 4 + 1, w // 4 + 1, 3)).astype(np.float32)
    base = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    shifted = np.roll(base, index * 2, axis=1)
    return np.clip(shifted + level, 0, 255).astype(np.uint8)


def write_clip(
    path: Path,
    frames: Sequence[npt.NDArray[np.uint8]] | int,
    *,
    oob: Callable[[int], bool] = lambda _i: False,
    fps: int | Fraction = 25,
    size: tuple[int, int] = (320, 240),
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    container_options: dict[str, str] | None = None,
    metadata: dict[str, str] | None = None,
    audio: bool = False,
) -> Path:
    """Encode a clip: ``frames`` arrays, or that many textured frames (bright where ``oob``)."""
    if isinstance(frames, int):
        frames = [textured(BRIGHT if oob(i) else DARK, i, size) for i in range(frames)]
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", options=container_options or {}) as container:
        if metadata:
            container.metadata.update(metadata)
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        if time_base is not None:
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
        if options:
            stream.options = options
        audio_stream = container.add_stream("aac", rate=48000) if audio else None
        samples_done = 0
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts is not None:
                frame.pts = pts[i]
                frame.time_base = time_base
            container.mux(stream.encode(frame))
            if audio_stream is not None:
                t_end = (i + 1) / float(fps)
                n = int(t_end * 48000) - samples_done
                tone = 0.2 * np.sin(2 * np.pi * 440 * (samples_done + np.arange(n)) / 48000)
                aframe = av.AudioFrame.from_ndarray(
                    tone.astype(np.float32).reshape(1, -1), format="fltp", layout="mono"
                )
                aframe.sample_rate = 48000
                aframe.pts = samples_done
                samples_done += n
                container.mux(audio_stream.encode(aframe))
        container.mux(stream.encode(None))
        if audio_stream is not None:
            container.mux(audio_stream.encode(None))
    return path


def brightness_model(path: Path, size: int = 32) -> Path:
    """An ONNX model with the endoveil contract: p_out = sigmoid((mean brightness - 128) / 8)."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0),
        helper.make_node("Sub", ["m", "mid"], ["d"]),
        helper.make_node("Div", ["d", "scale"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["p_out"]),
    ]
    inits = [
        helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3]),
        helper.make_tensor("mid", TensorProto.FLOAT, [], [128.0]),
        helper.make_tensor("scale", TensorProto.FLOAT, [], [8.0]),
    ]
    graph = helper.make_graph(
        nodes,
        "brightness",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", size, size, 3])],
        [helper.make_tensor_value_info("p_out", TensorProto.FLOAT, ["N"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    for key, value in {
        "endoveil.name": "brightness-test",
        "endoveil.version": "1",
        "endoveil.threshold": "0.5",
    }.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
