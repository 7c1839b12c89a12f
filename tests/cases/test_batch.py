"""Batches: every output verified, nothing original in the output root, log, resume, workers."""

from __future__ import annotations

import csv
import json
import os
import stat
import unicodedata
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from case_archive import NAMES, build_archive, original_strings
from endoveil.anonymize.offline import PipelineConfig
from endoveil.anonymize.verify import verify
from endoveil.cases.batch import BatchSettings, run_batch
from endoveil.cases.discover import discover_cases
from endoveil.cases.merge import check_segments, merge_segments, plan_merge
from endoveil.cases.pseudonym import hmac_pseudonym
from endoveil.cases.report import REPORT_JSON, BatchReport
from endoveil.cases.state import STATE_DIR
from endoveil.cases.worker import sha256
from endoveil.detect.labels import Labels
from endoveil.errors import OutputError
from endoveil.media.inspect import inspect_file

CONFIG = PipelineConfig(margin_s=0.2, smoothing_s=0.2)


@pytest.fixture(scope="module")
def run(
    archive: Path, brightness_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[BatchReport, BatchSettings]:
    base = tmp_path_factory.mktemp("batch")
    settings = BatchSettings(
        output_root=base / "out",
        log=base / "private" / "mapping-log.csv",
        pipeline=CONFIG,
        model=brightness_model_path,
        verify=True,
    )
    return run_batch(discover_cases(archive).cases, settings), settings


def test_good_cases_are_done_and_the_broken_one_reported(
    run: tuple[BatchReport, BatchSettings],
) -> None:
    report, settings = run
    entries = {e.index: e for e in report.entries}
    assert [entries[i].status for i in (1, 2, 3)] == ["failed", "done", "done"]
    assert "<segment 2>" in entries[1].detail and "MediaError" in entries[1].detail
    assert entries[2].merge == "copy" and entries[3].merge == "re-encode"
    assert "segment 2 is 320x240" in entries[3].detail
    assert entries[2].verified and entries[3].verified
    assert not list(settings.output_root.glob(f"{entries[1].pseudonym}*")), "failed: no output"
    saved = json.loads((settings.output_root / REPORT_JSON).read_text(encoding="utf-8"))
    assert (saved["done"], saved["failed"], saved["cases"]) == (2, 1, 3)


def test_outputs_hide_the_known_out_of_body_frames(
    run: tuple[BatchReport, BatchSettings], archive: Path
) -> None:
    report, settings = run
    entries = {e.index: e for e in report.entries}
    # Case 2 (copy): VID2 (frames 25..49 of the merge) starts with 8 bright frames.
    # Case 3 (re-encode): part 2 (frames 25..54) is bright from its frame 20 on.
    truths = {2: range(25, 33), 3: range(45, 55)}
    for index, truth in truths.items():
        pseudonym = entries[index].pseudonym
        labels = Labels.load(settings.output_root / f"{pseudonym}.labels.json")
        assert labels.oob_mask()[list(truth)].all()
        assert not labels.oob_mask()[:12].any(), "the dark start stays in body"
        video = settings.output_root / f"{pseudonym}.anonymized.mp4"
        assert not [f for f in inspect_file(video) if f.severity == "identifying"]

    # Independently of the batch's own check: merge the copy case again (stream copy is
    # deterministic) and verify the output against it.
    case = discover_cases(archive).cases[1]
    merged = merge_segments(
        plan_merge(check_segments(case.segments)), settings.log.parent / "m.mp4"
    )
    pseudonym = entries[2].pseudonym
    checked = verify(
        merged.path,
        settings.output_root / f"{pseudonym}.anonymized.mp4",
        settings.output_root / f"{pseudonym}.labels.json",
    )
    assert checked.ok, checked.problems
    merged.path.unlink()


def _forms(text: str) -> set[bytes]:
    forms = set()
    for normal in ("NFC", "NFD"):
        s = unicodedata.normalize(normal, text)
        forms |= {s.encode("utf-8"), json.dumps(s)[1:-1].encode("ascii"), s.encode("utf-16-le")}
    return forms


def test_no_original_name_anywhere_in_the_output_root(
    run: tuple[BatchReport, BatchSettings], archive: Path
) -> None:
    _, settings = run
    needles = {s: _forms(s) for s in original_strings(archive)}
    assert "Müller" in needles and "VID10.MP4" in needles and str(archive) in needles
    files = [p for p in settings.output_root.rglob("*") if p.is_file()]
    assert any(p.parent.name == STATE_DIR for p in files), "state files are searched too"
    for path in files:
        relative = str(path.relative_to(settings.output_root))
        data = path.read_bytes()
        for original, forms in needles.items():
            assert original.casefold() not in unicodedata.normalize("NFC", relative).casefold()
            assert not any(f in data for f in forms), f"{original!r} appears in {relative}"


def test_mapping_log_links_pseudonyms_to_originals(
    run: tuple[BatchReport, BatchSettings], archive: Path
) -> None:
    _, settings = run
    log = settings.log
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert settings.output_root.resolve() not in log.resolve().parents
    with open(log, encoding="utf-8", newline="") as f:
        rows = {r["case"]: r for r in csv.DictReader(f)}
    assert set(rows) == {NAMES["copy"], NAMES["mixed"]}
    row = rows[NAMES["copy"]]
    assert json.loads(row["original_files"]) == ["VID1.MP4", "VID2.MP4", "VID10.MP4"]
    assert row["case_folder"] == os.path.abspath(archive / NAMES["copy"])
    output = settings.output_root / row["output_file"]
    assert output.name == f"{row['pseudonym']}.anonymized.mp4" and output.is_file()
    assert row["output_sha256"] == sha256(output)
    assert json.loads(row["source_sha256"]) == [
        sha256(archive / NAMES["copy"] / n) for n in ("VID1.MP4", "VID2.MP4", "VID10.MP4")
    ]
    assert json.loads(row["model"])["name"] == "brightness-test"
    assert json.loads(row["parameters"])["merge"] == "copy"


def test_rerun_skips_finished_and_failed_cases(
    run: tuple[BatchReport, BatchSettings], archive: Path
) -> None:
    _, settings = run
    outputs = {p: p.stat().st_mtime_ns for p in settings.output_root.glob("*.mp4")}
    cases = discover_cases(archive).cases
    again = run_batch(cases, settings)
    assert [e.status for e in sorted(again.entries, key=lambda e: e.index)] == ["skipped"] * 3
    assert {p: p.stat().st_mtime_ns for p in settings.output_root.glob("*.mp4")} == outputs

    retried = run_batch(cases, replace(settings, retry_failed=True))
    statuses = sorted((e.index, e.status) for e in retried.entries)
    assert statuses == [(1, "failed"), (2, "skipped"), (3, "skipped")]
    with open(settings.log, encoding="utf-8") as f:
        assert len(f.readlines()) == 3, "header + one row per finished case, no more"

    with pytest.raises(OutputError, match="other settings"):
        run_batch(cases, replace(settings, pipeline=replace(CONFIG, action="pixelate")))


def test_hmac_names_are_the_same_on_every_run(brightness_model_path: Path, tmp_path: Path) -> None:
    root = build_archive(tmp_path / "in", kinds=["copy"])
    cases = discover_cases(root).cases
    secret = b"0123456789abcdef0123456789abcdef"
    names = []
    for n in range(2):
        settings = BatchSettings(
            output_root=tmp_path / f"out{n}",
            log=tmp_path / f"log{n}.csv",
            pipeline=replace(CONFIG, mode="fast"),
            model=brightness_model_path,
            pseudonym="hmac",
            secret=secret,
        )
        report = run_batch(cases, settings)
        names.append(report.entries[0].pseudonym)
    assert names[0] == names[1] == hmac_pseudonym(secret, NAMES["copy"])
    with pytest.raises(OutputError, match="another secret"):
        run_batch(cases, replace(settings, secret=b"another secret, 16 bytes+"))


def test_worker_processes_give_the_same_results(
    archive: Path, brightness_model_path: Path, tmp_path: Path
) -> None:
    settings = BatchSettings(
        output_root=tmp_path / "out",
        log=tmp_path / "log.csv",
        pipeline=replace(CONFIG, mode="fast", action="cut"),
        model=brightness_model_path,
        verify=True,
        workers=2,
    )
    report = run_batch(discover_cases(archive).cases, settings)
    assert sorted((e.index, e.status, e.verified) for e in report.entries) == [
        (1, "failed", None),
        (2, "done", True),
        (3, "done", True),
    ]
    leftovers = [p for p in tmp_path.rglob("*") if ".part" in p.name]
    work = tmp_path / "work"  # beside the mapping log
    assert leftovers == [] and not any(p.is_file() for p in work.rglob("*"))
    assert np.isclose(report.video_hours_done * 3600, 3.0 + 2.2, atol=0.05)


def test_log_inside_the_output_root_is_refused(archive: Path, tmp_path: Path) -> None:
    settings = BatchSettings(output_root=tmp_path / "out", log=tmp_path / "out" / "log.csv")
    with pytest.raises(OutputError, match="outside the output folder"):
        run_batch(discover_cases(archive).cases, settings)
    assert not (tmp_path / "out").exists()


def test_merged_cases_never_sit_in_the_output_root(
    brightness_model_path: Path, tmp_path: Path
) -> None:
    """The merged, not yet anonymized case is scratch beside the private log, not in the
    shared folder (where sync clients could pick it up while the batch runs)."""
    from endoveil.anonymize.offline import PipelineConfig
    from endoveil.cases.batch import BatchSettings, run_batch
    from endoveil.cases.discover import discover_cases

    archive = build_archive(tmp_path / "in")
    seen: list[Path] = []

    class Spy:
        def batch_started(self, cases: int, to_run: int) -> None:
            pass

        def case_progress(self, index: int, stage: str, done: int, total: int) -> None:
            if stage == "detect":
                seen.extend(p for p in (tmp_path / "out").rglob("*") if p.is_file())

        def case_finished(self, entry: object, case: object) -> None:
            pass

    settings = BatchSettings(
        output_root=tmp_path / "out",
        log=tmp_path / "private" / "log.csv",
        pipeline=PipelineConfig(mode="fast", margin_s=0.2),
        model=brightness_model_path,
    )
    run_batch(discover_cases(archive).cases, settings, observer=Spy())
    assert seen, "the spy looked while cases ran"
    raw = [p for p in seen if p.suffix.lower() in {".mp4", ".mov", ".mkv"}]
    assert not [p for p in raw if ".anonymized." not in p.name]
    assert (tmp_path / "private" / "work").is_dir()
