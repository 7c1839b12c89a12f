"""``endoveil cases``: exit codes, usage errors, the secret, the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from case_archive import build_archive
from endoveil.cases.pseudonym import hmac_pseudonym
from endoveil.cli import app

runner = CliRunner()


def _cases(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, ["cases", *map(str, args), "-q"])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--pseudonym", "hmac"], "secret-file"),
        (["--pseudonym", "md5"], "--pseudonym must be one of"),
        (["--action", "smudge"], "--action must be one of"),
        (["--group-by", "("], "not a valid regular expression"),
        (["--threshold", "0"], "--threshold"),
    ],
)
def test_usage_errors_exit_2(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str], message: str
) -> None:
    monkeypatch.delenv("ENDOVEIL_SECRET", raising=False)
    code, output = _cases(archive, "-o", tmp_path / "out", "--log", tmp_path / "l.csv", *extra)
    assert code == 2 and message in output


def test_log_in_output_root_and_empty_root_exit_2(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    code, output = _cases(tmp_path / "in", "-o", tmp_path / "out", "--log", tmp_path / "out/l.csv")
    assert code == 2 and "outside the output folder" in output
    code, output = _cases(tmp_path / "in", "-o", tmp_path / "out", "--log", tmp_path / "l.csv")
    assert code == 2 and "no case found" in output


def test_failed_case_exits_1_and_hmac_names_outputs(
    brightness_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = build_archive(tmp_path / "in", kinds=["copy", "broken"])
    secret_file = tmp_path / "secret"
    secret_file.write_text("correct horse battery staple\n")
    monkeypatch.delenv("ENDOVEIL_SECRET", raising=False)
    out = tmp_path / "out"
    args = [archive, "-o", out, "--log", tmp_path / "log.csv", "--model", brightness_model_path]
    code, output = _cases(
        *args, "--mode", "fast", "--pseudonym", "hmac", "--secret-file", secret_file
    )
    assert code == 1
    assert "Broken Ünïcode case" in output, "the operator's console names the failed case"
    pseudonym = hmac_pseudonym(b"correct horse battery staple", "Müller, Hans 2024-01-02")
    assert (out / f"{pseudonym}.anonymized.mp4").is_file()
    report = json.loads((out / "cases-report.json").read_text(encoding="utf-8"))
    assert (report["done"], report["failed"]) == (1, 1)

    # Resumed: the done case is skipped, the failed one stays failed (exit 1) until retried.
    code, _ = _cases(*args, "--mode", "fast", "--pseudonym", "hmac", "--secret-file", secret_file)
    assert code == 1
    report = json.loads((out / "cases-report.json").read_text(encoding="utf-8"))
    assert report["skipped"] == 2


def test_secret_in_output_root_exits_2(tmp_path: Path) -> None:
    """Whoever gets the shared outputs must not get the key to test names against them."""
    archive = build_archive(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    secret = out / "secret.txt"
    secret.write_text("a long enough secret for hmac\n")
    result = CliRunner().invoke(
        app,
        ["cases", str(archive), "-o", str(out), "--log", str(tmp_path / "log.csv"),
         "--pseudonym", "hmac", "--secret-file", str(secret)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "pseudonym secret must lie outside the output folder" in result.output


def test_report_in_output_root_keeps_no_run_order() -> None:
    from endoveil.cases.report import BatchReport, CaseEntry, render_table

    entries = [CaseEntry(2, "ffff", "done"), CaseEntry(1, "aaaa", "failed")]
    report = BatchReport(started_at="2026-11-22T00:00:00Z", cases=2, entries=entries)
    rows = report.to_dict()["entries"]
    assert [r["pseudonym"] for r in rows] == ["aaaa", "ffff"]
    assert all("index" not in r for r in rows)
    assert render_table(report).splitlines()[1].startswith("aaaa")
