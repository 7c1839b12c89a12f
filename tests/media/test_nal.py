"""Only decodable NAL units leave endoveil; `inspect` names every other unit type it finds."""

from __future__ import annotations

from pathlib import Path

import pytest

from clips import write_clip
from endoveil.anonymize.offline import PipelineConfig, run_pipeline
from endoveil.detect.classifier import OnnxClassifier
from endoveil.media.inspect import Finding, inspect_file
from endoveil.media.nal import DECODABLE, avcc_record, extradata_nals, nal_type, reframe
from tamper import SECRET, plant_nals

PLANTED = (12, 23, 24, 30)  # filler, reserved, unspecified: what the review planted


def _nal_lines(findings: list[Finding]) -> list[str]:
    return [f.what for f in findings if "NAL unit" in f.what and f.severity == "identifying"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("planted")
    clip = write_clip(folder / "clip.mp4", 60, oob=lambda i: 30 <= i < 40, size=(160, 120))
    return plant_nals(clip, folder / "planted.mp4", PLANTED)


def test_reframe_keeps_only_the_allow_list() -> None:
    units = [bytes([kind]) + b"payload" for kind in range(32)]
    packet = b"".join(len(u).to_bytes(4, "big") + u for u in units)
    kept = reframe(packet, 4, source_length_size=4)
    types = []
    pos = 0
    while pos < len(kept):
        size = int.from_bytes(kept[pos : pos + 4], "big")
        types.append(nal_type(kept[pos + 4 : pos + 4 + size], "h264"))
        pos += 4 + size
    assert types == [1, 5, 7, 8]
    assert DECODABLE["h264"] == {1, 5, 7, 8}


def test_inspect_names_every_planted_type(planted: Path) -> None:
    lines = _nal_lines(inspect_file(planted))
    assert any(line.startswith("1 NAL unit(s) of type 6 (SEI)") for line in lines), lines
    for kind in PLANTED:  # one of each in every one of the 60 packets
        assert any(line.startswith(f"60 NAL unit(s) of type {kind} ") for line in lines), lines
    assert any("type 12 (filler data)" in line for line in lines), lines


def test_inspect_parses_hevc(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "h.mp4", 10, size=(160, 120), codec="libx265")
    planted = plant_nals(clip, tmp_path / "hp.mp4", (38, 41, 50), codec="hevc")
    lines = _nal_lines(inspect_file(planted))
    for kind in (38, 41, 50):
        assert any(f"of type {kind} " in line for line in lines), (kind, lines)


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_planted_units_do_not_survive(
    mode: str, planted: Path, classifier: OnnxClassifier, tmp_path: Path
) -> None:
    config = PipelineConfig(mode=mode, margin_s=0.0)  # type: ignore[arg-type]
    result = run_pipeline(planted, tmp_path, config, classifier)
    assert result.mode == mode and result.video_path is not None
    assert result.render is not None and result.render.inbody_frames_reencoded < 60
    assert inspect_file(result.video_path) == []
    assert SECRET not in result.video_path.read_bytes()


def test_codec_record_is_rebuilt_from_parameter_sets() -> None:
    sps, pps = b"\x67\x64\x00\x1f\xac", b"\x68\xeb\xe3"
    record = b"\x01\x64\x00\x1f\xff\xe1" + len(sps).to_bytes(2, "big") + sps
    record += b"\x01" + len(pps).to_bytes(2, "big") + pps
    units, stray = extradata_nals(record + SECRET, "h264")
    assert units == [sps, pps] and stray == len(SECRET)
    clean = avcc_record(record + SECRET)
    assert clean == record and extradata_nals(clean, "h264") == ([sps, pps], 0)
