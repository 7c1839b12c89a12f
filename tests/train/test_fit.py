"""End-to-end training on a tiny generated set: the code path, determinism, resume, parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from endoveil.detect.classifier import OnnxClassifier  # noqa: E402
from endoveil.errors import EndoveilError, ModelError  # noqa: E402
from endoveil.train.export import OnnxWrapper, export_onnx, load_onnx_weights  # noqa: E402
from endoveil.train.fit import ProgressEvent, TrainConfig, fit  # noqa: E402
from endoveil.train.network import EfficientNetLite0  # noqa: E402

SIZE = 64


def tiny_config(data: Path, val: Path, out: Path, **overrides: object) -> TrainConfig:
    settings: dict[str, object] = dict(
        data=[data],
        val=[val],
        output=out,
        epochs=1,
        batch_size=8,
        input_size=SIZE,
        samples_per_epoch=16,
        seed=3,
        checkpoint_dir=out.parent / "ckpt",
        synthetic_per_kind=0,
    )
    settings.update(overrides)
    return TrainConfig(**settings)  # type: ignore[arg-type]


def scores(model: Path) -> np.ndarray:
    clf = OnnxClassifier(model, threads=2)
    rng = np.random.default_rng(0)
    return clf.score(rng.integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8))


def test_tiny_training_run_writes_a_working_model(
    tiny_data: Path, tiny_val: Path, tmp_path: Path
) -> None:
    events: list[ProgressEvent] = []
    result = fit(tiny_config(tiny_data, tiny_val, tmp_path / "m.onnx"), events.append)

    clf = OnnxClassifier(result.model, threads=2)
    assert clf.input_size == SIZE
    assert clf.threshold == pytest.approx(result.threshold, rel=1e-5)
    assert clf.info.name == "endoveil-oob-lite0"
    assert result.metrics["train_samples"] == 16 and result.metrics["val_samples"] == 12
    assert 0 <= result.metrics["val_roc_auc"] <= 1
    assert {e.stage for e in events} == {"load", "train", "validate"}
    assert (tmp_path / "ckpt" / "last.pt").is_file()
    # The exported weights can be fine-tuned again.
    state, size = load_onnx_weights(result.model)
    assert size == SIZE and "_fc.weight" in state


def test_same_seed_same_model_and_resume_continues_exactly(
    tiny_data: Path, tiny_val: Path, tmp_path: Path
) -> None:
    first = fit(tiny_config(tiny_data, tiny_val, tmp_path / "a.onnx", epochs=2))
    second = fit(
        tiny_config(
            tiny_data, tiny_val, tmp_path / "b.onnx", epochs=2, checkpoint_dir=tmp_path / "b"
        )
    )
    np.testing.assert_array_equal(scores(first.model), scores(second.model))

    # Interrupt a third run in its second epoch, then resume it from the checkpoint.
    def stop_in_epoch_2(event: ProgressEvent) -> None:
        if event.stage == "train" and event.epoch == 2:
            raise KeyboardInterrupt

    config = tiny_config(
        tiny_data, tiny_val, tmp_path / "c.onnx", epochs=2, checkpoint_dir=tmp_path / "c"
    )
    with pytest.raises(KeyboardInterrupt):
        fit(config, stop_in_epoch_2)
    config.resume = True
    resumed = fit(config)
    np.testing.assert_array_equal(scores(first.model), scores(resumed.model))
    assert [h["epoch"] for h in resumed.history] == [1, 2]


def test_resume_refuses_other_settings(tiny_data: Path, tiny_val: Path, tmp_path: Path) -> None:
    fit(tiny_config(tiny_data, tiny_val, tmp_path / "a.onnx"))
    with pytest.raises(ModelError, match="other settings"):
        fit(tiny_config(tiny_data, tiny_val, tmp_path / "a.onnx", lr=0.5, resume=True))


def test_fine_tune_from_an_exported_model(tiny_data: Path, tiny_val: Path, tmp_path: Path) -> None:
    base = fit(tiny_config(tiny_data, tiny_val, tmp_path / "base.onnx"))
    tuned = fit(
        tiny_config(
            tiny_data,
            tiny_val,
            tmp_path / "tuned.onnx",
            init=base.model,
            checkpoint_dir=tmp_path / "t",
        )
    )
    assert OnnxClassifier(tuned.model).input_size == SIZE


def test_onnx_matches_torch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = EfficientNetLite0(96, num_classes=1).eval()
    for module in net.modules():  # non-trivial batch-norm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    export_onnx(net, tmp_path / "p.onnx", {"endoveil.threshold": "0.5"})
    images = np.random.default_rng(1).integers(0, 256, (5, 96, 96, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = OnnxWrapper(net)(torch.from_numpy(images)).numpy()
    got = OnnxClassifier(tmp_path / "p.onnx", threads=2).score(images)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_training_needs_both_classes(tmp_path: Path, tiny_data: Path) -> None:
    only_in = tmp_path / "only"
    (only_in / "in_body").mkdir(parents=True)
    for png in sorted((tiny_data / "in_body").rglob("*.png"))[:4]:
        (only_in / "in_body" / png.name).write_bytes(png.read_bytes())
    with pytest.raises(EndoveilError, match="both"):
        fit(
            TrainConfig(data=[only_in], output=tmp_path / "x.onnx", input_size=SIZE, val_fraction=0)
        )
