"""The training loop: fine-tune EfficientNet-Lite0 on labelled frames and export ONNX.

Deterministic with a seed: the sampling order and augmentations of epoch ``e`` come from a
generator seeded with ``(seed, e)``, and torch's generator is re-seeded at each epoch, so a run
resumed from a checkpoint continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from endoveil.detect.classifier import resize_for_model
from endoveil.errors import EndoveilError, ModelError
from endoveil.train.augment import AugmentConfig, augment
from endoveil.train.data import Sample, data_hash, discover, load_images, split_by_source
from endoveil.train.export import export_onnx, load_onnx_weights
from endoveil.train.metrics import choose_threshold, operating_point, pr_auc, roc_auc
from endoveil.train.network import EfficientNetLite0, imagenet_weights_path, normalize

__all__ = ["FitResult", "ProgressEvent", "TrainConfig", "fit", "predict"]

MODEL_NAME = "endoveil-oob-lite0"
CHECKPOINT = "last.pt"
# Where things are, not how the model was made: kept out of the metadata so that the same
# recipe gives the same file wherever it runs.
_NOT_RECIPE = ("data", "val", "output", "checkpoint_dir", "resume")


@dataclass
class TrainConfig:
    """Everything a training run depends on.

    Args:
        data: DATA paths for training (a dataset root with train/ and val/ also gives val).
        output: the ONNX file to write.
        val: DATA paths for validation; when empty and ``data`` has no val/ split, whole
            sources are held out (``val_fraction``).
        epochs: passes over ``samples_per_epoch`` drawn samples.
        batch_size: frames per optimisation step.
        lr: peak learning rate (AdamW, cosine decay after a short warm-up).
        input_size: model input side S.
        seed: makes the run reproducible.
        init: start from an endoveil ONNX model or a training checkpoint instead of ImageNet.
        resume: continue from ``checkpoint_dir/last.pt`` if present.
        checkpoint_dir: where checkpoints go (default: beside ``output``).
        freeze_blocks: stem plus this many first blocks keep their ImageNet weights.
        frames_per_second: sampling density of labelled videos.
        samples_per_epoch: drawn (with replacement, balanced) per epoch; default the train size.
        val_fraction: share of each class held out when no validation data is given.
        recall_target: OOB recall the threshold must keep on validation data.
        specificity_target: in-body specificity wanted at that threshold.
        synthetic_per_kind: near-field pictures added to training per kind
            (`endoveil.train.nearfield`: drapes, gloves, skin, towels, trocar, close-ups out
            of body; smoke, red-out, fog, gauze, instruments, close-ups in body); 0 = none.
        version: written into the model's metadata.
        threads: torch intra-op threads.
    """

    data: list[Path]
    output: Path
    val: list[Path] = field(default_factory=list)
    epochs: int = 8
    batch_size: int = 32
    lr: float = 1e-3
    input_size: int = 160
    seed: int = 0
    init: Path | None = None
    resume: bool = False
    checkpoint_dir: Path | None = None
    freeze_blocks: int = 4
    frames_per_second: float = 2.0
    samples_per_epoch: int | None = None
    val_fraction: float = 0.2
    recall_target: float = 0.99
    specificity_target: float = 0.95
    weight_decay: float = 1e-4
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    synthetic_per_kind: int = 0
    version: str = "0.1.0"
    threads: int = 2

    def fingerprint(self) -> dict[str, Any]:
        """Settings a resumed run must share with the run it continues."""
        keep = (
            "epochs",
            "batch_size",
            "lr",
            "input_size",
            "seed",
            "freeze_blocks",
            "synthetic_per_kind",
        )
        return {k: getattr(self, k) for k in keep}


@dataclass(frozen=True)
class ProgressEvent:
    """Where training is: ``stage`` is "load", "train" or "validate"."""

    stage: str
    done: int
    total: int
    epoch: int = 0
    message: str = ""


@dataclass
class FitResult:
    """What a training run produced."""

    model: Path
    threshold: float
    metrics: dict[str, Any]
    history: list[dict[str, float]]


Progress = Callable[[ProgressEvent], None]


def fit(config: TrainConfig, progress: Progress | None = None) -> FitResult:
    """Train, validate, choose the threshold and export ``config.output``.

    Raises:
        EndoveilError: data cannot be found or read, or a model/checkpoint cannot be used.
    """
    report = progress or (lambda _e: None)
    torch.set_num_threads(config.threads)
    train, val = _datasets(config)
    side = max(config.input_size, round(config.input_size * 1.5))
    train_images = load_images(
        train, side, lambda d, t: report(ProgressEvent("load", d, t + len(val)))
    )
    val_images = load_images(
        val, side, lambda d, t: report(ProgressEvent("load", len(train) + d, len(train) + t))
    )
    extra, extra_images = _synthetic(train, train_images, config, side)
    train, train_images = train + extra, train_images + extra_images

    net = _initial_network(config)
    net.freeze_stem_and_blocks(config.freeze_blocks)
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    per_epoch = config.samples_per_epoch or len(train)
    steps_per_epoch = max(1, math.ceil(per_epoch / config.batch_size))
    total_steps = steps_per_epoch * config.epochs
    warmup = min(steps_per_epoch, max(1, total_steps // 10))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: (
            min(1.0, (step + 1) / warmup)
            * 0.5
            * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
        ),
    )

    checkpoint_dir = config.checkpoint_dir or config.output.parent / f"{config.output.stem}.ckpt"
    start_epoch, history = 0, []
    if config.resume and (checkpoint_dir / CHECKPOINT).is_file():
        start_epoch, history = _load_checkpoint(
            checkpoint_dir / CHECKPOINT, config, net, optimizer, scheduler
        )

    weights = _sampling_weights(train)
    for epoch in range(start_epoch, config.epochs):
        rng = np.random.default_rng([config.seed, epoch])
        torch.manual_seed(config.seed * 1009 + epoch)
        order = rng.choice(len(train), size=per_epoch, p=weights)
        net.train()
        losses = []
        for step in range(steps_per_epoch):
            idx = order[step * config.batch_size : (step + 1) * config.batch_size]
            if len(idx) == 0:
                break
            batch = np.stack(
                [
                    resize_for_model(
                        augment(train_images[i], rng, config.augment), config.input_size
                    )
                    for i in idx
                ]
            )
            target = torch.tensor([float(train[i].label) for i in idx])
            logits = net(normalize(torch.from_numpy(batch))).reshape(-1)
            loss = F.binary_cross_entropy_with_logits(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            report(
                ProgressEvent(
                    "train",
                    step + 1,
                    steps_per_epoch,
                    epoch + 1,
                    f"loss {np.mean(losses[-20:]):.4f}",
                )
            )
        entry: dict[str, float] = {"epoch": epoch + 1, "loss": float(np.mean(losses))}
        if val:
            scores = predict(net, val_images, config.input_size, config.batch_size, report)
            entry["val_roc_auc"] = roc_auc(_truth(val), scores)
        history.append(entry)
        _save_checkpoint(checkpoint_dir, config, net, optimizer, scheduler, epoch + 1, history)

    return _finish(config, net, train, val, val_images, history, report)


def predict(
    net: EfficientNetLite0,
    images: Sequence[npt.NDArray[np.uint8]],
    input_size: int,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> npt.NDArray[np.float32]:
    """p(out of body) of whole frames, resized exactly as at inference."""
    net.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            chunk = [resize_for_model(im, input_size) for im in images[start : start + batch_size]]
            x = normalize(torch.from_numpy(np.stack(chunk)))
            out.append(torch.sigmoid(net(x)).reshape(-1).numpy())
            if progress:
                done = min(start + batch_size, len(images))
                progress(ProgressEvent("validate", done, len(images)))
    return np.concatenate(out).astype(np.float32) if out else np.empty(0, np.float32)


def _synthetic(
    train: Sequence[Sample],
    images: Sequence[npt.NDArray[np.uint8]],
    config: TrainConfig,
    side: int,
) -> tuple[list[Sample], list[npt.NDArray[np.uint8]]]:
    """Near-field pictures made from the training pictures (`endoveil.train.nearfield`).

    Why: public data shows the far operating room; real extractions mostly show drapes,
    gloves, skin and the trocar close up, which a model trained on far scenes takes for
    tissue. Each kind is its own source, so square-root weighting balances it like the rest.
    """
    if config.synthetic_per_kind <= 0:
        return [], []
    from endoveil.train.nearfield import synthesize

    in_body = [im for s, im in zip(train, images, strict=True) if s.label == 0]
    out_of_body = [im for s, im in zip(train, images, strict=True) if s.label == 1]
    made = synthesize(in_body, out_of_body, config.synthetic_per_kind, config.seed, side)
    samples = [
        Sample(
            Path(f"synthetic/{kind}/{n:04d}.png"), label, f"synthetic_{kind}", f"synthetic/{kind}"
        )
        for n, (kind, label, _image) in enumerate(made)
    ]
    return samples, [image for _kind, _label, image in made]


def _recipe(config: TrainConfig) -> dict[str, str]:
    """The settings that made the model, for its metadata.

    Without synthetic pictures the option changes nothing, and is left out: the same recipe
    then writes the same file as before the option existed (the shipped model reproduces
    bit for bit).
    """
    recipe = {k: str(v) for k, v in asdict(config).items() if k not in _NOT_RECIPE}
    if config.synthetic_per_kind == 0:
        del recipe["synthetic_per_kind"]
    return recipe


def _truth(samples: Sequence[Sample]) -> npt.NDArray[np.bool_]:
    return np.array([s.label == 1 for s in samples], bool)


def _datasets(config: TrainConfig) -> tuple[list[Sample], list[Sample]]:
    found = discover(config.data, frames_per_second=config.frames_per_second)
    train, val = found.train, found.val
    if config.val:
        extra = discover(config.val, frames_per_second=config.frames_per_second, split="val")
        val = val + extra.val + extra.train
    if not val and config.val_fraction > 0:
        train, val = split_by_source(train, config.val_fraction, config.seed)
    if not train:
        raise EndoveilError("no training samples found (only validation data)")
    if len({s.label for s in train}) < 2:
        raise EndoveilError("training data needs both in-body and out-of-body samples")
    return train, val


def _initial_network(config: TrainConfig) -> EfficientNetLite0:
    net = EfficientNetLite0(config.input_size, num_classes=1)
    if config.init is None:
        state = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
        net.load_backbone(state)
        torch.manual_seed(config.seed)
        torch.nn.init.normal_(net._fc.weight, std=0.01)
        torch.nn.init.zeros_(net._fc.bias)
        return net
    path = Path(config.init)
    if not path.is_file():
        raise ModelError("no such model or checkpoint", path=path)
    if path.suffix.lower() == ".onnx":
        state, _size = load_onnx_weights(path)
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)["model"]
        except Exception as exc:  # pickle and zip errors are untyped
            raise ModelError(f"not an endoveil checkpoint: {exc}", path=path) from exc
    try:
        net.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise ModelError(f"weights do not fit EfficientNet-Lite0: {exc}", path=path) from exc
    return net


def _sampling_weights(samples: Sequence[Sample]) -> npt.NDArray[np.float64]:
    """Half the draws per class; within a class, a source weighs sqrt(its size).

    Why: sources differ 100-fold in size (480 tiny OR frames vs 2 trocar views); square-root
    weighting lets large sources count more without drowning the rare, informative ones.
    """
    counts: dict[tuple[int, str], int] = defaultdict(int)
    for s in samples:
        counts[(s.label, s.group)] += 1
    class_mass: dict[int, float] = defaultdict(float)
    for (label, _group), n in counts.items():
        class_mass[label] += math.sqrt(n)
    w = np.array(
        [
            0.5
            * math.sqrt(counts[(s.label, s.group)])
            / class_mass[s.label]
            / counts[(s.label, s.group)]
            for s in samples
        ]
    )
    return w / w.sum()


def _save_checkpoint(
    folder: Path,
    config: TrainConfig,
    net: EfficientNetLite0,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    epoch: int,
    history: list[dict[str, float]],
) -> None:
    from endoveil.atomic import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "history": history,
        "fingerprint": config.fingerprint(),
    }
    with atomic_path(folder / CHECKPOINT) as tmp:
        torch.save(state, tmp)


def _load_checkpoint(
    path: Path,
    config: TrainConfig,
    net: EfficientNetLite0,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[int, list[dict[str, float]]]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle and zip errors are untyped
        raise ModelError(f"cannot read checkpoint: {exc}", path=path) from exc
    if state.get("fingerprint") != config.fingerprint():
        raise ModelError(
            f"checkpoint was made with other settings {state.get('fingerprint')}; "
            f"resume needs the same {config.fingerprint()}",
            path=path,
        )
    net.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return int(state["epoch"]), list(state["history"])


def _finish(
    config: TrainConfig,
    net: EfficientNetLite0,
    train: list[Sample],
    val: list[Sample],
    val_images: Sequence[npt.NDArray[np.uint8]],
    history: list[dict[str, float]],
    report: Progress,
) -> FitResult:
    metrics: dict[str, Any] = {"train_samples": len(train), "val_samples": len(val)}
    threshold = 0.5
    if val:
        y = _truth(val)
        scores = predict(net, val_images, config.input_size, config.batch_size, report)
        if y.any() and not y.all():
            threshold = choose_threshold(
                y,
                scores,
                recall_target=config.recall_target,
                specificity_target=config.specificity_target,
            )
        point = operating_point(y, scores, threshold)
        metrics.update(
            val_roc_auc=roc_auc(y, scores),
            val_pr_auc=pr_auc(y, scores),
            val_sensitivity=point.sensitivity,
            val_specificity=point.specificity,
        )
    metadata = {
        "endoveil.name": MODEL_NAME,
        "endoveil.version": config.version,
        "endoveil.threshold": f"{threshold:.6g}",
        "endoveil.input_size": str(config.input_size),
        "endoveil.architecture": "EfficientNet-Lite0 (ImageNet init), sigmoid head",
        "endoveil.normalization": "(x - 127) / 128 in graph; input uint8 RGB, INTER_AREA resize",
        "endoveil.train_data_sha256_16": data_hash(train),
        "endoveil.val_data_sha256_16": data_hash(val) if val else "",
        "endoveil.seed": str(config.seed),
        "endoveil.epochs": str(config.epochs),
        "endoveil.val_metrics": json.dumps(
            {k: round(v, 5) if isinstance(v, float) else v for k, v in metrics.items()}
        ),
        "endoveil.train_config": json.dumps(_recipe(config)),
    }
    config.output.parent.mkdir(parents=True, exist_ok=True)
    export_onnx(net, config.output, metadata)
    return FitResult(config.output, threshold, metrics, history)
