"""Synthetic near-field pictures: deterministic per seed, every kind drawn, held-out ranges
disjoint from training's, and wired into training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from endoveil.train import nearfield as nf


def _sources() -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(0)
    inside = [rng.integers(0, 256, (90, 120, 3), dtype=np.uint8) for _ in range(3)]
    outside = [rng.integers(0, 256, (60, 80, 3), dtype=np.uint8) for _ in range(3)]
    return inside, outside


def test_same_seed_same_pictures_other_seed_others() -> None:
    inside, outside = _sources()
    a = nf.synthesize(inside, outside, 2, seed=7, size=48)
    b = nf.synthesize(inside, outside, 2, seed=7, size=48)
    c = nf.synthesize(inside, outside, 2, seed=8, size=48)
    assert [(k, lab) for k, lab, _ in a] == [(k, lab) for k, lab, _ in b]
    assert all(np.array_equal(x, y) for (_, _, x), (_, _, y) in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for (_, _, x), (_, _, y) in zip(a, c, strict=True))


def test_every_kind_is_drawn_with_its_label() -> None:
    inside, outside = _sources()
    made = nf.synthesize(inside, outside, 1, seed=0, size=40)
    kinds = {k: lab for k, lab, _ in made}
    assert kinds == {
        **{k: 1 for k in nf.OUT_OF_BODY_KINDS},
        "closeup_out": 1,
        **{k: 0 for k in nf.IN_BODY_KINDS},
    }
    for _k, _lab, image in made:
        assert image.shape == (40, 40, 3) and image.dtype == np.uint8
    # A picture keeps its draw when counts change (each has its own seeded generator).
    more = nf.synthesize(inside, outside, 3, seed=0, size=40)
    assert np.array_equal(made[0][2], more[0][2])


def test_held_out_ranges_share_no_value_with_training() -> None:
    def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return a[0] < b[1] and b[0] < a[1]

    train, held = nf.TRAIN_RANGES, nf.HELDOUT_RANGES
    for name in ("drape_hues", "glove_hues"):
        for h in getattr(held, name):
            assert not any(overlap(h, t) for t in getattr(train, name)), (name, h)
    for name in ("zoom", "defocus", "veil"):
        assert not overlap(getattr(held, name), getattr(train, name)), name
    for name in ("folds", "glints"):
        assert getattr(held, name)[0] > getattr(train, name)[1], name  # inclusive ints


def test_training_adds_the_synthetic_pictures(
    tiny_data: Path, tiny_val: Path, tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    from endoveil.train.fit import TrainConfig, fit

    config = TrainConfig(
        data=[tiny_data],
        val=[tiny_val],
        output=tmp_path / "m.onnx",
        epochs=1,
        batch_size=8,
        input_size=64,
        samples_per_epoch=8,
        synthetic_per_kind=1,
        checkpoint_dir=tmp_path / "ckpt",
    )
    result = fit(config)
    kinds = len(nf.OUT_OF_BODY_KINDS) + 1 + len(nf.IN_BODY_KINDS)
    assert result.metrics["train_samples"] == 16 + kinds


def test_the_recipe_names_synthetic_pictures_only_when_used() -> None:
    pytest.importorskip("torch")
    from endoveil.train.fit import TrainConfig, _recipe

    plain = TrainConfig(data=[Path("d")], output=Path("m.onnx"))
    assert "synthetic_per_kind" not in _recipe(plain)  # the shipped model's metadata, unchanged
    used = TrainConfig(data=[Path("d")], output=Path("m.onnx"), synthetic_per_kind=64)
    assert _recipe(used)["synthetic_per_kind"] == "64"
