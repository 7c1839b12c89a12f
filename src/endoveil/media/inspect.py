"""List whatever in a media file could identify someone or something.

Looks at container and stream tags, chapters, non-audiovisual streams (data, subtitles,
attachments, timecode tracks) and SEI NAL units inside H.264/HEVC packets (user data, encoder
strings). Audio is reported as a notice: operating-room sound can carry names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av

from endoveil.media.nal import iter_nal_types, length_size_of
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
SEI_TYPES = {"h264": {6}, "hevc": {39, 40}}
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
        findings.extend(_sei_findings(container))
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


def _chapters(container: av.container.InputContainer) -> list[str]:
    chapters = container.chapters() if hasattr(container, "chapters") else []
    return [str(c.get("metadata", {}).get("title", c)) for c in chapters]


def _sei_findings(container: av.container.InputContainer) -> Iterator[Finding]:
    for stream in container.streams.video:
        codec = stream.codec_context.codec.canonical_name
        if codec not in SEI_TYPES:
            continue
        length_size = length_size_of(stream.codec_context.extradata, codec)
        counts: Counter[int] = Counter()
        container.seek(0)
        for n, packet in enumerate(container.demux(stream)):
            if n >= PACKETS_SCANNED or packet.size == 0:
                continue
            counts.update(
                t
                for t in iter_nal_types(bytes(packet), codec, length_size)
                if t in SEI_TYPES[codec]
            )
        extradata_sei = [
            t
            for t in iter_nal_types(stream.codec_context.extradata or b"", codec, None)
            if t in SEI_TYPES[codec]
        ]
        if counts or extradata_sei:
            total = sum(counts.values()) + len(extradata_sei)
            yield Finding(
                "identifying",
                f"stream {stream.index} (video)",
                f"{total} SEI NAL unit(s) (user data, encoder settings)",
            )


def _short(value: str, limit: int = 80) -> str:
    value = str(value).replace("\n", " ")
    return value if len(value) <= limit else value[: limit - 1] + "…"
