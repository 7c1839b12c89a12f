"""Find the cases of an archive and put each case's segments in recording order.

A *case* is one operation recorded as one or more segment files (recorders split files at
2–4 GB). By default every sub-folder of the input root is one case and holds its segments,
at any depth. With ``group_by`` (a regular expression), video files lying directly in the
input root are grouped into cases by the expression's ``case`` group (or its first group).

Segments are ordered *naturally*: runs of digits compare as numbers, so ``VID2`` comes before
``VID10``, recorder numbering (``_001``, ``_002``...) and timestamps (``20240131_0915``) sort
as recorded, and letters compare without regard to case.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from endoveil.media.inputs import VIDEO_SUFFIXES

__all__ = ["DEFAULT_PATTERNS", "Case", "Discovery", "discover_cases", "natural_key"]

# Extensions that medical recorders and cameras write; matched without regard to case. They
# are exactly the types every input open accepts (`endoveil.media.inputs.VIDEO_SUFFIXES`).
DEFAULT_PATTERNS: tuple[str, ...] = tuple(f"*{suffix}" for suffix in VIDEO_SUFFIXES)

_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class Case:
    """One case: its identifier and its segments in recording order.

    Attributes:
        case_id: the case folder relative to the input root (or the group key); it names the
            patient, so it goes to the mapping log and the console only.
        folder: the case folder (the input root for grouped cases).
        segments: the segment files, naturally ordered.
    """

    case_id: str
    folder: Path
    segments: tuple[Path, ...]

    @property
    def originals(self) -> tuple[str, ...]:
        """Every string of this case that could identify the patient (for redaction)."""
        names = {self.case_id, str(self.folder), self.folder.name}
        for segment in self.segments:
            names.update({str(segment), segment.name, segment.stem})
        return tuple(n for n in names if n)


@dataclass
class Discovery:
    """What `discover_cases` found: the cases, and the files it left out (with why)."""

    cases: list[Case] = field(default_factory=list)
    ignored: list[tuple[Path, str]] = field(default_factory=list)


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key under which ``VID2`` < ``VID10`` and ``a`` == ``A`` (then by exact text).

    Example:
        >>> sorted(["VID10.MP4", "vid2.mp4", "VID1.MP4"], key=natural_key)
        ['VID1.MP4', 'vid2.mp4', 'VID10.MP4']
    """
    text = unicodedata.normalize("NFC", text)
    parts: list[tuple[int, int | str]] = []
    for n, chunk in enumerate(_DIGITS.split(text)):
        if n % 2:
            parts.append((0, int(chunk)))
        elif chunk:
            parts.append((1, chunk.casefold()))
    # Ties (``a1`` vs ``A1``, ``01`` vs ``1``) fall back to the exact text, so order is total.
    parts.append((2, text))
    return tuple(parts)


def _matches(path: Path, patterns: Sequence[str]) -> bool:
    name = path.name.casefold()
    return any(Path(name).match(p.casefold()) for p in patterns)


def _videos_in(folder: Path, patterns: Sequence[str], recursive: bool) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    # Hidden files are recorder or OS clutter (._VID1.MP4 from macOS is not a video).
    return [
        p
        for p in found
        if p.is_file()
        and _matches(p, patterns)
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]


def _ordered(paths: list[Path], base: Path) -> tuple[Path, ...]:
    """Natural order of the paths relative to ``base`` (sub-folder by sub-folder)."""
    return tuple(
        sorted(paths, key=lambda p: tuple(natural_key(x) for x in p.relative_to(base).parts))
    )


def discover_cases(
    root: Path,
    *,
    patterns: Sequence[str] = DEFAULT_PATTERNS,
    group_by: str | None = None,
) -> Discovery:
    """List the cases under ``root``.

    Args:
        root: the input root: one sub-folder per case.
        patterns: shell patterns a segment's file name must match (case-insensitive).
        group_by: also group the video files lying directly in ``root`` into cases by this
            regular expression's ``case`` group (or its first group, or the whole match).

    Returns:
        The cases in natural order of their identifiers, and the files left out.

    Raises:
        NotADirectoryError: ``root`` is not a folder.
        ValueError: ``group_by`` is not a valid regular expression.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder")
    regex = None
    if group_by is not None:
        try:
            regex = re.compile(group_by)
        except re.error as exc:
            raise ValueError(f"--group-by is not a valid regular expression: {exc}") from exc

    found = Discovery()
    for entry in sorted(root.iterdir(), key=lambda p: natural_key(p.name)):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            segments = _videos_in(entry, patterns, recursive=True)
            if segments:
                found.cases.append(Case(entry.name, entry, _ordered(segments, entry)))
            else:
                found.ignored.append((entry, "folder holds no video matching the patterns"))

    loose = _videos_in(root, patterns, recursive=False)
    if regex is None:
        found.ignored.extend((p, "not in a case folder (see --group-by)") for p in loose)
    else:
        groups: dict[str, list[Path]] = {}
        for path in loose:
            match = regex.search(path.name)
            if match is None:
                found.ignored.append((path, "does not match --group-by"))
                continue
            key = _group_key(match)
            groups.setdefault(key, []).append(path)
        taken = {c.case_id.casefold() for c in found.cases}
        for key, paths in groups.items():
            if key.casefold() in taken:
                found.ignored.extend((p, f"group {key!r} clashes with a folder") for p in paths)
                continue
            found.cases.append(Case(key, root, _ordered(paths, root)))
    found.cases.sort(key=lambda c: natural_key(c.case_id))
    return found


def _group_key(match: re.Match[str]) -> str:
    if "case" in match.re.groupindex:
        return match.group("case")
    if match.re.groups:
        return match.group(1)
    return match.group(0)
