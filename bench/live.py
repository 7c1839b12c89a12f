"""Live speed: sustained fps, added latency and dropped frames with recording on.

Run: ``.venv/bin/python bench/live.py [--seconds 20]``. A 720p and a 1080p 30 fps clip are
played in real time as the source (decoding them is part of the cost, as a network stream's
would be); every frame is scored, anonymized where needed and recorded to MP4. Latency is
measured from the moment a frame arrives to its hand-off to the sinks.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from clip import benchmark_clip
from endoveil.detect.classifier import OnnxClassifier
from endoveil.live.loop import LiveConfig, LiveSession
from endoveil.live.sinks import RecordSink
from endoveil.live.sources import FileSource


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=20, help="length of each run")
    parser.add_argument("--preset", default="superfast", help="libx264 preset of the recording")
    args = parser.parse_args()
    classifier = OnnxClassifier()
    for width, height in ((1280, 720), (1920, 1080)):
        clip, origin = benchmark_clip(width, height, args.seconds)
        with tempfile.TemporaryDirectory() as out:
            sink = RecordSink(Path(out) / "live.mp4", preset=args.preset)
            session = LiveSession(FileSource(clip), classifier, [sink], LiveConfig())
            report = session.run()
        sink_stats = report.sinks[sink.name]
        dropped = report.capture_dropped + sink_stats.dropped
        print(
            f"{height}p30 ({origin}), recording ({args.preset}): "
            f"{report.fps:.1f} fps sustained over {report.duration_s:.1f} s, "
            f"added latency p50 {report.latency_percentile(50):.1f} ms / "
            f"p99 {report.latency_percentile(99):.1f} ms, "
            f"dropped {dropped} of {report.frames_captured} "
            f"(capture {report.capture_dropped}, recording {sink_stats.dropped}), "
            f"not scored {report.frames_not_scored}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
