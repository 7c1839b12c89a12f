"""What the user chose on the work page, as cases: a video, a case folder, or an archive of
case folders — several at once — never an output of endoveil.

- a **video** is a case of one segment (its folder is the case folder, its name the case);
- a folder that holds videos itself, and none in sub-folders, is **one case** (a patient's
  folder: its videos in natural order);
- any other folder is an **archive**: each case folder below it is a case (case name: its
  path in the archive, as `endoveil cases` names it), and each video lying loose in it a
  case of its own — never several patients merged into one.

Outputs are never inputs: the output folder, any folder holding a batch report, and files
named like endoveil's anonymized videos are left out (the reason is kept for the page).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from endoveil.cases import Case, natural_key
from endoveil.cases.report import REPORT_JSON
from endoveil.errors import MediaError
from endoveil.media.inputs import VIDEO_SUFFIXES, check_video_suffix

__all__ = ["Chosen", "NotAnInput", "choose_cases", "is_output"]

OUTPUT_VIDEO_SUFFIX = ".anonymized.mp4"


class NotAnInput(ValueError):
    """A chosen item cannot be taken as input (an output, not a video type, no videos)."""


@dataclass
class Chosen:
    """The cases found in the chosen items, and what was left out (with why)."""

    cases: list[Case] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def is_output(path: Path, output: Path) -> bool:
    """True for the output folder and anything in it, batch output folders, and anonymized
    videos (by their name)."""
    path = path.resolve()
    output = output.resolve()
    if path == output or output in path.parents:
        return True
    if path.name.lower().endswith(OUTPUT_VIDEO_SUFFIX):
        return True
    folders = [path, *path.parents] if path.is_dir() else list(path.parents)
    return any((folder / REPORT_JSON).is_file() for folder in folders[:4])


def _is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def _videos_below(folder: Path, output: Path) -> list[Path]:
    found = [
        p
        for p in folder.rglob("*")
        if _is_video(p)
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and not is_output(p, output)
    ]
    return sorted(found, key=lambda p: tuple(natural_key(x) for x in p.relative_to(folder).parts))


def _is_case_folder(folder: Path, output: Path) -> bool:
    """Videos lie in the folder itself and in none of its sub-folders: one patient's."""
    children = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if not any(_is_video(p) for p in children):
        return False
    return not any(
        p.is_dir() and not is_output(p, output) and _videos_below(p, output) for p in children
    )


def _archive_cases(folder: Path, base: Path, output: Path, skipped: list[str]) -> list[Case]:
    """An archive: each case folder below it a case, each loose video a case of its own (a
    folder of case folders is searched in turn: patients are never merged into one case)."""
    cases: list[Case] = []
    children = sorted(
        (p for p in folder.iterdir() if not p.name.startswith(".")),
        key=lambda p: natural_key(p.name),
    )
    for child in children:
        name = str(child.relative_to(base))
        if is_output(child, output):
            if child.is_dir() or _is_video(child):
                skipped.append(f"{name}: endoveil output, not an input")
        elif _is_video(child):
            cases.append(Case(name, folder, (child,)))
        elif child.is_dir() and _is_case_folder(child, output):
            cases.append(Case(name, child, tuple(_videos_below(child, output))))
        elif child.is_dir():
            cases.extend(_archive_cases(child, base, output, skipped))
    return cases


def choose_cases(items: Iterable[Path], output: Path) -> Chosen:
    """The cases of the chosen ``items`` (resolved paths inside the roots).

    Raises:
        NotAnInput: an item is an output, not a video type, or holds no videos at all.
    """
    chosen = Chosen()
    seen: set[tuple[Path, ...]] = set()
    for item in items:
        if is_output(item, output):
            raise NotAnInput(f"{item.name}: this is endoveil's output, not an input")
        if item.is_file():
            try:
                check_video_suffix(item)
            except MediaError as exc:
                raise NotAnInput(f"{item.name}: {exc.message}") from exc
            found = [Case(item.name, item.parent, (item,))]
        elif _is_case_folder(item, output):
            found = [Case(item.name, item, tuple(_videos_below(item, output)))]
        else:
            found = _archive_cases(item, item, output, chosen.skipped)
        if not found:
            raise NotAnInput(
                f"{item.name}: no videos in it (choose a video, a case folder, or a folder "
                "with one sub-folder per case)"
            )
        for case in found:
            key = tuple(s.resolve() for s in case.segments)
            if key not in seen:  # the same case chosen twice in one go counts once
                seen.add(key)
                chosen.cases.append(case)
    return chosen
