"""Offline speed beside the decoder's: labels only, exact and fast mode, each as × realtime and
as a ratio to the reference-frame decode speed of the same clip, measured in the same run.

Run: ``.venv/bin/python bench/offline.py`` (``--verify`` also proves the outputs).

Clips: the synthetic one (1080p30 60 s built from still images, `clip.benchmark_clip`) and
two made from the real surgical videos of ../shared/data (1080p30, B-frames, 2 s GOP, about
10% out of body, `clip.surgical_clip`; skipped with the reason where ../shared is absent):
``surgical`` with whole pictures (as x264 and ``ffmpeg`` write by default) and
``surgical-sliced`` with 4 slices a picture (as many hardware recorders write).

The reference is PyAV decoding only the pictures other pictures refer to (``skip_frame`` =
NONREF) with frame threads (``thread_type`` AUTO, FFmpeg's thread count): the least any pass
that looks at the pictures must decode. Two more decodes of the same pictures are printed,
with the ratios to them: as PyAV opens a stream (slice threads, slower on pictures of one
slice), and with endoveil's threads (`endoveil.media.reader.decoder_threads`: 4 frame threads
a core, or one slice thread a core where each picture has one slice a core). Every
measurement runs in a fresh process (model loaded and warmed up first, as the CLI does before
its first file) and is repeated ``--repeat`` times, round robin, so that load from other work
on the machine spreads over all of them; medians are printed.

``--before SRC`` also runs every mode with the endoveil package found under SRC (e.g. an
older checkout's ``src``), interleaved with this one: before/after figures of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODES = {
    "command": "(a) `endoveil anonymize --labels-only`, the whole command",
    "labels": "(a) labels only, default sampling",
    "exact": "(b) exact mode, blur, default preset",
    "fast": "(c) fast mode, blur",
}


# How each reference decode spreads over the cores.
REFERENCES = {
    "auto": "frame threads (thread_type AUTO, FFmpeg's thread count)",
    "pyav": "as PyAV opens a stream (thread_type SLICE)",
    "endoveil": "endoveil's threads",
}


def reference_decode(clip: Path, threads: str = "auto") -> dict[str, float]:
    """Seconds (wall and CPU) PyAV takes to decode the clip's reference pictures
    (skip_frame NONREF; ``threads``: one of `REFERENCES`)."""
    import av

    from endoveil.media.probe import probe
    from endoveil.media.reader import use_decoder_threads

    info = probe(clip) if threads == "endoveil" else None
    started, cpu = time.perf_counter(), _cpu_s()
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        if info is not None:
            use_decoder_threads(stream, info)
        elif threads == "auto":
            stream.thread_type = "AUTO"
        stream.codec_context.skip_frame = "NONREF"
        for _ in container.decode(stream):
            pass
    return {"elapsed_s": time.perf_counter() - started, "cpu_s": _cpu_s() - cpu}


def _cpu_s() -> float:
    """CPU seconds this process used so far, all threads (FFmpeg's and ONNX Runtime's too)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_mode(clip: Path, mode: str, verify: bool) -> dict[str, object]:
    """One whole job on ``clip`` as a user runs it (the model already loaded)."""
    import numpy as np

    from endoveil.anonymize.offline import PipelineConfig, run_pipeline
    from endoveil.detect.classifier import OnnxClassifier

    config = {
        "labels": PipelineConfig(labels_only=True),
        "exact": PipelineConfig(mode="exact"),
        "fast": PipelineConfig(mode="fast"),
    }[mode]
    classifier = OnnxClassifier()
    classifier.score(np.zeros((1, classifier.input_size, classifier.input_size, 3), np.uint8))
    with tempfile.TemporaryDirectory() as out:
        cpu = _cpu_s()
        result = run_pipeline(clip, Path(out), config, classifier)
        facts: dict[str, object] = {
            "elapsed_s": result.elapsed_s,
            "cpu_s": _cpu_s() - cpu,
            "duration_s": result.labels.video.duration_s,
            "segments": len(result.labels.segments),
            "oob_s": result.labels.oob_seconds,
            "scored": len(result.labels),
            "p_out_sha": _digest(result.labels),
        }
        if result.render is not None:
            facts["mode_used"] = result.mode
            facts["reencoded"] = result.render.inbody_frames_reencoded
        if verify and result.video_path is not None:
            from endoveil.anonymize.verify import verify as verify_files

            report = verify_files(clip, result.video_path, result.labels)
            facts["verify"] = "OK" if report.ok else str(report.problems[:3])
    return facts


def _digest(labels: object) -> str:
    """A fingerprint of which frames were scored and their scores: before and after must agree."""
    import hashlib

    index, p_out = labels.index, labels.p_out  # type: ignore[attr-defined]
    return hashlib.sha256(index.tobytes() + p_out.tobytes()).hexdigest()[:12]


def _in_process(args: list[str], src: Path | None) -> dict[str, object]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), str(HERE)])
    if args[0] == "run" and args[2] == "command":
        return _command(Path(args[1]), env)
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _command(clip: Path, env: dict[str, str]) -> dict[str, object]:
    """The CLI as a user runs it: interpreter start-up, imports, model loading included."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "endoveil", "anonymize", str(clip), "-o", out]
        started = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([*command, "--labels-only", "-q"], env=env, check=True, capture_output=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        elapsed = time.perf_counter() - started
        from endoveil.detect.labels import Labels

        labels = Labels.load(Path(out) / f"{clip.stem}.labels.json")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {
        "elapsed_s": elapsed,
        "cpu_s": cpu,
        "duration_s": labels.video.duration_s,
        "segments": len(labels.segments),
        "oob_s": labels.oob_seconds,
        "scored": len(labels),
        "p_out_sha": _digest(labels),
    }


def _clips(which: str) -> list[tuple[str, Path | None, str]]:
    from clip import benchmark_clip, surgical_clip

    clips: list[tuple[str, Path | None, str]] = []
    if which in ("all", "surgical"):
        path, origin = surgical_clip()
        clips.append(("surgical", path, origin))
    if which in ("all", "surgical-sliced"):
        path, origin = surgical_clip(slices=4)
        clips.append(("surgical-sliced", path, origin))
    if which in ("all", "synthetic"):
        path, origin = benchmark_clip()
        clips.append(("synthetic", path, origin))
    return clips


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--verify", action="store_true", help="verify each output video")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (medians shown)")
    parser.add_argument(
        "--clip", choices=("all", "surgical", "surgical-sliced", "synthetic"), default="all"
    )
    parser.add_argument(
        "--modes", default="command,labels,exact,fast", help="comma-separated: " + ", ".join(MODES)
    )
    parser.add_argument("--before", type=Path, help="also run the endoveil package under SRC")
    parser.add_argument("--worker", nargs=3, metavar=("KIND", "CLIP", "MODE"), help="internal")
    args = parser.parse_args()

    if args.worker:
        kind, clip, mode = args.worker
        if kind == "decode":
            print(json.dumps(reference_decode(Path(clip), mode)))
        else:
            print(json.dumps(run_mode(Path(clip), mode, args.verify)))
        return 0

    modes = [m for m in args.modes.split(",") if m]
    versions: list[tuple[str, Path | None]] = [("after", None)]
    if args.before is not None:
        versions.insert(0, ("before", args.before.resolve()))
    load = os.getloadavg()[0]
    print(f"load average at start: {load:.1f} on {os.cpu_count()} cores")
    for name, clip, origin in _clips(args.clip):
        if clip is None:
            print(f"{name} clip: {origin}")
            continue
        print(f"\n{name} clip: {clip.name} ({origin})")
        runs: dict[str, list[dict[str, object]]] = {}
        for _ in range(args.repeat):  # round robin: load spreads over every series
            for threads in REFERENCES:
                facts = _in_process(["decode", str(clip), threads], None)
                runs.setdefault(f"decode/{threads}", []).append(facts)
            for mode in modes:
                for version, src in versions:
                    worker = ["run", str(clip), mode]
                    facts = _in_process(worker + (["--verify"] if args.verify else []), src)
                    runs.setdefault(f"{mode}/{version}", []).append(facts)
        _report(runs, modes, versions)
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")
    return 0


def _report(
    runs: dict[str, list[dict[str, object]]],
    modes: list[str],
    versions: list[tuple[str, Path | None]],
) -> None:
    def median(series: list[dict[str, object]], key: str) -> float:
        return statistics.median(float(r[key]) for r in series)  # type: ignore[arg-type]

    references = {k.split("/")[1]: v for k, v in runs.items() if k.startswith("decode/")}
    first = next(iter(v for k, v in runs.items() if not k.startswith("decode/")), None)
    duration = float(first[0]["duration_s"]) if first else 0.0  # type: ignore[arg-type]
    for threads, series in references.items():
        decode = median(series, "elapsed_s")
        print(
            f"reference-frame decode (PyAV, skip_frame NONREF, {REFERENCES[threads]}): "
            f"{duration / decode:5.1f}× realtime ({decode:.2f} s, median of {len(series)}; "
            f"CPU {median(series, 'cpu_s'):.2f} s)"
        )
    for mode in modes:
        for version, _src in versions:
            series = runs[f"{mode}/{version}"]
            elapsed, cpu = median(series, "elapsed_s"), median(series, "cpu_s")
            last = series[-1]
            each = ", ".join(f"{float(r['elapsed_s']):.2f}" for r in series)  # type: ignore[arg-type]
            label = f"{MODES[mode]}{' [' + version + ']' if len(versions) > 1 else ''}"
            ratios = "; ".join(
                f"{median(ref, 'elapsed_s') / elapsed:.2f} of the decode speed"
                f"{'' if threads == 'auto' else ' (' + threads + ')'}, CPU "
                f"{median(ref, 'cpu_s') / cpu:.2f} of decoding's"
                for threads, ref in references.items()
            )
            extra = ""
            if "mode_used" in last:
                extra = f", mode {last['mode_used']}, in-body frames re-encoded {last['reencoded']}"
            if "verify" in last:
                extra += f", verify {last['verify']}"
            print(
                f"{label}: {duration / elapsed:5.1f}× realtime ({elapsed:.2f} s, runs "
                f"{each}), {ratios}; CPU {cpu:.2f} s; {last['segments']} OOB segment(s), "
                f"{float(last['oob_s']):.1f} s hidden, {last['scored']} frames scored "  # type: ignore[arg-type]
                f"[scores {last['p_out_sha']}]{extra}"
            )


if __name__ == "__main__":
    sys.exit(main())
