"""Offline speed: × realtime of labels only, exact mode and fast mode on a 1080p30 60 s clip.

Run: ``.venv/bin/python bench/offline.py`` (add ``--verify`` to also prove the outputs).
Each figure is the whole job as a user runs it (probe, detection, writing), measured once
after a warm-up of the model.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from clip import SECONDS, benchmark_clip
from endoveil.anonymize.offline import PipelineConfig, run_pipeline
from endoveil.anonymize.verify import verify
from endoveil.detect.classifier import OnnxClassifier

RUNS = {
    "(a) labels only, default sampling": PipelineConfig(labels_only=True),
    "(b) exact mode, blur, default preset": PipelineConfig(mode="exact"),
    "(c) fast mode, blur": PipelineConfig(mode="fast"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--verify", action="store_true", help="verify each output video")
    args = parser.parse_args()

    t0 = time.perf_counter()
    clip, origin = benchmark_clip()
    print(f"clip: {clip.name} ({origin}), ready in {time.perf_counter() - t0:.0f} s")
    classifier = OnnxClassifier()
    classifier.score(
        __import__("numpy").zeros((1, classifier.input_size, classifier.input_size, 3), "uint8")
    )
    for name, config in RUNS.items():
        with tempfile.TemporaryDirectory() as out:
            result = run_pipeline(clip, Path(out), config, classifier)
            speed = SECONDS / result.elapsed_s
            extra = ""
            if result.render is not None:
                extra = (
                    f", mode {result.mode}, in-body frames re-encoded "
                    f"{result.render.inbody_frames_reencoded}"
                )
            print(
                f"{name}: {speed:5.1f}× realtime ({result.elapsed_s:.1f} s), "
                f"{len(result.labels.segments)} OOB segment(s), "
                f"{result.labels.oob_seconds:.1f} s hidden{extra}"
            )
            if args.verify and result.video_path is not None:
                report = verify(clip, result.video_path, result.labels)
                print(f"    verify: {'OK' if report.ok else report.problems[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
