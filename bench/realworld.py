"""Public real footage: what endoveil hides and shows on recordings it never saw.

The synthetic near-field benchmark (`nearfield.py`) draws its hardest cases; this one measures
the same questions on real public footage, pinned in ``bench/realworld.toml`` (repository,
commit, path, SHA-256 and licence of every file). None of it is in ../shared/data or in the
training data, and none comes from a source issue 9 reserves for evaluation. It is not
redistributed: ``--fetch`` downloads each file from GitHub at its commit into
``bench/.cache/realworld/`` and checks its hash (sources whose files are absent are skipped).

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
  its sequences. Out-of-body frames leaked after post-processing, and excursions fully hidden.

Run: ``.venv/bin/python bench/realworld.py [--fetch] [--model PATH] [--no-memory | --live]``
(``--live``: also what live anonymization hides of the hard clips, and the extractions'
counts as live hides them; each video is played to it in real time).
"""

from __future__ import annotations

import argparse
import hashlib
import time
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

import nearfield as nf_bench
from endoveil.detect.classifier import OnnxClassifier, resize_for_model
from endoveil.detect.scan import scan_video
from endoveil.detect.temporal import TemporalParams
from endoveil.media.probe import probe
from endoveil.train import nearfield as nf
from endoveil.train.metrics import operating_point, roc_auc

Image = npt.NDArray[np.uint8]
ROOT = Path(__file__).resolve().parent
MANIFEST = ROOT / "realworld.toml"
CACHE = ROOT / ".cache" / "realworld"
RAW = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"
VERSION = "1"  # bump when the extraction sequences change, so they are rebuilt
# Trocar frames are don't care too (hiding them is neither a leak nor a loss), but counted
# apart: a confident score there is what starts the extraction memory on the way out.
LABELS = {"in_body": 0, "out_of_body": 1, "dont_care": 2, "trocar": 3}


@dataclass(frozen=True)
class Source:
    name: str
    use: str  # "hard_in_body", "labelled_frames" or "near_field"
    kind: str
    repo: str
    commit: str
    licence: str
    files: tuple[tuple[str, str, str], ...]  # (path in the repository, sha256, label or "")
    fps: float = 25.0  # picture sequences: pictures a second (videos keep their own rate)
    hold_s: float = 0.0  # unrelated pictures: each held this long instead
    stretch_y: int = 1  # half-height stereo fields: stretched back this many times

    def local(self, repo_path: str) -> Path:
        return CACHE / self.name / repo_path


def load_manifest(path: Path = MANIFEST) -> list[Source]:
    with path.open("rb") as f:
        entries = tomllib.load(f)["source"]
    return [
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
        )
        for e in entries
    ]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def present(source: Source) -> bool:
    """Every file of ``source`` is in the cache, as pinned."""
    return all(
        source.local(p).is_file() and _sha256(source.local(p)) == digest
        for p, digest, _ in source.files
    )


def fetch(source: Source) -> None:
    """Download the files of ``source`` at its pinned commit; refuse any whose hash differs."""
    for repo_path, digest, _ in source.files:
        target = source.local(repo_path)
        if target.is_file() and _sha256(target) == digest:
            continue
        url = RAW.format(repo=source.repo, commit=source.commit, path=urllib.parse.quote(repo_path))
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                data = response.read()
        except OSError as e:
            raise SystemExit(f"error: could not download {url}: {e}") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise SystemExit(f"error: {url} does not match its SHA-256 in {MANIFEST.name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


# media ---------------------------------------------------------------------------------------
def _is_video(path: Path) -> bool:
    return path.suffix.lower() in {".mp4", ".mov", ".mkv", ".avi"}


def _decode(path: Path) -> list[Image]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def pictures(source: Source, path: Path) -> list[Image]:
    """The frames of a video, or the one picture of an image file, RGB, as filmed."""
    if _is_video(path):
        return _decode(path)
    image = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if source.stretch_y > 1:
        h, w = image.shape[:2]
        image = cv2.resize(image, (w, h * source.stretch_y), interpolation=cv2.INTER_LINEAR)
    return [image]


def clip_of(source: Source) -> Path:
    """A hard in-body source as one video: a single video file as it is; pictures encoded."""
    paths = [source.local(p) for p, _, _ in source.files]
    if len(paths) == 1 and _is_video(paths[0]):
        return paths[0]
    video = CACHE / source.name / f"clip_v{VERSION}.mp4"
    if video.is_file():
        return video
    frames = [image for path in paths for image in pictures(source, path)]
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
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            frame = av.VideoFrame.from_ndarray(image, "rgb24")
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
    flagged: int
    scored: int
    max_p: float


def measure_clip(source: Source, clf: OnnxClassifier, live: bool) -> ClipResult:
    video = clip_of(source)
    info = probe(video)
    hidden = []
    for memory in (True, False):
        labels = scan_video(
            video, clf, params=TemporalParams(threshold=clf.threshold, memory=memory), info=info
        )
        hidden.append(int(labels.oob_mask().sum()))
    p = labels.p_out
    return ClipResult(
        source.name,
        source.kind,
        f"{info.width}x{info.height}",
        info.frame_count,
        hidden[0],
        hidden[1],
        int(nf_bench.live_mask(video, clf, info.frame_count).sum()) if live else None,
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
    in_live = f", live {sum(r.hidden_live or 0 for r in results)}" if live else ""
    print(
        f"hard in-body clips: {hidden} of {frames} frames hidden ({100 * hidden / frames:.1f} %; "
        f"without the memory {sum(r.hidden_no_memory for r in results)}{in_live}); worst "
        f"{worst.name} {100 * worst.hidden / max(worst.frames, 1):.1f} %"
    )


# part 2: labelled frames -----------------------------------------------------------------------
def labelled_frames(sources: Sequence[Source], clf: OnnxClassifier) -> None:
    for source in sources:
        names, y, scores = [], [], []
        for repo_path, _, label in source.files:
            (image,) = pictures(source, source.local(repo_path))
            names.append(Path(repo_path).name)
            y.append(LABELS[label])
            scores.append(float(clf.score(resize_for_model(image, clf.input_size)[None])[0]))
        truth, p = np.asarray(y), np.asarray(scores)
        care = np.isin(truth, (LABELS["in_body"], LABELS["out_of_body"]))
        point = operating_point(truth[care] == 1, p[care], clf.threshold)
        print(
            f"\nlabelled frames {source.name}: {care.sum()} frames ({(truth == 1).sum()} out of "
            f"body, {(truth == 0).sum()} in body; {(~care).sum()} don't care); ROC AUC "
            f"{roc_auc(truth[care] == 1, p[care]):.4f}; at {clf.threshold:.4g}: OOB recall "
            f"{point.sensitivity:.4f} ({point.true_pos}/{point.true_pos + point.false_neg}), "
            f"specificity {point.specificity:.4f} ({point.true_neg}/"
            f"{point.true_neg + point.false_pos})"
        )
        for name, t, score in zip(names, truth, p, strict=True):
            wrong = (t == 1 and score < clf.threshold) or (t == 0 and score >= clf.threshold)
            if wrong:
                print(f"  {'missed OOB' if t == 1 else 'flagged in body'}: {name} p={score:.3g}")
        trocar = p[truth == LABELS["trocar"]]
        print(
            f"  lowest out-of-body score {p[truth == 1].min():.3g}; highest in-body "
            f"{p[truth == 0].max():.3g}; trocar frames at or above the threshold: "
            f"{(trocar >= clf.threshold).sum()} of {len(trocar)}"
        )


# part 3: near-field extractions ----------------------------------------------------------------
SPECS = (
    nf_bench.Spec("real_256_sam2", 256, 256, 25, "sam2", "round", "real", 20_001),
    nf_bench.Spec("real_480_yt", 854, 480, 25, "yt", "full", "real", 20_002),
    nf_bench.Spec("real_480_nasal", 854, 480, 25, "nasal", "round", "real", 20_003),
    nf_bench.Spec("real_720_sam2", 1280, 720, 30, "sam2", "round", "real", 20_004),
    nf_bench.Spec("real_1080_yt", 1920, 1080, 30, "yt", "full", "real", 20_005),
)


def _video_shot(frames: Sequence[Image], rng: np.random.Generator, zoom: float) -> nf_bench.Render:
    """Play real footage from a random start, magnified about a random point, defocused."""
    start = int(rng.integers(len(frames)))
    h, w = frames[0].shape[:2]
    side = max(8, int(min(h, w) / zoom))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    radius = int(rng.uniform(0.0, 0.04) * nf_bench.SQUARE)

    def render(t: float) -> Image:
        image = frames[(start + int(t * 25)) % len(frames)][y : y + side, x : x + side]
        return nf.disk_blur(cv2.resize(image, (nf_bench.SQUARE,) * 2), radius)

    return render


def near_field_shots(spec: nf_bench.Spec, material: Sequence[list[Image]]) -> list[nf_bench.Shot]:
    """In body → trocar → six real near-field shots of 1–2 s → trocar → in body."""
    rng = np.random.default_rng(spec.seed)
    body, rate = nf_bench.in_body_material(spec.body)
    shots: list[nf_bench.Shot] = [(nf_bench.IN, 6.0, nf_bench.body_shot(body, 0, rate))]
    shots.append((nf_bench.DONT_CARE, 0.8, nf_bench.trocar_shot(rng, 0.8)))
    for _ in range(6):
        frames = material[int(rng.integers(len(material)))]
        seconds = float(rng.uniform(1.0, 2.0))
        zoom = float(rng.uniform(1.5, 8.0))
        if len(frames) > 1:
            render = _video_shot(frames, rng, zoom)
        else:
            render = nf_bench.closeup_shot(frames[0], rng, seconds, zoom)
        shots.append((nf_bench.OUT, seconds, render))
    shots.append((nf_bench.DONT_CARE, 0.8, nf_bench.trocar_shot(rng, 0.8)))
    shots.append((nf_bench.IN, 6.0, nf_bench.body_shot(body, len(body) // 2, rate)))
    return shots


def near_field(
    sources: Sequence[Source], clf: OnnxClassifier, params: TemporalParams, live: bool
) -> None:
    material = [pictures(source, source.local(p)) for source in sources for p, _, _ in source.files]
    print("\nnear-field extractions (real close views outside, between two trocar passages)")
    print(
        f"{'video':16} {'size':>9} {'fps':>3} {'oob':>4} {'AUC':>6} {'flagged':>7} {'leaked':>6} "
        f"{'hidden in':>9} {'excursion':>9}"
    )
    results = []
    for spec in SPECS:
        video = CACHE / "extractions" / f"{spec.name}_v{VERSION}.mp4"
        if not (video.is_file() and video.with_suffix(".truth.npy").is_file()):
            nf_bench.encode(near_field_shots(spec, material), spec, video)
        truth = np.load(video.with_suffix(".truth.npy"))
        r = nf_bench.measure_video(spec, video, truth, clf, None, params, live=live)
        results.append(r)
        print(
            f"{r.name:16} {r.size:>9} {r.fps:>3} {r.oob:>4} {r.auc:6.3f} "
            f"{r.flagged:>3}/{r.scored_oob:<3} {r.leaked:>6} {r.hidden_in:>4}/{r.in_body:<4} "
            f"{'hidden' if r.excursion_hidden else 'LEAKED':>9}"
        )
    print(
        f"near-field extractions: {sum(r.leaked for r in results)} OOB frames leaked of "
        f"{sum(r.oob for r in results)}; {sum(bool(r.excursion_hidden) for r in results)}/"
        f"{len(results)} excursions fully hidden; {sum(r.hidden_in for r in results)} in-body "
        f"frames hidden of {sum(r.in_body for r in results)}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: shipped)")
    parser.add_argument("--fetch", action="store_true", help="download missing sources first")
    parser.add_argument(
        "--no-memory", action="store_true", help="extractions without the extraction memory"
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="also what live anonymization hides, each clip and extraction played in real time",
    )
    args = parser.parse_args(argv)
    sources = load_manifest()
    if args.fetch:
        for source in sources:
            fetch(source)
    absent = [s.name for s in sources if not present(s)]
    if absent:
        print(f"skipped, absent or not as pinned (run with --fetch): {', '.join(absent)}")
    sources = [s for s in sources if s.name not in absent]
    if not sources:
        raise SystemExit(f"error: no source of {MANIFEST.name} is in {CACHE}")
    if not nf_bench.VAL.is_dir():
        raise SystemExit(f"error: {nf_bench.VAL} is absent; the extractions need the shared data")
    clf = OnnxClassifier(args.model, threads=2)
    print(f"model {clf.info.name} {clf.info.sha256[:12]}, threshold {clf.threshold:.4g}")
    started = time.perf_counter()
    hard = [s for s in sources if s.use == "hard_in_body"]
    labelled = [s for s in sources if s.use == "labelled_frames"]
    near = [s for s in sources if s.use == "near_field"]
    if args.live and args.no_memory:
        raise SystemExit("error: --live measures live as it runs, with its memory")
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
