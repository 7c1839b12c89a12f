"""Public real footage: what endoveil hides and shows on recordings it never saw.

The synthetic near-field benchmark (`nearfield.py`) draws its hardest cases; this one measures
the same questions on real public footage, pinned in ``bench/realworld.toml`` (repository,
commit, path, SHA-256 and licence of every file). None of it is in ../shared/data or in the
training data, and none comes from a source issue 9 reserves for evaluation. It is not
redistributed: ``--fetch`` downloads each file from GitHub at its commit into
``bench/.cache/realworld/`` (about 300 MB) and checks its hash; a source that cannot be
fetched, or whose files are absent, is skipped with a warning.

Three parts:

- **hard in-body clips** (``use = "hard_in_body"``): recordings wholly inside the body that
  look odd — surgical smoke, instruments against the lens, blood, a small dark sinus view,
  gastroscopy with bubbles and blur. Each runs through the real labels-only pipeline
  (`endoveil.detect.scan.scan_video`, default sampling and post-processing), with and
  without the extraction memory; every frame hidden is a loss. Picture sequences are encoded
  to H.264 first, at the rate the manifest gives (``hold_s``: each picture held that long);
- **labelled frames** (``use = "labelled_frames"``): frames spread through real laparoscopic
  recordings, labelled by eye in the manifest (in body, out of body, trocar, and don't care
  for black, no-signal and ambiguous frames): per-frame ROC AUC, out-of-body recall and
  in-body specificity at the model's threshold, the frames it gets wrong, and how many trocar
  frames score above the threshold;
- **near-field extractions** (``use = "near_field"``): real close views outside the body —
  instruments on drapes, an instrument table, gloved hands and prepped skin, a laparoscope
  filming a lab — seen as a scope sees them (magnified, defocused, in its round field) between
  two trocar passages inside in-body video of the validation split, as `nearfield.py` builds
  its sequences; each shot draws a source first (so every kind is seen), then one of its files.
  Out-of-body frames leaked after post-processing, and excursions fully hidden.

Run: ``.venv/bin/python bench/realworld.py [--fetch] [--model PATH] [--no-memory | --live]``
(``--live``: also what live anonymization hides of the hard clips, and the extractions'
counts as live hides them; each video is played to it in real time).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import re
import time
import tomllib
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

import nearfield as nf_bench
from endoveil.detect.classifier import OnnxClassifier, resize_for_model
from endoveil.detect.extraction import MemoryParams, colour_signatures, similarity
from endoveil.detect.labels import mask_from_segments
from endoveil.detect.scan import scan_video
from endoveil.detect.temporal import TemporalParams, postprocess
from endoveil.media.probe import probe
from endoveil.train import nearfield as nf
from endoveil.train.metrics import operating_point, roc_auc

Image = npt.NDArray[np.uint8]
ROOT = Path(__file__).resolve().parent
MANIFEST = ROOT / "realworld.toml"
CACHE = ROOT / ".cache" / "realworld"
RAW = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"
VERSION = "4"  # part of every cache key: bump when the way videos are built changes
STILLS = {".jpg", ".jpeg", ".png", ".bmp"}
IN_BODY, OUT_OF_BODY, DONT_CARE, TROCAR = 0, 1, 2, 3
# Trocar frames are don't care too (hiding them is neither a leak nor a loss), but counted
# apart: a confident score there is what starts the extraction memory on the way out.
LABELS = {"in_body": IN_BODY, "out_of_body": OUT_OF_BODY, "dont_care": DONT_CARE, "trocar": TROCAR}
USES = ("hard_in_body", "labelled_frames", "near_field")


@dataclass(frozen=True)
class Source:
    name: str
    use: str  # one of USES
    kind: str
    repo: str
    commit: str
    licence: str
    files: tuple[tuple[str, str, str], ...]  # (path in the repository, sha256, label or "")
    fps: float = 25.0  # picture sequences: pictures a second (videos keep their own rate)
    hold_s: float = 0.0  # unrelated pictures: each held this long instead
    stretch_y: int = 1  # half-height stereo fields: stretched back this many times
    recording: str = ""  # labelled frames: a pattern whose first group names the recording

    def local(self, repo_path: str) -> Path:
        return CACHE / self.name / repo_path


def load_manifest(path: Path = MANIFEST) -> list[Source]:
    with path.open("rb") as f:
        entries = tomllib.load(f)["source"]
    sources = [
        Source(
            e["name"],
            e["use"],
            e["kind"],
            e["repo"],
            e["commit"],
            e["licence"],
            tuple((f["path"], f["sha256"], f.get("label", "")) for f in e["files"]),
            float(e.get("fps", 25.0)),
            float(e.get("hold_s", 0.0)),
            int(e.get("stretch_y", 1)),
            e.get("recording", ""),
        )
        for e in entries
    ]
    for source in sources:
        if source.use not in USES:
            raise SystemExit(f"error: {path.name}: {source.name} has an unknown use {source.use!r}")
        unlabelled = [p for p, _, label in source.files if label not in LABELS]
        if source.use == "labelled_frames" and unlabelled:
            raise SystemExit(f"error: {path.name}: {source.name}: no label for {unlabelled[0]}")
    return sources


def _key(*parts: object) -> str:
    """A short hash naming a cached video after everything it is built from."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def present(source: Source) -> bool:
    """Every file of ``source`` is in the cache, as pinned."""
    return all(
        source.local(p).is_file() and _sha256(source.local(p)) == digest
        for p, digest, _ in source.files
    )


def fetch(source: Source) -> bool:
    """Download the files of ``source`` at its pinned commit (False, with a warning, when one
    cannot be fetched or differs from its hash: the source is then skipped)."""
    for repo_path, digest, _ in source.files:
        target = source.local(repo_path)
        if target.is_file() and _sha256(target) == digest:
            continue
        url = RAW.format(repo=source.repo, commit=source.commit, path=urllib.parse.quote(repo_path))
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                data = response.read()
        except (OSError, http.client.HTTPException) as e:
            print(f"warning: {source.name}: could not download {url}: {e}")
            return False
        if hashlib.sha256(data).hexdigest() != digest:
            print(f"warning: {source.name}: {url} does not match its SHA-256 in {MANIFEST.name}")
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(target)
    return True


# media ---------------------------------------------------------------------------------------
@dataclass
class Footage:
    frames: list[Image]  # RGB, as filmed
    fps: float  # the video's own rate; 0 for a still picture


def footage(source: Source, path: Path) -> Footage:
    """A still picture, or every frame of a video (GIFs included), RGB, as filmed."""
    if path.suffix.lower() not in STILLS:
        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate
        return Footage(nf_bench.video_frames(path), float(rate or 25))
    if cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is None:
        raise SystemExit(f"error: cannot read the picture {path}")
    image = nf_bench.read_rgb(path)
    if source.stretch_y > 1:
        h, w = image.shape[:2]
        image = cv2.resize(image, (w, h * source.stretch_y), interpolation=cv2.INTER_LINEAR)
    return Footage([image], 0.0)


def shot_material(source: Source, path: Path) -> Footage:
    """The footage of ``path`` as near-field shots use it: a shot shows a defocused crop,
    magnified to 384² at most, so 15 pictures a second with a longer side of 640 (1280 for
    stills, which are cropped closer) keep what it shows in a fraction of the memory."""
    full = footage(source, path)
    if full.fps == 0:
        return Footage([_shrink(full.frames[0], 1280)], 0.0)
    step = max(1, round(full.fps / 15))
    return Footage([_shrink(f, 640) for f in full.frames[::step]], full.fps / step)


def _shrink(image: Image, longest: int) -> Image:
    """``image`` scaled down so that its longer side is at most ``longest``."""
    scale = longest / max(image.shape[:2])
    if scale >= 1:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def _fit(image: Image, width: int, height: int) -> Image:
    """``image`` scaled to fit ``width`` × ``height``, aspect kept, centred on black."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    filter_ = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(image, size, interpolation=filter_)
    canvas = np.zeros((height, width, 3), np.uint8)
    y, x = (height - size[1]) // 2, (width - size[0]) // 2
    canvas[y : y + size[1], x : x + size[0]] = resized
    return canvas


def clip_of(source: Source) -> Path:
    """A hard in-body source as one video: a single video file as it is; pictures encoded
    (each fitted to the first one's size, aspect kept)."""
    paths = [source.local(p) for p, _, _ in source.files]
    if len(paths) == 1 and paths[0].suffix.lower() not in STILLS:
        return paths[0]
    key = _key(VERSION, source.files, source.fps, source.hold_s, source.stretch_y)
    video = CACHE / source.name / f"clip_{key}.mp4"
    if video.is_file():
        return video
    frames = [image for path in paths for image in footage(source, path).frames]
    h, w = frames[0].shape[:2]
    h, w = h - h % 2, w - w % 2
    fps = 25 if source.hold_s else round(source.fps)
    repeat = max(1, round(source.hold_s * fps))
    tmp = video.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for image in frames:
            frame = av.VideoFrame.from_ndarray(_fit(image, w, h), "rgb24")
            for _ in range(repeat):
                container.mux(stream.encode(frame))
        container.mux(stream.encode())
    tmp.rename(video)
    return video


# part 1: hard in-body clips --------------------------------------------------------------------
@dataclass
class ClipResult:
    name: str
    kind: str
    size: str
    frames: int
    hidden: int
    hidden_no_memory: int
    hidden_live: int | None  # None: live not measured
    unscored_live: int  # frames live could not score in time (hidden, fail-closed)
    flagged: int
    scored: int
    max_p: float


def measure_clip(source: Source, clf: OnnxClassifier, live: bool) -> ClipResult:
    video = clip_of(source)
    info = probe(video)
    params = TemporalParams(threshold=clf.threshold)
    labels = scan_video(video, clf, params=params, info=info)
    # The scores do not depend on the memory: only post-process them again without it.
    without = postprocess(
        labels.index,
        labels.p_out,
        info.frame_times,
        info.duration_s,
        replace(params, memory=False),
        labels.colour,
    )
    hidden_no_memory = int(mask_from_segments(without, info.frame_count).sum())
    p = labels.p_out
    hidden_live, unscored = None, 0
    if live:
        mask, unscored = nf_bench.live_mask(video, clf, info.frame_count)
        hidden_live = int(mask.sum())
    return ClipResult(
        source.name,
        source.kind,
        f"{info.width}x{info.height}",
        info.frame_count,
        int(labels.oob_mask().sum()),
        hidden_no_memory,
        hidden_live,
        unscored,
        int((p >= clf.threshold).sum()),
        len(p),
        float(p.max()),
    )


def hard_in_body(sources: Sequence[Source], clf: OnnxClassifier, live: bool) -> None:
    print("\nhard in-body clips (every frame in body; hidden = lost)")
    print(
        f"{'clip':24} {'kind':11} {'size':>9} {'frames':>6} {'hidden':>6} "
        f"{'no memory':>9} {'live':>5} {'flagged':>9} {'max p':>8}"
    )
    results = []
    for source in sources:
        r = measure_clip(source, clf, live)
        results.append(r)
        print(
            f"{r.name:24} {r.kind:11} {r.size:>9} {r.frames:>6} {r.hidden:>6} "
            f"{r.hidden_no_memory:>9} {'-' if r.hidden_live is None else r.hidden_live:>5} "
            f"{r.flagged:>4}/{r.scored:<4} {r.max_p:8.2e}"
        )
    frames, hidden = sum(r.frames for r in results), sum(r.hidden for r in results)
    worst = max(results, key=lambda r: r.hidden / max(r.frames, 1))
    in_live = (
        f", live {sum(r.hidden_live or 0 for r in results)} (of them "
        f"{sum(r.unscored_live for r in results)} not scored in time)"
        if live
        else ""
    )
    print(
        f"hard in-body clips: {hidden} of {frames} frames hidden ({100 * hidden / frames:.1f} %; "
        f"without the memory {sum(r.hidden_no_memory for r in results)}{in_live}); worst "
        f"{worst.name} {100 * worst.hidden / max(worst.frames, 1):.1f} %"
    )


# part 2: labelled frames -----------------------------------------------------------------------
def labelled_frames(sources: Sequence[Source], clf: OnnxClassifier) -> None:
    for source in sources:
        names, y, smalls = [], [], []
        for repo_path, _, label in source.files:
            (image,) = footage(source, source.local(repo_path)).frames
            smalls.append(resize_for_model(image, clf.input_size))
            names.append(Path(repo_path).name)
            y.append(LABELS[label])
        images = np.stack(smalls)
        p = np.concatenate([clf.score(images[k : k + 32]) for k in range(0, len(images), 32)])
        signatures = colour_signatures(images)
        truth = np.asarray(y)
        out, inside, trocar = truth == OUT_OF_BODY, truth == IN_BODY, truth == TROCAR
        care = out | inside
        print(
            f"\nlabelled frames {source.name}: {care.sum()} frames ({out.sum()} out of body, "
            f"{inside.sum()} in body; {(~care).sum()} don't care, {trocar.sum()} of them trocar)"
        )
        if not out.any() or not inside.any():
            print("  needs frames of both classes for AUC, recall and specificity")
            continue
        point = operating_point(out[care], p[care], clf.threshold)
        print(
            f"  ROC AUC {roc_auc(out[care], p[care]):.4f}; at {clf.threshold:.4g}: OOB recall "
            f"{point.sensitivity:.4f} ({point.true_pos}/{point.true_pos + point.false_neg}), "
            f"specificity {point.specificity:.4f} ({point.true_neg}/"
            f"{point.true_neg + point.false_pos})"
        )
        for name, is_out, is_in, score in zip(names, out, inside, p, strict=True):
            if is_out and score < clf.threshold:
                print(f"  missed OOB: {name} p={score:.3g}")
            if is_in and score >= clf.threshold:
                print(f"  flagged in body: {name} p={score:.3g}")
        print(
            f"  lowest out-of-body score {p[out].min():.3g}; highest in-body "
            f"{p[inside].max():.3g}; trocar frames at or above the threshold: "
            f"{(p[trocar] >= clf.threshold).sum()} of {trocar.sum()}"
        )
        if source.recording:
            recordings = [re.match(source.recording, name) for name in names]
            groups = [m.group(1) if m else name for m, name in zip(recordings, names, strict=True)]
            colour_check(groups, truth, signatures)


def colour_check(
    groups: Sequence[str], truth: npt.NDArray[np.int_], signatures: npt.NDArray[np.uint8]
) -> None:
    """The extraction memory's colour evidence on real recordings: each frame's similarity to
    the mean signature of the *other* in-body frames of its recording. In-body frames should
    reach ``back_similarity`` (or the return is only seen by the slower score route); outside
    frames must stay below it, and below ``enter_similarity`` to start an excursion as odd."""
    memory = MemoryParams(threshold=1.0, low=0.5)  # only its colour thresholds are read
    found: dict[int, list[float]] = {IN_BODY: [], OUT_OF_BODY: []}
    for group in sorted(set(groups)):
        members = [k for k, g in enumerate(groups) if g == group]
        lit_inside = [k for k in members if truth[k] == IN_BODY and signatures[k].any()]
        for k in members:
            others = [signatures[j].astype(np.float64) for j in lit_inside if j != k]
            if truth[k] in found and len(others) >= 2 and signatures[k].any():
                found[int(truth[k])].append(similarity(signatures[k], np.mean(others, axis=0)))
    inside, outside = np.asarray(found[IN_BODY]), np.asarray(found[OUT_OF_BODY])
    if not len(inside) or not len(outside):
        return
    print(
        f"  colour similarity to the recording's other in-body frames: in body median "
        f"{np.median(inside):.2f}, 5th percentile {np.quantile(inside, 0.05):.2f}, "
        f"{(inside < memory.back_similarity).sum()} of {len(inside)} below "
        f"{memory.back_similarity}; out of body at most {outside.max():.2f} (mean "
        f"{outside.mean():.2f}), {(outside >= memory.enter_similarity).sum()} of {len(outside)} "
        f"at or above {memory.enter_similarity}"
    )


# part 3: near-field extractions ----------------------------------------------------------------
SPECS = (
    nf_bench.Spec("real_256_sam2", 256, 256, 25, "sam2", "round", "real", 20_001),
    nf_bench.Spec("real_480_yt", 854, 480, 25, "yt", "full", "real", 20_002),
    nf_bench.Spec("real_480_nasal", 854, 480, 25, "nasal", "round", "real", 20_003),
    nf_bench.Spec("real_720_sam2", 1280, 720, 30, "sam2", "round", "real", 20_004),
    nf_bench.Spec("real_1080_yt", 1920, 1080, 30, "yt", "full", "real", 20_005),
)
SHOTS = 6  # near-field shots between the two trocar passages


def _video_shot(clip: Footage, rng: np.random.Generator, zoom: float) -> nf_bench.Render:
    """Play real footage at its own rate from a random start, magnified about a random point,
    defocused."""
    start = int(rng.integers(len(clip.frames)))
    h, w = clip.frames[0].shape[:2]
    side = max(8, int(min(h, w) / zoom))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    radius = int(rng.uniform(0.0, 0.04) * nf_bench.SQUARE)

    def render(t: float) -> Image:
        frame = clip.frames[(start + int(t * clip.fps)) % len(clip.frames)]
        crop = frame[y : y + side, x : x + side]
        return nf.disk_blur(cv2.resize(crop, (nf_bench.SQUARE,) * 2), radius)

    return render


def near_field_shots(
    spec: nf_bench.Spec, material: dict[str, list[Footage]]
) -> tuple[list[nf_bench.Shot], list[str]]:
    """In body → trocar → six real near-field shots of 1–2 s → trocar → in body; and the
    source of each near-field shot."""
    rng = np.random.default_rng(spec.seed)
    body, rate = nf_bench.in_body_material(spec.body)
    shots: list[nf_bench.Shot] = [(nf_bench.IN, 6.0, nf_bench.body_shot(body, 0, rate))]
    shots.append((nf_bench.DONT_CARE, 0.8, nf_bench.trocar_shot(rng, 0.8)))
    names = sorted(material)
    drawn = []
    for _ in range(SHOTS):
        name = names[int(rng.integers(len(names)))]
        clip = material[name][int(rng.integers(len(material[name])))]
        seconds = float(rng.uniform(1.0, 2.0))
        zoom = float(rng.uniform(1.5, 8.0))
        if len(clip.frames) > 1:
            render = _video_shot(clip, rng, zoom)
        else:
            render = nf_bench.closeup_shot(clip.frames[0], rng, seconds, zoom)
        shots.append((nf_bench.OUT, seconds, render))
        drawn.append(name)
    shots.append((nf_bench.DONT_CARE, 0.8, nf_bench.trocar_shot(rng, 0.8)))
    shots.append((nf_bench.IN, 6.0, nf_bench.body_shot(body, len(body) // 2, rate)))
    return shots, drawn


def near_field(
    sources: Sequence[Source], clf: OnnxClassifier, params: TemporalParams, live: bool
) -> None:
    material: dict[str, list[Footage]] = {}  # decoded only when a video must be built
    print("\nnear-field extractions (real close views outside, between two trocar passages)")
    print(
        f"{'video':16} {'size':>9} {'fps':>3} {'oob':>4} {'AUC':>6} {'flagged':>7} {'leaked':>6} "
        f"{'hidden in':>9} {'excursion':>9}  shots"
    )
    results, drawn = [], Counter[str]()
    for spec in SPECS:
        key = _key(VERSION, nf_bench.VERSION, asdict(spec), [(s.name, s.files) for s in sources])
        video = CACHE / "extractions" / f"{spec.name}_{key}.mp4"
        shot_sources = video.with_suffix(".shots.json")
        if not (video.is_file() and shot_sources.is_file()):
            if not material:
                material = {
                    s.name: [shot_material(s, s.local(p)) for p, _, _ in s.files] for s in sources
                }
            shots, names = near_field_shots(spec, material)
            nf_bench.encode(shots, spec, video)
            shot_sources.write_text(json.dumps(names))
        names = json.loads(shot_sources.read_text())
        drawn.update(names)
        truth = np.load(video.with_suffix(".truth.npy"))
        r = nf_bench.measure_video(spec, video, truth, clf, None, params, live=live)
        results.append(r)
        print(
            f"{r.name:16} {r.size:>9} {r.fps:>3} {r.oob:>4} {r.auc:6.3f} "
            f"{r.flagged:>3}/{r.scored_oob:<3} {r.leaked:>6} {r.hidden_in:>4}/{r.in_body:<4} "
            f"{'hidden' if r.excursion_hidden else 'LEAKED':>9}  {', '.join(names)}"
        )
    unscored = f"; live could not score {sum(r.unscored for r in results)} in time" if live else ""
    print(
        f"near-field extractions: {sum(r.leaked for r in results)} OOB frames leaked of "
        f"{sum(r.oob for r in results)}; {sum(bool(r.excursion_hidden) for r in results)}/"
        f"{len(results)} excursions fully hidden; {sum(r.hidden_in for r in results)} in-body "
        f"frames hidden of {sum(r.in_body for r in results)}{unscored}; shots per source: "
        + ", ".join(f"{name} {n}" for name, n in sorted(drawn.items()))
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: shipped)")
    parser.add_argument("--fetch", action="store_true", help="download missing sources first")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--no-memory", action="store_true", help="extractions without the extraction memory"
    )
    mode.add_argument(
        "--live",
        action="store_true",
        help="also what live anonymization hides, each clip and extraction played in real time",
    )
    args = parser.parse_args(argv)
    sources = load_manifest()
    if args.fetch:
        sources = [s for s in sources if fetch(s)]
    absent = [s.name for s in sources if not present(s)]
    if absent:
        print(f"skipped, absent or not as pinned (run with --fetch): {', '.join(absent)}")
    sources = [s for s in sources if s.name not in absent]
    if not sources:
        raise SystemExit(f"error: no source of {MANIFEST.name} is in {CACHE}")
    near = [s for s in sources if s.use == "near_field"]
    if near and not nf_bench.VAL.is_dir():
        raise SystemExit(f"error: {nf_bench.VAL} is absent; the extractions need the shared data")
    clf = OnnxClassifier(args.model, threads=2)
    print(f"model {clf.info.name} {clf.info.sha256[:12]}, threshold {clf.threshold:.4g}")
    started = time.perf_counter()
    hard = [s for s in sources if s.use == "hard_in_body"]
    labelled = [s for s in sources if s.use == "labelled_frames"]
    if hard:
        hard_in_body(hard, clf, args.live)
    if labelled:
        labelled_frames(labelled, clf)
    if near:
        params = TemporalParams(threshold=clf.threshold, memory=not args.no_memory)
        near_field(near, clf, params, args.live)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
