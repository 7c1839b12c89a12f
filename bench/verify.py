"""Both error rates of `verify`: false alarms on correct outputs (every mode × action) and
missed tampers (frames shown in the wrong place, mirrored, shifted, dropped, duplicated,
retimed, a range put back into a cut output, tags, NAL units, an extra stream).

Videos: every ``*/videos/*.mp4`` of ../shared/data with its ``.intervals.csv`` as the labels,
plus two generated clips (drawn texture; real images of ../shared/data held 3 frames each,
out of body in the middle). Prints one row per video and the totals.

Run: ``.venv/bin/python bench/verify.py [--data ../shared/data] [--no-shared]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

from endoveil.anonymize.offline import PipelineConfig, run_pipeline
from endoveil.anonymize.render import ACTIONS
from endoveil.anonymize.verify import verify
from endoveil.detect.formats import mask_from_intervals, read_intervals_csv
from endoveil.detect.labels import Labels, VideoSummary, segments_from_mask
from endoveil.media.probe import VideoInfo, probe
from endoveil.media.writer import VideoWriter

Image = npt.NDArray[np.uint8]
ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent.parent / "shared" / "data"
sys.path.insert(0, str(ROOT.parent / "tests"))  # the tamper suite's own tools
from tamper import add_stream_copy, originals_and_blurred, plant_nals  # noqa: E402


def labels_for(info: VideoInfo, hidden: npt.NDArray[np.bool_], action: str) -> Labels:
    video = VideoSummary(
        info.duration_s, float(info.fps), info.frame_count, info.width, info.height
    )
    segments = segments_from_mask(hidden, info.frame_times, info.duration_s)
    empty = Labels.empty(video)
    return Labels(
        video,
        empty.index,
        empty.time_s,
        empty.p_out,
        segments,
        extra={"output": {"action": action}},
    )


def mask_from_csv(info: VideoInfo, csv: Path) -> npt.NDArray[np.bool_]:
    return mask_from_intervals(read_intervals_csv(csv), info.frame_times)


def generated(folder: Path, data: Path | None) -> list[tuple[Path, npt.NDArray[np.bool_]]]:
    """A drawn clip and, with the shared data, a clip of real images (OOB in the middle)."""
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.normal(0, 40, (61, 81, 3)).astype(np.float32), (320, 240))
    drawn = [
        np.clip(np.roll(base, 2 * i, axis=1) + (200 if 25 <= i < 50 else 60), 0, 255).astype(
            np.uint8
        )
        for i in range(75)
    ]
    index = np.arange(75)
    clips = [(write(folder / "drawn.mp4", drawn), (index >= 25) & (index < 50))]
    if data is not None:
        images = []
        for kind in ("in_body", "out_of_body", "in_body"):
            files = sorted((data / "val" / kind).rglob("*.jpg"))[::7][:8]
            images += [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
        frames = [cv2.resize(im, (640, 360)) for im in images for _ in range(3)]
        hidden = np.zeros(len(frames), bool)
        hidden[24:48] = True
        clips.append((write(folder / "real-mix.mp4", frames), hidden))
    return clips


def write(path: Path, frames: list[Image]) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def encode(path: Path, info: VideoInfo, pictures: list[tuple[Image, int]]) -> Path:
    """Pictures at source frame slots (pts from the slot's time; slots may be fractional)."""
    h, w = pictures[0][0].shape[:2]
    tb = info.time_base
    step = info.frame_durations()
    with VideoWriter(
        path, width=w & ~1, height=h & ~1, time_base=tb, fps=info.fps or Fraction(25)
    ) as writer:
        for image, slot in pictures:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            whole = int(min(slot, info.frame_count - 1))
            frame.pts = int(info.frame_pts[whole] - info.start_pts) + int(
                (slot - whole) * step[whole]
            )
            writer.write(frame)
    return path


Tamper = Callable[[list[Image], list[Image], npt.NDArray[np.bool_]], list[tuple[Image, float]]]


def in_hidden(edit: Callable[[int, list[Image]], Image]) -> Tamper:
    def tamper(orig: list[Image], good: list[Image], hide: npt.NDArray[np.bool_]):  # type: ignore[no-untyped-def]
        return [(edit(i, orig) if hide[i] else good[i], i) for i in range(len(good))]

    return tamper


def neighbour(offset: int) -> Callable[[int, list[Image]], Image]:
    def pick(i: int, orig: list[Image]) -> Image:
        j = i + offset if i + offset < len(orig) else i - offset
        return orig[min(max(j, 0), len(orig) - 1)]

    return pick


def one_slot_late(o: list[Image], g: list[Image], h: npt.NDArray[np.bool_]) -> list:  # type: ignore[type-arg]
    keep = len(g) // 2
    return [(g[i], i) for i in range(keep + 1)] + [(g[i], i + 1) for i in range(keep, len(g) - 1)]


TAMPERS: dict[str, tuple[Tamper, bool]] = {
    # name: (build, changes hidden frames only — then every one of them must be flagged)
    "neighbour+1": (in_hidden(neighbour(1)), True),
    "neighbour+4": (in_hidden(neighbour(4)), True),
    "mirror": (in_hidden(lambda i, o: o[i][:, ::-1]), True),
    "shift-16px": (in_hidden(lambda i, o: np.roll(o[i], 16, axis=1)), True),
    "dropped": (lambda o, g, h: [(g[i], i) for i in range(len(g)) if i != len(g) // 2], False),
    "duplicated": (one_slot_late, False),
    "retimed": (lambda o, g, h: [(g[i], i * 1.1) for i in range(len(g))], False),
}


def plant(correct: Path, path: Path, how: str, original: Path) -> Path:
    """``correct`` with identifying data planted (`tamper`, the tamper suite's own tools)."""
    if how == "tags":
        return add_stream_copy(correct, path, original, kind="none", tags={"title": "Jane Doe"})
    if how == "extra-stream":
        return add_stream_copy(correct, path, original, kind="video")
    return plant_nals(correct, path, (6, 12, 30))


def bench_video(video: Path, hidden: npt.NDArray[np.bool_], work: Path) -> dict[str, object]:
    info = probe(video)
    row: dict[str, object] = {"video": video.name, "frames": info.frame_count}
    # Clean suite: every mode × action must pass.
    false_alarms, runs = [], 0
    correct = None
    for mode in ("exact", "fast"):
        for action in ACTIONS:
            out = work / f"{mode}-{action}"
            out.mkdir(exist_ok=True)
            labels = labels_for(info, hidden, action)
            if action == "cut" and hidden.all():
                continue  # nothing left to write
            result = run_pipeline(
                video, out, PipelineConfig(mode=mode, action=action, force=True), None,  # type: ignore[arg-type]
                labels=labels,
            )  # fmt: skip
            assert result.video_path is not None
            runs += 1
            report = verify(video, result.video_path, result.labels_paths[0])
            if not report.ok:
                false_alarms.append(f"{mode}/{action}: {report.problems[:2]}")
            if mode == "exact" and action == "blur":
                correct = result.video_path
    row["clean_runs"], row["false_alarms"] = runs, false_alarms
    # Tamper suite.
    caught: list[str] = []
    missed: list[str] = []
    tampers, frames_flagged, frames_tampered = 0, 0, 0
    labels = labels_for(info, hidden, "blur")
    originals, good = originals_and_blurred(video, hidden, info)
    for name, (build, hidden_only) in TAMPERS.items():
        if hidden_only and not hidden.any():
            continue
        bad = encode(work / f"{name}.mp4", info, build(originals, good, hidden))  # type: ignore[arg-type]
        report = verify(video, bad, labels)
        tampers += 1
        (caught if not report.ok else missed).append(name)
        if hidden_only:
            frames_tampered += int(hidden.sum())
            frames_flagged += report.problem_count
    if hidden.any() and not hidden.all():
        cut = labels_for(info, hidden, "cut")
        kept = [originals[i] for i in range(len(originals)) if not hidden[i]]
        start = int(np.flatnonzero(hidden)[0])
        back = originals[start : start + 5]
        slots = kept[:start] + back + kept[start:]
        bad = encode(work / "reinserted.mp4", info, [(p, i) for i, p in enumerate(slots)])
        tampers += 1
        (caught if not verify(video, bad, cut).ok else missed).append("reinserted")
    assert correct is not None
    pinned = Labels.load(correct.parent / f"{video.stem}.labels.json")
    pinned.extra["output"].pop("video_sha256", None)  # judge the content
    for how in ("tags", "nal-units", "extra-stream"):
        bad = plant(correct, work / f"{how}.mp4", how, video)
        tampers += 1
        (caught if not verify(video, bad, pinned).ok else missed).append(how)
    row["tampers"], row["caught"], row["missed"] = tampers, caught, missed
    row["frames_tampered"], row["frames_flagged"] = frames_tampered, frames_flagged
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--no-shared", action="store_true", help="generated clips only")
    parser.add_argument("--only", default="", help="only videos whose name contains this")
    args = parser.parse_args()
    data = None if args.no_shared or not (args.data / "README.md").is_file() else args.data
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="endoveil-bench-verify-"))
    try:
        videos = generated(work, data)
        if data is not None:
            for path in sorted(data.glob("*/videos/*.mp4")):
                info = probe(path)
                videos.append((path, mask_from_csv(info, path.with_suffix(".intervals.csv"))))
        totals = dict.fromkeys(("runs", "alarms", "tampers", "caught", "tampered", "flagged"), 0)
        print(f"{'video':34} {'clean runs':>10} {'false alarms':>12} {'tampers caught':>15} "
              f"{'tampered hidden frames flagged':>31}")  # fmt: skip
        for path, hidden in videos:
            if args.only not in path.name:
                continue
            folder = work / path.stem
            folder.mkdir()
            row = bench_video(path, hidden, folder)
            alarms, caught = row["false_alarms"], row["caught"]
            assert isinstance(alarms, list) and isinstance(caught, list)
            print(
                f"{path.name:34} {row['clean_runs']:>10} {len(alarms):>12} "
                f"{len(caught):>7} of {row['tampers']:<5} "
                f"{row['frames_flagged']:>15} of {row['frames_tampered']}"
            )
            for alarm in alarms:
                print(f"    false alarm: {alarm}")
            if row["missed"]:
                print(f"    missed: {', '.join(row['missed'])}")  # type: ignore[arg-type]
            totals["runs"] += int(row["clean_runs"])  # type: ignore[call-overload]
            totals["alarms"] += len(alarms)
            totals["tampers"] += int(row["tampers"])  # type: ignore[call-overload]
            totals["caught"] += len(caught)
            totals["tampered"] += int(row["frames_tampered"])  # type: ignore[call-overload]
            totals["flagged"] += int(row["frames_flagged"])  # type: ignore[call-overload]
        print(
            f"\nfalse alarms: {totals['alarms']} of {totals['runs']} correct outputs; "
            f"tampers caught: {totals['caught']} of {totals['tampers']}; "
            f"tampered hidden frames flagged: {totals['flagged']} of {totals['tampered']} "
            f"({time.perf_counter() - started:.0f} s)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
