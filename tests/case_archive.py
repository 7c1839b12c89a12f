"""Builders for tests/cases: case archives of short segments, odd names, mismatched and
corrupt files.

Frames are dark (in body) or bright (out of body, for the brightness model); every segment has
its own texture seed, so a frame out of place at a join is noticed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from clips import BRIGHT, DARK, textured, write_clip

SIZE = (160, 120)
FPS = 25

# Names that must never reach the output root: spaces, punctuation, unicode (NFC).
NAMES = {
    "copy": "Müller, Hans 2024-01-02",
    "mixed": "Zoë Ørsted (OR 3)",
    "broken": "Broken Ünïcode case",
}
SEGMENT_NAMES = {
    "copy": ["VID10.MP4", "VID2.MP4", "VID1.MP4"],  # natural order: 1, 2, 10
    "mixed": ["Ørsted_part 1.mp4", "Ørsted_part 2.mov"],
    "broken": ["Broken_01.mp4", "Broken_02.mp4"],
}


def segment_frames(
    seed: int, count: int, oob: Callable[[int], bool], size: tuple[int, int] = SIZE
) -> list[npt.NDArray[np.uint8]]:
    return [textured(BRIGHT if oob(i) else DARK, i, size, seed=seed) for i in range(count)]


def make_segment(
    path: Path,
    seed: int,
    count: int = FPS,
    *,
    oob: Callable[[int], bool] = lambda _i: False,
    size: tuple[int, int] = SIZE,
    **options: object,
) -> Path:
    return write_clip(path, segment_frames(seed, count, oob, size), fps=FPS, **options)  # type: ignore[arg-type]


def build_archive(root: Path, kinds: Iterable[str] = ("copy", "mixed", "broken")) -> Path:
    """An input root with the requested cases (see `NAMES`)."""
    root.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        folder = root / NAMES[kind]
        folder.mkdir()
        names = SEGMENT_NAMES[kind]
        if kind == "copy":
            # Same encoder settings (with B-frames): joined by stream copy. VID2 is out of body
            # at its start, so a margin spills over the join into VID1.
            make_segment(folder / names[2], 1)
            make_segment(folder / names[1], 2, oob=lambda i: i < 8)
            make_segment(folder / names[0], 3)
        elif kind == "mixed":
            # Other size and container: re-encoded; the second part ends out of body.
            make_segment(folder / names[0], 4)
            make_segment(folder / names[1], 5, 30, oob=lambda i: i >= 20, size=(320, 240))
        elif kind == "broken":
            make_segment(folder / names[0], 6)
            data = (folder / names[0]).read_bytes()
            (folder / names[1]).write_bytes(data[: len(data) // 3])  # truncated: no index
        (folder / "notes.txt").write_text("not a video\n", encoding="utf-8")
    return root


def original_strings(root: Path) -> list[str]:
    """Every original name of the archive, whole and in parts a leak could take."""
    strings: set[str] = set()
    for kind in NAMES:
        strings.update({NAMES[kind], *NAMES[kind].replace(",", " ").split()})
        for name in SEGMENT_NAMES[kind]:
            strings.update({name, Path(name).stem})
    strings.add(str(root))
    # Words common in technical text are not names ("case", "OR", "3", "part"...).
    generic = {"case", "OR", "(OR", "3)", "part", "1", "2", "VID1", "VID2", "VID10", "2024-01-02"}
    return sorted(s for s in strings if s not in generic and len(s) >= 4)
