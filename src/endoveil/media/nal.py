"""H.264 / HEVC NAL units: iterate them, filter them, and frame them as MP4 wants."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = [
    "H264_AUD",
    "H264_IDR",
    "H264_SEI",
    "H264_SLICE",
    "iter_nal_types",
    "iter_nals",
    "length_size_of",
    "nal_type",
    "parameter_sets",
    "reframe",
]

H264_SLICE, H264_IDR, H264_SEI, H264_AUD = 1, 5, 6, 9


def length_size_of(extradata: bytes | None, codec: str) -> int | None:
    """NAL length-prefix size of MP4-style packets, or None when packets use start codes."""
    if not extradata or extradata.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")):
        return None
    if codec == "h264" and extradata[0] == 1 and len(extradata) > 4:
        return (extradata[4] & 3) + 1
    if codec == "hevc" and len(extradata) > 21:
        return (extradata[21] & 3) + 1
    return None


def iter_nals(data: bytes, length_size: int | None) -> Iterator[bytes]:
    """The NAL units of one packet (length-prefixed, or Annex B when ``length_size`` is None)."""
    if length_size:
        pos = 0
        while pos + length_size <= len(data):
            size = int.from_bytes(data[pos : pos + length_size], "big")
            pos += length_size
            if size <= 0 or pos + size > len(data):
                return
            yield data[pos : pos + size]
            pos += size
        return
    starts = []
    pos = data.find(b"\x00\x00\x01")
    while pos != -1:
        starts.append(pos + 3)
        pos = data.find(b"\x00\x00\x01", pos + 3)
    for i, start in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        nal = data[start:end]
        # A 4-byte start code leaves one zero byte at the end of the previous unit.
        yield nal[:-1] if i + 1 < len(starts) and nal.endswith(b"\x00") else nal


def nal_type(nal: bytes, codec: str) -> int:
    if not nal:
        return -1
    return (nal[0] >> 1) & 0x3F if codec == "hevc" else nal[0] & 0x1F


def iter_nal_types(data: bytes, codec: str, length_size: int | None) -> Iterator[int]:
    """NAL unit types in one packet."""
    for nal in iter_nals(data, length_size):
        yield nal_type(nal, codec)


def reframe(
    data: bytes,
    length_size: int,
    *,
    source_length_size: int | None,
    drop: frozenset[int] = frozenset(),
) -> bytes:
    """An H.264 packet as ``length_size``-prefixed NAL units, without the ``drop`` types.

    Args:
        data: the packet, length-prefixed (``source_length_size``) or Annex B (None).
        length_size: the prefix size of the result.
        source_length_size: the prefix size of ``data``; None for start codes.
        drop: NAL unit types to leave out (SEI, access unit delimiters...).
    """
    out = bytearray()
    for nal in iter_nals(data, source_length_size):
        if nal and nal_type(nal, "h264") not in drop:
            out += len(nal).to_bytes(length_size, "big") + nal
    return bytes(out)


def parameter_sets(avcc: bytes, length_size: int) -> bytes:
    """The SPS and PPS of an ``avcC`` record, length-prefixed, ready to lead a packet."""
    out = bytearray()
    pos = 5
    for count_mask in (0x1F, 0xFF):
        count = avcc[pos] & count_mask
        pos += 1
        for _ in range(count):
            size = int.from_bytes(avcc[pos : pos + 2], "big")
            pos += 2
            out += size.to_bytes(length_size, "big") + avcc[pos : pos + size]
            pos += size
    return bytes(out)
