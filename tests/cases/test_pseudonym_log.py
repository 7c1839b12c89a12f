"""Pseudonyms, the secret, and the mapping log (permissions, atomic rows under concurrency)."""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
import stat
from pathlib import Path

import pytest

from endoveil.cases.mapping_log import COLUMNS, MappingRow, append_row, check_log_location
from endoveil.cases.pseudonym import (
    hmac_pseudonym,
    is_pseudonym,
    load_secret,
    uuid_pseudonym,
)
from endoveil.errors import OutputError

SECRET = b"a secret of 32 bytes, not short"


def test_uuid_pseudonyms_are_full_uuid4() -> None:
    names = {uuid_pseudonym() for _ in range(1000)}
    assert len(names) == 1000
    assert all(is_pseudonym(n) and len(n) == 36 and n[14] == "4" for n in names)


def test_hmac_pseudonyms_are_stable_keyed_and_distinct() -> None:
    a = hmac_pseudonym(SECRET, "Müller, Hans")
    assert a == hmac_pseudonym(SECRET, "Müller, Hans")
    assert a != hmac_pseudonym(SECRET, "Müller, Hanz")
    assert a != hmac_pseudonym(SECRET + b"!", "Müller, Hans")
    assert is_pseudonym(a) and len(a) == 32
    assert len({hmac_pseudonym(SECRET, f"case {n}") for n in range(5000)}) == 5000


def test_secret_from_file_or_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret"
    path.write_bytes(SECRET + b"\n")
    assert load_secret(path) == SECRET
    monkeypatch.setenv("ENDOVEIL_SECRET", "from the environment, long enough")
    assert load_secret(None) == b"from the environment, long enough"
    monkeypatch.setenv("ENDOVEIL_SECRET", "short")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        load_secret(None)
    monkeypatch.delenv("ENDOVEIL_SECRET")
    with pytest.raises(ValueError, match="secret-file"):
        load_secret(None)
    with pytest.raises(ValueError, match="cannot read"):
        load_secret(tmp_path / "missing")


def _row(n: int) -> MappingRow:
    return MappingRow(
        case_folder=f"/archive/Zoë, Ørsted {n}",
        case=f"Zoë, Ørsted {n}",
        original_files=["VID1.MP4", 'a "quoted", name.mp4'],
        pseudonym=uuid_pseudonym(),
        created_at="2024-01-01T00:00:00+00:00",
        source_sha256=["0" * 64, "1" * 64],
        output_file="x.anonymized.mp4",
        output_sha256="2" * 64,
        labels_sha256="3" * 64,
        model={"name": "m", "version": "1", "sha256": "4" * 64},
        parameters={"action": "blur", "margin_s": 1.0},
    )


def _rows(log: Path) -> list[dict[str, str]]:
    with open(log, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_log_is_owner_only_with_one_header(tmp_path: Path) -> None:
    log = tmp_path / "private" / "mapping-log.csv"
    append_row(log, _row(1))
    append_row(log, _row(2))
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    rows = _rows(log)
    assert list(rows[0]) == list(COLUMNS)
    assert [r["case"] for r in rows] == ["Zoë, Ørsted 1", "Zoë, Ørsted 2"]
    assert json.loads(rows[0]["original_files"]) == ["VID1.MP4", 'a "quoted", name.mp4']


def test_log_made_readable_by_others_is_tightened(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text("")
    log.chmod(0o644)
    append_row(log, _row(1))
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_concurrent_appends_give_whole_rows(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    rows_in = [(log, _row(n)) for n in range(60)]
    with mp.get_context("spawn").Pool(3) as pool:
        pool.starmap(append_row, rows_in, chunksize=1)
    rows = _rows(log)
    assert len(rows) == 60
    assert sorted(r["case"] for r in rows) == sorted(f"Zoë, Ørsted {n}" for n in range(60))
    assert all(len(r) == len(COLUMNS) and None not in r for r in rows)


@pytest.mark.parametrize(
    ("log", "inside"),
    [("out/log.csv", True), ("out/sub/log.csv", True), ("out", True), ("elsewhere.csv", False)],
)
def test_log_must_lie_outside_the_output_root(tmp_path: Path, log: str, inside: bool) -> None:
    (tmp_path / "out").mkdir()
    if inside:
        with pytest.raises(OutputError, match="outside the output folder"):
            check_log_location(tmp_path / log, tmp_path / "out")
    else:
        check_log_location(tmp_path / log, tmp_path / "out")


def test_a_row_is_never_appended_to_a_file_that_is_not_a_mapping_log(tmp_path: Path) -> None:
    # A log setting pointing at a video (or any other file) must leave that file untouched.
    for name, content in [("notes.csv", b"patient,notes\nSmith,ok\n"), ("log.csv", b"\x00\x01")]:
        other = tmp_path / name
        other.write_bytes(content)
        other.chmod(0o644)
        with pytest.raises(OutputError, match="not an endoveil mapping log"):
            append_row(other, _row(1))
        with pytest.raises(OutputError, match="not an endoveil mapping log"):
            check_log_location(other, tmp_path / "out")
        assert other.read_bytes() == content and other.stat().st_mode & 0o777 == 0o644
    with pytest.raises(OutputError, match="video"):
        check_log_location(tmp_path / "VID1.mp4", tmp_path / "out")
    good = tmp_path / "mapping.csv"
    append_row(good, _row(1))
    append_row(good, _row(1))
    check_log_location(good, tmp_path / "out")
    assert good.read_text().splitlines()[0] == ",".join(COLUMNS)
