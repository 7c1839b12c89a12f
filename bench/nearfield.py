"""Near-field out-of-body benchmark: scope extractions, and hard videos that stay in body.

Builds H.264 videos from material disjoint from training and runs the real labels-only pipeline
on them (`endoveil.detect.scan.scan_video`, default sampling and post-processing):

- **extraction sequences** at several sizes and frame rates: in body → out through the trocar
  → several seconds of near field outside (cap, gloved fingers, skin, drapes, towels, close
  defocused views of real out-of-body pictures, sometimes the room) → in through the trocar →
  in body;
- **hard in-body videos**, wholly in body: smoke/white-out, red-out, fog after insertion,
  gauze or a specimen bag, instruments close to the lens, tissue close up and out of focus;
  and the same effects after 6 s of the normal view (``after_*``), as in a real recording where
  the video's own in-body baseline is known when the effect starts (counted apart: the effect's
  frames, and the normal frames before them).

Sources: in body, the *validation* split of ../shared/data only (the SurgicalSAM2 clip,
YouTube video 1035614, nasal GIF 43); out of body, validation pictures zoomed 3–10× and
defocused, and `endoveil.train.nearfield` drawings with `HELDOUT_RANGES` (ranges no training
draw comes from) and seeds from 10 000 on (training uses its own seed, 0 by default). Frames
inside the trocar tube are "don't care": hiding them is neither a leak nor a loss.

It prints, per video and in total: frame-level ROC AUC on the scored frames, out-of-body
frames leaked after post-processing, in-body frames hidden, and excursions fully hidden.
`realworld.py` asks the same questions of real public footage (hard in-body clips, labelled
frames of real laparoscopic recordings, extractions through real near-field views).

Run: ``.venv/bin/python bench/nearfield.py [--model PATH] [--sample-every N] [--no-memory]
[--silent-classifier] [--live]`` (``--no-memory``: post-processing as in v0.1, scores alone,
for the before/after comparison; ``--silent-classifier``: a stress test of the memory alone,
every out-of-body and trocar score lowered below the hysteresis floor, as if the model never
fired; ``--live``: the frames live anonymization hides, each video played to it in real time)
(videos are cached in bench/.cache/nearfield/).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

from endoveil.api import live_frames
from endoveil.detect.classifier import OnnxClassifier
from endoveil.detect.labels import mask_from_segments
from endoveil.detect.scan import scan_video
from endoveil.detect.temporal import TemporalParams, postprocess
from endoveil.media.probe import probe
from endoveil.train import nearfield as nf
from endoveil.train.metrics import roc_auc

Image = npt.NDArray[np.uint8]
ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache" / "nearfield"
VAL = ROOT.parent.parent / "shared" / "data" / "val"
VERSION = "4"  # bump when the videos change, so the cache is rebuilt
SQUARE = 384  # content is drawn on a square canvas, then laid out on the video's frame
IN, OUT, DONT_CARE, LEAD = 0, 1, 2, 3  # LEAD: in body, the normal view before a hard effect
SEED0 = 10_000


@dataclass(frozen=True)
class Spec:
    name: str
    width: int
    height: int
    fps: int
    body: str  # which in-body material: "sam2", "yt", "nasal"
    layout: str  # "round": scope field on black; "full": the picture fills the frame
    kind: str  # "extraction" or a hard in-body effect
    seed: int
    lead_s: float = 0.0  # hard videos: seconds of the normal in-body view before the effect


SPECS = (
    Spec("extract_256_sam2", 256, 256, 25, "sam2", "round", "extraction", SEED0 + 1),
    Spec("extract_256_yt", 256, 256, 25, "yt", "round", "extraction", SEED0 + 2),
    Spec("extract_480_yt", 854, 480, 25, "yt", "full", "extraction", SEED0 + 3),
    Spec("extract_480_nasal", 854, 480, 25, "nasal", "round", "extraction", SEED0 + 4),
    Spec("extract_720_sam2", 1280, 720, 30, "sam2", "full", "extraction", SEED0 + 5),
    Spec("extract_1080_sam2", 1920, 1080, 30, "sam2", "round", "extraction", SEED0 + 6),
    Spec("inbody_smoke", 854, 480, 25, "sam2", "full", "smoke", SEED0 + 11),
    Spec("inbody_redout", 854, 480, 25, "yt", "full", "redout", SEED0 + 12),
    Spec("inbody_fog", 854, 480, 25, "sam2", "round", "fog", SEED0 + 13),
    Spec("inbody_gauze", 854, 480, 25, "yt", "full", "gauze", SEED0 + 14),
    Spec("inbody_instrument", 1280, 720, 30, "sam2", "full", "instrument", SEED0 + 15),
    Spec("inbody_closeup", 854, 480, 25, "yt", "round", "closeup", SEED0 + 16),
    # The same effects after 6 s of the normal view: the video's own in-body baseline is known
    # when the effect starts, as in a real recording (what the memory's odd-run entry sees).
    Spec("after_smoke", 854, 480, 25, "sam2", "full", "smoke", SEED0 + 21, 6.0),
    Spec("after_redout", 854, 480, 25, "yt", "full", "redout", SEED0 + 22, 6.0),
    Spec("after_fog", 854, 480, 25, "sam2", "round", "fog", SEED0 + 23, 6.0),
    Spec("after_gauze", 854, 480, 25, "yt", "full", "gauze", SEED0 + 24, 6.0),
    Spec("after_instrument", 1280, 720, 30, "sam2", "full", "instrument", SEED0 + 25, 6.0),
    Spec("after_closeup", 854, 480, 25, "yt", "round", "closeup", SEED0 + 26, 6.0),
)


# material ------------------------------------------------------------------------------------
def read_rgb(path: Path) -> Image:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def video_frames(path: Path) -> list[Image]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def in_body_material(which: str) -> tuple[list[Image], float]:
    """Consecutive in-body pictures of the validation split, square, and how many of them
    to show per second (a video's own rate; a slower one for sampled stills)."""
    if which == "sam2":
        frames, rate = video_frames(VAL / "videos" / "surgicalsam2__video3.mp4"), 25.0
    elif which == "yt":
        folder, rate = VAL / "in_body" / "yt_1035614", 2.5
        frames = [read_rgb(p) for p in sorted(folder.glob("*.jpg"))]
    else:
        folder, rate = VAL / "in_body" / "endomode_nasal_gif", 8.0
        frames = [read_rgb(p) for p in sorted(folder.glob("*.jpg"))]
    return [nf.square(f, SQUARE) for f in frames], rate


def out_of_body_pictures() -> list[Image]:
    return [read_rgb(p) for p in sorted((VAL / "out_of_body").rglob("*.jpg"))]


# shots: a picture as a function of time within the shot ---------------------------------------
Render = Callable[[float], Image]


def _pan(big: Image, rng: np.random.Generator, seconds: float) -> Render:
    """A slow drift of a SQUARE window over a larger picture, as a hand-held scope moves."""
    span = big.shape[0] - SQUARE
    start, end = rng.uniform(0, span, 2), rng.uniform(0, span, 2)

    def render(t: float) -> Image:
        a = min(1.0, t / max(seconds, 1e-6))
        y, x = (start + (end - start) * a).astype(int)
        return big[y : y + SQUARE, x : x + SQUARE]

    return render


def body_shot(frames: Sequence[Image], start: int, rate: float) -> Render:
    """Play the in-body material forward and back from ``start``, ``rate`` pictures a second,
    with a slow zoom."""
    n = len(frames)

    def render(t: float) -> Image:
        i = (start + int(t * rate)) % (2 * n - 2)
        image = frames[i if i < n else 2 * n - 2 - i]
        zoom = 1.05 + 0.05 * np.sin(t)  # never below 1: the crop stays inside
        c = int(SQUARE / zoom)
        o = (SQUARE - c) // 2
        return cv2.resize(image[o : o + c, o : o + c], (SQUARE, SQUARE))

    return render


def near_shot(kind: str, rng: np.random.Generator, seconds: float) -> Render:
    big = nf.OUT_OF_BODY_KINDS[kind](rng, int(SQUARE * 1.4), nf.HELDOUT_RANGES)
    big = nf.disk_blur(big, int(rng.uniform(*nf.HELDOUT_RANGES.defocus) * SQUARE))
    return _pan(big, rng, seconds)


def closeup_shot(picture: Image, rng: np.random.Generator, seconds: float, zoom: float) -> Render:
    h, w = picture.shape[:2]
    side = min(h, w, max(8, int(min(h, w) / zoom * 1.4)))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    big = cv2.resize(picture[y : y + side, x : x + side], (int(SQUARE * 1.4),) * 2)
    big = nf.disk_blur(big, int(rng.uniform(0.0, 0.03) * SQUARE))
    return _pan(big, rng, seconds)


def trocar_shot(rng: np.random.Generator, seconds: float) -> Render:
    """Through the trocar: tube and valve pictures blending into each other."""
    stills = [nf.trocar(rng, SQUARE, nf.HELDOUT_RANGES) for _ in range(3)]

    def render(t: float) -> Image:
        a = min(1.999, 2 * t / max(seconds, 1e-6))
        k = int(a)
        return cv2.addWeighted(stills[k], 1 - (a - k), stills[k + 1], a - k, 0)

    return render


Shot = tuple[int, float, Render]


def extraction_shots(
    spec: Spec, body: Sequence[Image], rate: float, outside: Sequence[Image]
) -> list[Shot]:
    rng = np.random.default_rng(spec.seed)
    n = len(body)
    shots: list[Shot] = [(IN, 6.0, body_shot(body, 0, rate))]
    shots.append((DONT_CARE, 0.8, trocar_shot(rng, 0.8)))
    # The near field, in an order like the one seen in a real extraction.
    # The real one: seal cap, gloved fingers, skin, plastic, glove, ~5 s resting on a drape.
    plan: list[tuple[str, float]] = [("trocar_cap", 0.8), ("glove", 1.0), ("skin", 1.5)]
    if spec.seed % 2 == 0:
        plan.append(("closeup", 1.0))  # a close, defocused view of something real
    plan += [("drape", 5.0), ("towel", 1.0), ("glove", 0.8)]
    if spec.seed % 2:
        plan.append(("room", 0.8))  # sometimes the scope swings to the room
    for what, seconds in plan:
        if what == "trocar_cap":
            render = near_shot("trocar", rng, seconds)
        elif what == "closeup":
            picture = outside[int(rng.integers(len(outside)))]
            render = closeup_shot(picture, rng, seconds, float(rng.uniform(3.0, 10.0)))
        elif what == "room":
            picture = outside[int(rng.integers(len(outside)))]
            render = closeup_shot(picture, rng, seconds, 1.4)
        else:
            render = near_shot(what, rng, seconds)
        shots.append((OUT, seconds, render))
    shots.append((DONT_CARE, 0.8, trocar_shot(rng, 0.8)))
    shots.append((IN, 6.0, body_shot(body, n // 2, rate)))
    return shots


def hard_shots(spec: Spec, body: Sequence[Image], rate: float) -> list[Shot]:
    """Ten seconds in body with one hard effect, animated (the same pattern, changing strength)."""
    seconds = 10.0
    base = body_shot(body, 0, rate)
    ranges = nf.HELDOUT_RANGES
    seed = spec.seed

    def render(t: float) -> Image:
        image = base(t)
        ramp = float(np.clip(np.sin(np.pi * t / seconds) * 1.3, 0, 1))  # 0 → full → 0
        rng = np.random.default_rng([seed, int(t // 2)])  # a new pattern every 2 s
        if spec.kind == "smoke":
            veil = ramp * ranges.veil[1]
            return nf.smoke(image, rng, replace(ranges, veil=(veil, veil)))
        if spec.kind == "redout":
            amount = ramp * ranges.veil[1]
            return nf.redout(image, rng, replace(ranges, veil=(amount, amount)))
        if spec.kind == "fog":  # fogged right after insertion, clearing
            amount = max(0.0, 1 - t / 7) * ranges.veil[1]
            return nf.fog(image, rng, replace(ranges, veil=(amount, amount)))
        if spec.kind == "gauze":
            return nf.gauze_inside(image, rng, ranges)
        if spec.kind == "instrument":
            return nf.instrument(image, rng, ranges)
        zoom = 3.0 + 4.0 * ramp  # close to tissue, out of focus
        c = int(SQUARE / zoom)
        o = (SQUARE - c) // 2
        close = cv2.resize(image[o : o + c, o : o + c], (SQUARE, SQUARE), cv2.INTER_CUBIC)
        return nf.disk_blur(close, int(ramp * 0.03 * SQUARE))

    shots: list[Shot] = [(IN, seconds, render)]
    if spec.lead_s:
        lead = body_shot(body, len(body) // 2, rate)
        shots.insert(0, (LEAD, spec.lead_s, lead))
    return shots


# video ---------------------------------------------------------------------------------------
def layout(square: Image, spec: Spec) -> Image:
    """Put the square content on the video's frame as a scope would show it."""
    if spec.layout == "full":
        return cv2.resize(square, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
    side = min(spec.width, spec.height)
    content = cv2.resize(square, (side, side), interpolation=cv2.INTER_AREA)
    mask = np.zeros((side, side), np.uint8)
    cv2.circle(mask, (side // 2, side // 2), int(side * 0.48), 255, -1, cv2.LINE_AA)
    content = (content * (mask[..., None] / 255.0)).astype(np.uint8)
    frame = np.zeros((spec.height, spec.width, 3), np.uint8)
    y, x = (spec.height - side) // 2, (spec.width - side) // 2
    frame[y : y + side, x : x + side] = content
    return frame


def build(spec: Spec) -> tuple[Path, npt.NDArray[np.int8]]:
    """Encode the video of ``spec`` (cached) and return it with its per-frame truth."""
    video = CACHE / f"{spec.name}_v{VERSION}.mp4"
    if not (video.is_file() and video.with_suffix(".truth.npy").is_file()):
        body, rate = in_body_material(spec.body)
        if spec.kind == "extraction":
            shots = extraction_shots(spec, body, rate, out_of_body_pictures())
        else:
            shots = hard_shots(spec, body, rate)
        encode(shots, spec, video)
    return video, np.load(video.with_suffix(".truth.npy"))


def encode(shots: Sequence[Shot], spec: Spec, video: Path) -> None:
    """Write ``shots`` as ``video`` (H.264) laid out as ``spec`` says, and its per-frame truth
    beside it (``.truth.npy``)."""
    video.parent.mkdir(parents=True, exist_ok=True)
    truth: list[int] = []
    tmp = video.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=spec.fps)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        for label, seconds, render in shots:
            for k in range(round(seconds * spec.fps)):
                frame = av.VideoFrame.from_ndarray(layout(render(k / spec.fps), spec), "rgb24")
                container.mux(stream.encode(frame))
                truth.append(label)
        container.mux(stream.encode())
    np.save(video.with_suffix(".truth.npy"), np.asarray(truth, np.int8))
    tmp.rename(video)


# scoring -------------------------------------------------------------------------------------
@dataclass
class Result:
    name: str
    size: str
    fps: int
    frames: int
    oob: int
    in_body: int
    auc: float
    flagged: int  # OOB frames scored at or above the threshold, before post-processing
    scored_oob: int
    leaked: int
    hidden_in: int
    excursion_hidden: bool | None
    max_in_p: float
    min_out_p: float
    lead: int = 0  # in-body frames before a hard effect
    hidden_lead: int = 0
    unscored: int = 0  # live: frames not scored in time (hidden)


def measure_video(
    spec: Spec,
    video: Path,
    truth: npt.NDArray[np.int8],
    clf: OnnxClassifier,
    sample_every: int | None,
    params: TemporalParams,
    silent: bool = False,
    live: bool = False,
) -> Result:
    """Run the labels-only pipeline on ``video`` and count against its per-frame ``truth``
    (``live``: the frames hidden are live anonymization's instead; the scores stay offline's)."""
    info = probe(video)
    labels = scan_video(video, clf, params=params, sample_every=sample_every, info=info)
    outside = np.isin(truth[labels.index], (OUT, DONT_CARE))  # per scored frame
    hidden = labels.oob_mask()
    n = min(len(hidden), len(truth))  # the encoder keeps every frame; guard anyway
    hidden, truth = hidden[:n], truth[:n]
    scored = labels.index[labels.index < n]
    y = truth[scored]
    if silent:  # the classifier never fires outside: what the memory alone still hides
        quiet = labels.p_out.copy()
        quiet[outside] = np.minimum(quiet[outside], 0.9 * params.low)
        segments = postprocess(
            labels.index, quiet, info.frame_times, info.duration_s, params, labels.colour
        )
        hidden = mask_from_segments(segments, info.frame_count)[:n]
    unscored = 0
    if live:
        hidden, unscored = live_mask(video, clf, n)
    care = y != DONT_CARE
    p = labels.p_out[: len(scored)][care]
    y = y[care] == OUT
    oob = truth == OUT
    return Result(
        spec.name,
        f"{spec.width}x{spec.height}",
        spec.fps,
        n,
        int(oob.sum()),
        int((truth == IN).sum()),
        roc_auc(y, p) if y.any() and not y.all() else float("nan"),
        int((p[y] >= clf.threshold).sum()),
        int(y.sum()),
        int((oob & ~hidden).sum()),
        int(((truth == IN) & hidden).sum()),
        bool(hidden[oob].all()) if oob.any() else None,
        float(p[~y].max()) if (~y).any() else float("nan"),
        float(p[y].min()) if y.any() else float("nan"),
        int((truth == LEAD).sum()),
        int(((truth == LEAD) & hidden).sum()),
        unscored,
    )


def live_mask(video: Path, clf: OnnxClassifier, frames: int) -> tuple[npt.NDArray[np.bool_], int]:
    """The frames live anonymization hides when ``video`` is played to it in real time, as a
    capture card would deliver it (the causal gate and extraction memory; a frame never
    delivered counts as hidden), and how many frames it could not score in time (hidden,
    fail-closed: their number depends on the machine's load)."""
    hidden = np.ones(frames, dtype=bool)
    unscored = 0
    with live_frames(str(video), realtime=True, model=clf) as session:
        for frame in session:
            if frame.index < frames:
                hidden[frame.index] = frame.hidden
                unscored += int(frame.p_out is None)
    return hidden, unscored


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: shipped)")
    parser.add_argument("--sample-every", type=int, default=None, help="default: automatic")
    parser.add_argument("--only", default="", help="run the specs whose name contains this")
    parser.add_argument(
        "--no-memory", action="store_true", help="post-process without the extraction memory"
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="count the frames live anonymization hides, each video played in real time",
    )
    parser.add_argument(
        "--silent-classifier",
        action="store_true",
        help="stress test: out-of-body and trocar scores lowered below the hysteresis floor",
    )
    args = parser.parse_args(argv)
    if not VAL.is_dir():
        raise SystemExit(f"error: {VAL} is absent; this benchmark needs the shared data")
    clf = OnnxClassifier(args.model, threads=2)
    params = TemporalParams(threshold=clf.threshold, memory=not args.no_memory)
    print(
        f"model {clf.info.name} {clf.info.sha256[:12]}, threshold {clf.threshold:.4g}, "
        f"extraction memory {'off' if args.no_memory else 'on'}"
    )
    if args.live and (args.no_memory or args.silent_classifier):
        raise SystemExit("error: --live measures live as it runs: no --no-memory or --silent-*")
    if args.live:
        print("live: leaks and hidden frames as live anonymization shows each video played in")
        print("real time; AUC, flagged and the p columns are the offline scores")
    if args.silent_classifier:
        print("silent classifier: leaks and hidden frames from lowered scores; AUC, flagged")
        print("and the p columns still show the model's own scores")
    head = f"{'video':20} {'size':>9} {'fps':>3} {'frames':>6} {'oob':>4} {'AUC':>6} {'flagged':>7}"
    print(
        f"{head} {'leaked':>6} {'hidden in':>9} {'excursion':>9} {'max p in':>9} {'min p out':>9}"
    )
    results = []
    started = time.perf_counter()
    for spec in SPECS:
        if args.only not in spec.name:
            continue
        video, truth = build(spec)
        r = measure_video(
            spec, video, truth, clf, args.sample_every, params, args.silent_classifier, args.live
        )
        results.append(r)
        excursion = (
            "-" if r.excursion_hidden is None else ("hidden" if r.excursion_hidden else "LEAKED")
        )
        print(
            f"{r.name:20} {r.size:>9} {r.fps:>3} {r.frames:>6} {r.oob:>4} {r.auc:6.3f} "
            f"{r.flagged:>3}/{r.scored_oob:<3} "
            f"{r.leaked:>6} {r.hidden_in:>4}/{r.in_body:<4} {excursion:>9} "
            f"{r.max_in_p:9.2e} {r.min_out_p:9.2e}"
        )
    ext = [r for r in results if r.excursion_hidden is not None]
    hard = [r for r in results if r.excursion_hidden is None and not r.lead]
    after = [r for r in results if r.lead]
    if ext:
        print(
            f"extractions: {sum(r.leaked for r in ext)} OOB frames leaked of "
            f"{sum(r.oob for r in ext)}; {sum(bool(r.excursion_hidden) for r in ext)}/{len(ext)} "
            f"excursions fully hidden; {sum(r.hidden_in for r in ext)} in-body frames hidden of "
            f"{sum(r.in_body for r in ext)}; median per-video AUC "
            f"{np.nanmedian([r.auc for r in ext]):.3f}; the model flags "
            f"{sum(r.flagged for r in ext)} of {sum(r.scored_oob for r in ext)} scored OOB frames"
        )
    if hard:
        hidden, frames = sum(r.hidden_in for r in hard), sum(r.in_body for r in hard)
        worst = max(r.hidden_in / max(r.in_body, 1) for r in hard)
        print(
            f"hard in-body videos: {hidden} of {frames} frames hidden "
            f"({100 * hidden / frames:.1f} %); "
            f"worst video {100 * worst:.1f} %"
        )
    if after:
        hidden, frames = sum(r.hidden_in for r in after), sum(r.in_body for r in after)
        print(
            f"hard effects after 6 s of the normal view: {hidden} of {frames} effect frames "
            f"hidden ({100 * hidden / frames:.1f} %); {sum(r.hidden_lead for r in after)} of "
            f"{sum(r.lead for r in after)} normal frames before them"
        )
    if args.live:
        print(f"live: {sum(r.unscored for r in results)} frames not scored in time (hidden)")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
