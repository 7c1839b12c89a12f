"""Export a trained network to the endoveil ONNX contract, and read weights back from one.

The exported graph takes ``image`` uint8 ``[N,S,S,3]`` RGB and gives ``p_out`` float32 ``[N]``;
normalisation and the sigmoid are inside, so callers only resize. Batch-norm layers are kept as
``BatchNormalization`` nodes with their torch names (ONNX Runtime fuses them into the
convolutions when it loads the model, so this costs no speed) so that ``endoveil train --from
model.onnx`` can fine-tune the weights again.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from endoveil.atomic import atomic_path
from endoveil.errors import ModelError
from endoveil.train.network import EfficientNetLite0, normalize

__all__ = ["OnnxWrapper", "export_onnx", "load_onnx_weights", "onnx_metadata"]

OPSET = 17


class OnnxWrapper(nn.Module):
    """uint8 NHWC frames in, p(out of body) out: the whole contract in one module."""

    def __init__(self, net: EfficientNetLite0) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(normalize(image))).reshape(-1)


def export_onnx(net: EfficientNetLite0, path: Path, metadata: dict[str, str]) -> None:
    """Write ``net`` as an endoveil ONNX model with ``metadata`` (``endoveil.*`` properties).

    The file is written atomically: a crash leaves no half-written model behind.
    """
    import onnx

    wrapper = OnnxWrapper(net).eval()
    size = net.input_size
    example = torch.zeros(2, size, size, 3, dtype=torch.uint8)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter warns about constant folding it skips; harmless here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (example,),
            buffer,
            input_names=["image"],
            output_names=["p_out"],
            dynamic_axes={"image": {0: "N"}, "p_out": {0: "N"}},
            opset_version=OPSET,
            dynamo=False,
            training=torch.onnx.TrainingMode.PRESERVE,
            do_constant_folding=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    _fold_pads_into_convs(model, net)
    for key, value in sorted(metadata.items()):
        prop = model.metadata_props.add()
        prop.key, prop.value = key, str(value)
    onnx.checker.check_model(model)
    with atomic_path(Path(path)) as tmp:
        tmp.write_bytes(model.SerializeToString())
        tmp.chmod(0o644)  # a model is not secret; mkstemp's 0600 would hide it from others


def _fold_pads_into_convs(model: Any, net: EfficientNetLite0) -> None:
    """Move each TensorFlow-style ``Pad`` into the ``pads`` attribute of the Conv it feeds.

    Why: a separate Pad node breaks ONNX Runtime's blocked-layout (NCHWc) convolution chain;
    with 17 of them the model ran 2-3x slower, half the time spent padding and re-ordering.
    ONNX Conv supports asymmetric padding, torch's Conv2d does not, so the exporter cannot do
    this itself. The pads come from the torch modules, whose sizes are fixed.
    """
    from onnx import helper

    # The exporter names nodes by module path: "/net/_blocks.3/_depthwise_conv/Pad".
    pads = {"/net/" + name.replace("._", "/_") + "/Pad": m.pad for name, m in _padded_convs(net)}
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    removed = set()
    for node in model.graph.node:
        if node.op_type != "Pad" or node.name not in pads:
            continue
        users = consumers.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "Conv":
            continue
        left, right, top, bottom = pads[node.name]
        conv = users[0]
        conv.input[0] = node.input[0]
        kept = [a for a in conv.attribute if a.name != "pads"]
        del conv.attribute[:]
        conv.attribute.extend([*kept, helper.make_attribute("pads", [top, left, bottom, right])])
        removed.add(node.name)
    nodes = [n for n in model.graph.node if n.name not in removed]
    # Drop the constant sub-graphs that only computed the removed pads.
    outputs = {o.name for o in model.graph.output}
    while True:
        used = {i for n in nodes for i in n.input} | outputs
        alive = [n for n in nodes if any(o in used for o in n.output)]
        if len(alive) == len(nodes):
            break
        nodes = alive
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def _padded_convs(net: EfficientNetLite0) -> list[tuple[str, Any]]:
    from endoveil.train.network import _Conv

    return [(n, m) for n, m in net.named_modules() if isinstance(m, _Conv) and m.pad is not None]


def onnx_metadata(path: Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def load_onnx_weights(path: Path) -> tuple[dict[str, torch.Tensor], int]:
    """The network state dict stored in an endoveil ONNX model, and its input size.

    Raises:
        ModelError: the file is not an endoveil model exported by ``endoveil train``.
    """
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others, untyped
        raise ModelError(f"not an ONNX model: {exc}", path=path) from exc
    state = {}
    for init in model.graph.initializer:
        if init.name.startswith("net."):
            state[init.name.removeprefix("net.")] = torch.from_numpy(
                numpy_helper.to_array(init).copy()
            )
    dims = model.graph.input[0].type.tensor_type.shape.dim if model.graph.input else []
    if "_fc.weight" not in state or len(dims) != 4:
        raise ModelError(
            "cannot fine-tune from this ONNX file: it was not exported by endoveil train "
            "(no named EfficientNet-Lite0 weights)",
            path=path,
        )
    return state, int(dims[1].dim_value)
