"""Batch throughput: hours of video per hour for a batch of cases, fast mode, 1 and 2 workers.

Run: ``.venv/bin/python bench/cases.py`` (``--cases 4 --segments 3 --seconds 30 --height 720``
are the defaults; ``--verify`` also proves every output, ``--cluster`` adds a run on a Dask
LocalCluster with 2 worker processes).

Each case is a folder of segments as a recorder splits them: H.264 720p30 from the same
encoder settings, so they join by stream copy; each segment shows 8 s out of body. The clip is
built from ../shared/data images when present (see bench/clip.py) and cached in bench/.cache.
The figure is the whole batch as a user runs it — discovery, merge, detection, writing,
checksums, mapping log — divided into the hours of video it processed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from clip import CACHE, benchmark_clip
from endoveil.anonymize.offline import PipelineConfig
from endoveil.cases.batch import BatchSettings, Runner, run_batch
from endoveil.cases.discover import discover_cases


def build_archive(cases: int, segments: int, seconds: int, height: int) -> tuple[Path, str]:
    """bench/.cache/cases_<...>/: ``cases`` folders of ``segments`` segment files each."""
    width = height * 16 // 9
    clip, origin = benchmark_clip(width, height, seconds)
    root = CACHE / f"cases_{cases}x{segments}x{seconds}s_{height}p"
    for c in range(cases):
        folder = root / f"Patient {c + 1:02d} Ünïcode"
        folder.mkdir(parents=True, exist_ok=True)
        for s in range(segments):
            segment = folder / f"VID{s + 1}.MP4"
            if not segment.exists():
                try:
                    os.link(clip, segment)  # the same recording settings: joins by copy
                except OSError:
                    shutil.copyfile(clip, segment)
    return root, origin


def run(root: Path, workers: int, verify: bool, runner: Runner | None = None) -> None:
    cases = discover_cases(root).cases
    with tempfile.TemporaryDirectory() as tmp:
        settings = BatchSettings(
            output_root=Path(tmp) / "out",
            log=Path(tmp) / "private" / "mapping-log.csv",
            pipeline=PipelineConfig(mode="fast"),
            verify=verify,
            workers=workers,
            shared_work=runner is not None,
        )
        report = run_batch(cases, settings, runner=runner)
    failed = [e for e in report.entries if e.status != "done"]
    merges = sorted({e.merge for e in report.entries})
    label = "Dask LocalCluster, 2 workers" if runner else f"{workers} worker(s)"
    print(
        f"{label:30}: {report.video_hours_done * 60:5.1f} min of video in "
        f"{report.elapsed_s:6.1f} s = {report.hours_per_hour:6.1f} h of video per hour "
        f"(merge: {', '.join(merges)}; failed: {len(failed)})"
    )
    for entry in failed:
        print(f"    case {entry.index}: {entry.detail}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--segments", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=30, help="length of one segment")
    parser.add_argument("--height", type=int, default=720, choices=(720, 1080))
    parser.add_argument("--verify", action="store_true", help="verify every output")
    parser.add_argument("--cluster", action="store_true", help="also run on a LocalCluster")
    args = parser.parse_args()

    t0 = time.perf_counter()
    root, origin = build_archive(args.cases, args.segments, args.seconds, args.height)
    print(
        f"batch: {args.cases} cases × {args.segments} segments × {args.seconds} s, "
        f"{args.height}p30 H.264 ({origin}); ready in {time.perf_counter() - t0:.0f} s; "
        f"{os.cpu_count()} CPU(s), fast mode{', verified' if args.verify else ''}"
    )
    for workers in (1, 2):
        run(root, workers, args.verify)
    if args.cluster:
        import distributed

        from endoveil.cases.cluster import run_on_cluster

        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=None
        ) as cluster:
            run(root, 1, args.verify, run_on_cluster(cluster.scheduler_address))
    return 0


if __name__ == "__main__":
    sys.exit(main())
