"""Stress test on the validation images: does the model keep its answer under the nuisances
that must not decide it (black borders, circular fields, console bars and text, darkness,
blur, compression)? Prints OOB recall and in-body specificity at the model's threshold, per
perturbation, both classes perturbed alike.

Run: ``.venv/bin/python bench/robustness.py [--model PATH] [--data ../shared/data/val]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from endoveil.detect.classifier import OnnxClassifier, resize_for_model

Image = npt.NDArray[np.uint8]
REPO = Path(__file__).resolve().parents[1]


def letterbox(image: Image, aspect: float) -> Image:
    """Centre ``image`` on a black canvas of the given width/height ratio."""
    h, w = image.shape[:2]
    if w / h < aspect:
        canvas = np.zeros((h, int(h * aspect), 3), np.uint8)
        x = (canvas.shape[1] - w) // 2
        canvas[:, x : x + w] = image
    else:
        canvas = np.zeros((int(w / aspect), w, 3), np.uint8)
        y = (canvas.shape[0] - h) // 2
        canvas[y : y + h] = image
    return canvas


def circle(image: Image) -> Image:
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, (w // 2, h // 2), int(0.45 * min(h, w)), 255, -1)
    out = image.copy()
    out[mask == 0] = 0
    return out


def console(image: Image) -> Image:
    out = image.copy()
    h, w = out.shape[:2]
    bar = max(2, h // 10)
    cv2.rectangle(out, (0, h - bar), (w, h), (20, 20, 30), -1)
    cv2.rectangle(out, (w // 10, h - bar + 2), (w // 10 + bar, h - 2), (40, 160, 220), -1)
    cv2.putText(
        out,
        "ARM 1  ENERGY 30W",
        (w // 4, h - bar // 3),
        cv2.FONT_HERSHEY_SIMPLEX,
        max(0.3, h / 800),
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    return out


def jpeg(image: Image, quality: int = 15) -> Image:
    _, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


PERTURBATIONS: dict[str, Callable[[Image], Image]] = {
    "none": lambda im: im,
    "letterbox 16:9": lambda im: letterbox(im, 16 / 9),
    "pillarbox 4:3 in 21:9": lambda im: letterbox(im, 21 / 9),
    "circular field": circle,
    "console bar + text": console,
    "dark (x0.3)": lambda im: (im * 0.3).astype(np.uint8),
    "overexposed (x2)": lambda im: np.clip(im * 2.0, 0, 255).astype(np.uint8),
    "blur": lambda im: cv2.GaussianBlur(im, (0, 0), max(im.shape[:2]) / 100),
    "jpeg q15": jpeg,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "val")
    args = parser.parse_args()
    clf = OnnxClassifier(args.model, threads=2)
    files = [(p, 1) for p in sorted((args.data / "out_of_body").rglob("*.*"))]
    files += [(p, 0) for p in sorted((args.data / "in_body").rglob("*.*"))]
    images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p, _ in files]
    y = np.array([label for _, label in files], bool)
    print(f"{len(y)} images ({y.sum()} OOB), threshold {clf.threshold:.4g}")
    print(f"{'perturbation':<24} {'OOB recall':>10} {'specificity':>11}")
    for name, perturb in PERTURBATIONS.items():
        batch = np.stack(
            [
                resize_for_model(cv2.cvtColor(perturb(im), cv2.COLOR_BGR2RGB), clf.input_size)
                for im in images
            ]
        )
        p = np.concatenate([clf.score(batch[i : i + 32]) for i in range(0, len(batch), 32)])
        pred = p >= clf.threshold
        print(f"{name:<24} {pred[y].mean():>10.4f} {(~pred[~y]).mean():>11.4f}")


if __name__ == "__main__":
    main()
