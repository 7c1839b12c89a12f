"""Tiny generated image folders: in-body = reddish tissue in a circular field; out-of-body =
grey/blue rooms. Sizes vary so the full resize path is exercised."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest


def _tissue(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = rng.normal(0, 30, (h // 8 + 1, w // 8 + 1, 3)).astype(np.float32)
    base = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    image = np.clip(base + np.array([60, 60, 190], np.float32), 0, 255).astype(np.uint8)  # BGR
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, (w // 2, h // 2), int(min(h, w) * 0.48), 255, -1)
    image[mask == 0] = 0
    return image


def _room(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    image = np.full((h, w, 3), rng.integers(120, 200), np.uint8)
    for _ in range(6):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.rectangle(image, (x, y), (x + w // 5, y + h // 4), colour, -1)
    return image


def make_image_folder(root: Path, per_source: int = 4, seed: int = 0) -> Path:
    """``root/in_body/{a,b}/*.png`` and ``root/out_of_body/{c,d}/*.png``."""
    rng = np.random.default_rng(seed)
    for cls, sources, draw in (("in_body", "ab", _tissue), ("out_of_body", "cd", _room)):
        for source in sources:
            folder = root / cls / f"{cls[:2]}_{source}"
            folder.mkdir(parents=True)
            for i in range(per_source):
                h, w = int(rng.integers(60, 120)), int(rng.integers(80, 160))
                cv2.imwrite(str(folder / f"{i}.png"), draw(rng, h, w))
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("tiny") / "train")


@pytest.fixture(scope="session")
def tiny_val(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("tiny") / "val", per_source=3, seed=1)
