"""H.264 / HEVC NAL units: iterate them, keep only what a decoder needs, frame them for MP4.

Everything that leaves endoveil as compressed video passes the same allow-list
(`DECODABLE`): picture slices and parameter sets. Every other unit type — SEI (user data,
encoder strings), filler data, access unit delimiters, end-of-sequence markers, reserved and
unspecified types (which can carry any bytes) — is dropped, never listed one by one.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = [
    "DECODABLE",
    "H264_IDR",
    "H264_PPS",
    "H264_SLICE",
    "H264_SPS",
    "avcc_record",
    "extradata_nals",
    "iter_nal_types",
    "iter_nals",
    "length_size_of",
    "nal_type",
    "nal_type_name",
    "parameter_sets",
    "reframe",
]

H264_SLICE, H264_IDR, H264_SPS, H264_PPS = 1, 5, 7, 8

# What a decoder of the base picture needs, and nothing else. H.264: non-IDR and IDR slices,
# SPS, PPS (data partitions 2-4 belong to the Extended profile, which FFmpeg cannot decode;
# AUD 9 and end markers 10/11 carry no picture). HEVC: the VCL types a Main/Main 10 decoder
# reads (0-9 sub-layer and leading pictures, 16-21 IRAP), VPS, SPS, PPS.
DECODABLE: dict[str, frozenset[int]] = {
    "h264": frozenset({H264_SLICE, H264_IDR, H264_SPS, H264_PPS}),
    "hevc": frozenset({*range(0, 10), *range(16, 22), 32, 33, 34}),
}

_H264_NAMES = {
    0: "unspecified", 1: "slice", 2: "slice data partition A", 3: "slice data partition B",
    4: "slice data partition C", 5: "IDR slice", 6: "SEI", 7: "SPS", 8: "PPS",
    9: "access unit delimiter", 10: "end of sequence", 11: "end of stream", 12: "filler data",
    13: "SPS extension", 14: "prefix NAL", 15: "subset SPS", 16: "depth parameter set",
    19: "auxiliary slice", 20: "slice extension", 21: "depth slice extension",
}  # fmt: skip
_HEVC_NAMES = {
    32: "VPS", 33: "SPS", 34: "PPS", 35: "access unit delimiter", 36: "end of sequence",
    37: "end of bitstream", 38: "filler data", 39: "prefix SEI", 40: "suffix SEI",
}  # fmt: skip


def nal_type_name(kind: int, codec: str) -> str:
    """A readable name for a NAL unit type ("reserved"/"unspecified" when the standard has
    none)."""
    if codec == "h264":
        return _H264_NAMES.get(kind, "unspecified" if kind >= 24 else "reserved")
    if kind in _HEVC_NAMES:
        return _HEVC_NAMES[kind]
    if kind < 32:
        return "slice" if kind in DECODABLE["hevc"] else "reserved slice type"
    return "unspecified" if kind >= 48 else "reserved"


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
    keep: frozenset[int] = DECODABLE["h264"],
) -> bytes:
    """An H.264 packet as ``length_size``-prefixed NAL units, keeping only the ``keep`` types.

    Args:
        data: the packet, length-prefixed (``source_length_size``) or Annex B (None).
        length_size: the prefix size of the result.
        source_length_size: the prefix size of ``data``; None for start codes.
        keep: the NAL unit types to keep (an allow-list; default: what a decoder needs).
    """
    out = bytearray()
    for nal in iter_nals(data, source_length_size):
        if nal and nal_type(nal, "h264") in keep:
            out += len(nal).to_bytes(length_size, "big") + nal
    return bytes(out)


def extradata_nals(extradata: bytes | None, codec: str) -> tuple[list[bytes], int]:
    """The NAL units of a stream's codec record (``avcC``, ``hvcC`` or Annex B), and how many
    bytes of the record are neither header nor a NAL unit (trailing or unparsable bytes)."""
    if not extradata:
        return [], 0
    if extradata.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")):
        return list(iter_nals(extradata, None)), 0
    if codec == "h264" and extradata[0] == 1:
        return _avcc_nals(extradata)
    if codec == "hevc" and len(extradata) > 22:
        return _hvcc_nals(extradata)
    return [], len(extradata)


def _read_units(record: bytes, pos: int, count: int, units: list[bytes]) -> int:
    for _ in range(count):
        if pos + 2 > len(record):
            return len(record) + 1
        size = int.from_bytes(record[pos : pos + 2], "big")
        pos += 2
        if pos + size > len(record):
            return len(record) + 1
        units.append(record[pos : pos + size])
        pos += size
    return pos


def _avcc_nals(record: bytes) -> tuple[list[bytes], int]:
    units: list[bytes] = []
    pos = 5
    for count_mask in (0x1F, 0xFF):
        if pos >= len(record):
            return units, 0 if pos == len(record) else len(record)
        count = record[pos] & count_mask
        pos = _read_units(record, pos + 1, count, units)
        if pos > len(record):
            return units, len(record)
    if _high_profile_fields(record, pos):
        end = _read_units(record, pos + 4, record[pos + 3], units)
        if end <= len(record):
            pos = end
    return units, len(record) - pos


def _high_profile_fields(record: bytes, pos: int) -> bool:
    """Whether the 4 bytes at ``pos`` are the chroma / bit-depth fields High profiles append
    (their reserved bits all set)."""
    head = record[pos : pos + 4]
    return (
        len(head) == 4
        and record[1] in (100, 110, 122, 144)
        and head[0] & 0xFC == 0xFC
        and head[1] & 0xF8 == 0xF8
        and head[2] & 0xF8 == 0xF8
    )


def _hvcc_nals(record: bytes) -> tuple[list[bytes], int]:
    units: list[bytes] = []
    arrays = record[22]
    pos = 23
    for _ in range(arrays):
        if pos + 3 > len(record):
            return units, len(record)
        count = int.from_bytes(record[pos + 1 : pos + 3], "big")
        pos = _read_units(record, pos + 3, count, units)
        if pos > len(record):
            return units, len(record)
    return units, len(record) - pos


def parameter_sets(avcc: bytes, length_size: int) -> bytes:
    """The SPS and PPS of an ``avcC`` record, length-prefixed, ready to lead a packet."""
    units, _ = extradata_nals(avcc, "h264")
    return b"".join(
        len(u).to_bytes(length_size, "big") + u
        for u in units
        if nal_type(u, "h264") in (H264_SPS, H264_PPS)
    )


def avcc_record(avcc: bytes) -> bytes:
    """``avcc`` rebuilt from its SPS and PPS only: no trailing bytes, no other unit."""
    units, _ = extradata_nals(avcc, "h264")
    sps = [u for u in units if nal_type(u, "h264") == H264_SPS]
    pps = [u for u in units if nal_type(u, "h264") == H264_PPS]
    out = bytearray(avcc[:5])
    out.append(0xE0 | len(sps))
    for unit in sps:
        out += len(unit).to_bytes(2, "big") + unit
    out.append(len(pps))
    for unit in pps:
        out += len(unit).to_bytes(2, "big") + unit
    end = len(out)
    if _high_profile_fields(avcc, end):
        out += avcc[end : end + 3] + b"\x00"  # chroma and bit depths; no SPS extension
    return bytes(out)
