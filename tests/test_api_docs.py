"""The examples of docs/api.md run, in order, as one script: the page cannot go stale."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

API_DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def _examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", API_DOC.read_text(encoding="utf-8"), re.S)


def test_the_page_has_examples() -> None:
    assert len(_examples()) >= 5


@pytest.mark.slow
def test_api_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    namespace: dict[str, object] = {"__name__": "api_doc"}
    for number, code in enumerate(_examples(), start=1):
        exec(compile(code, f"{API_DOC.name} example {number}", "exec"), namespace)
