"""List whatever in a media file could identify someone or something.

Looks at container and stream tags, chapters, non-audiovisual streams (data, subtitles,
attachments, timecode tracks), and every NAL unit inside H.264/HEVC packets and codec records
that a decoder does not need (anything but slices and parameter sets: SEI user data and
encoder strings, filler, delimiters, reserved and unspecified types — any of them can carry
text). Audio is reported as a notice: operating-room sound can carry names; so is a second
video stream, which endoveil does not use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av

from endoveil.media.nal import (
    DECODABLE,
    extradata_nals,
    iter_nal_types,
    length_size_of,
    nal_type,
    nal_type_name,
)
from endoveil.media.probe import open_input

__all__ = ["Finding", "inspect_file"]

# Tags every MP4 muxer writes and that say nothing about a person, machine or place.
TECHNICAL_CONTAINER_TAGS = {"major_brand", "minor_version", "compatible_brands"}
TECHNICAL_STREAM_TAGS = {
    "language": {"und"},
    "handler_name": {"VideoHandler", "SoundHandler"},
    "vendor_id": {"[0][0][0][0]"},
}
# Stream tags that are technical whatever their value (Matroska writes each stream's length).
TECHNICAL_ANY_VALUE_TAGS = {"DURATION"}
PACKETS_SCANNED = 100_000

Severity = Literal["identifying", "notice"]


@dataclass(frozen=True)
class Finding:
    """One thing in the file that is not the pictures."""

    severity: Severity
    where: str
    what: str

    def __str__(self) -> str:
        return f"[{self.severity}] {self.where}: {self.what}"


def inspect_file(path: Path | str) -> list[Finding]:
    """Everything in ``path`` beyond the technical minimum; an empty list means clean."""
    findings: list[Finding] = []
    with open_input(path) as container:
        for key, value in container.metadata.items():
            if key not in TECHNICAL_CONTAINER_TAGS:
                findings.append(Finding("identifying", "container tag", f"{key}={_short(value)}"))
        for chapter in _chapters(container):
            findings.append(Finding("identifying", "chapter", chapter))
        for stream in container.streams:
            findings.extend(_stream_findings(stream))
        findings.extend(_extra_video_findings(container))
        findings.extend(_nal_findings(container))
    return findings


def _stream_findings(stream: av.stream.Stream) -> Iterator[Finding]:
    where = f"stream {stream.index} ({stream.type})"
    if stream.type not in ("video", "audio"):
        yield Finding("identifying", where, "non-audiovisual stream (data/subtitle/timecode)")
    if stream.type == "audio":
        yield Finding("notice", where, "audio track: operating-room sound may carry names")
    for key, value in stream.metadata.items():
        if key in TECHNICAL_ANY_VALUE_TAGS:
            continue
        allowed = TECHNICAL_STREAM_TAGS.get(key)
        if allowed is None or value not in allowed:
            yield Finding("identifying", f"{where} tag", f"{key}={_short(value)}")


def _extra_video_findings(container: av.container.InputContainer) -> Iterator[Finding]:
    """Video streams beyond the first: endoveil reads only the first (`probe`'s choice)."""
    videos = list(container.streams.video)
    for stream in videos[1:]:
        picture = bool(stream.disposition & av.stream.Disposition.attached_pic)
        what = "cover art (an attached picture)" if picture else "a second video stream"
        yield Finding(
            "identifying" if picture else "notice",
            f"stream {stream.index} (video)",
            f"{what}: endoveil reads only stream {videos[0].index}, the first video stream, "
            "and writes nothing of this one",
        )


def _chapters(container: av.container.InputContainer) -> list[str]:
    chapters = container.chapters() if hasattr(container, "chapters") else []
    return [str(c.get("metadata", {}).get("title", c)) for c in chapters]


def _nal_findings(container: av.container.InputContainer) -> Iterator[Finding]:
    """Every NAL unit type outside the decodable allow-list, per H.264/HEVC video stream."""
    for stream in container.streams.video:
        codec = stream.codec_context.codec.canonical_name
        if codec not in DECODABLE:
            continue
        where = f"stream {stream.index} (video)"
        extradata = stream.codec_context.extradata
        length_size = length_size_of(extradata, codec)
        counts: Counter[int] = Counter()
        container.seek(0)
        try:
            for n, packet in enumerate(container.demux(stream)):
                if n >= PACKETS_SCANNED:
                    break
                if packet.size:
                    counts.update(iter_nal_types(bytes(packet), codec, length_size))
        except av.FFmpegError:
            pass  # a damaged tail: report what could be read
        units, stray = extradata_nals(extradata, codec)
        counts.update(nal_type(u, codec) for u in units)
        for kind, count in sorted(counts.items()):
            if kind not in DECODABLE[codec]:
                name = nal_type_name(kind, codec)
                yield Finding(
                    "identifying",
                    where,
                    f"{count} NAL unit(s) of type {kind} ({name}): not needed to decode the "
                    "pictures, can carry any text (user data, encoder settings)",
                )
        if stray:
            yield Finding("identifying", f"{where} codec record", f"{stray} unexplained byte(s)")


def _short(value: str, limit: int = 80) -> str:
    value = str(value).replace("\n", " ")
    return value if len(value) <= limit else value[: limit - 1] + "…"
