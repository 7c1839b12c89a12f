"""Speed of the shipped model with ONNX Runtime: ms per frame at batch 1 and batch 32.

Run: ``.venv/bin/python bench/model.py [--model PATH] [--threads 2] [--seconds 5]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from endoveil.detect.classifier import OnnxClassifier


def ms_per_frame(clf: OnnxClassifier, batch: int, seconds: float) -> float:
    """Median ms per frame over repeated runs of one batch (after a warm-up)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch, clf.input_size, clf.input_size, 3), dtype=np.uint8)
    for _ in range(3):
        clf.score(images)
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        start = time.perf_counter()
        clf.score(images)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000 / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None, help="ONNX model (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    clf = OnnxClassifier(args.model, threads=args.threads)
    print(
        f"model {clf.path.name} ({clf.info.name} {clf.info.version}), input {clf.input_size}²,"
        f" {args.threads} threads"
    )
    for batch in (1, 32):
        print(f"batch {batch:>2}: {ms_per_frame(clf, batch, args.seconds):.2f} ms/frame")


if __name__ == "__main__":
    main()
