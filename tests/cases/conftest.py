from __future__ import annotations

from pathlib import Path

import pytest

from case_archive import build_archive


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three cases: stream-copy joins, mismatched segments, a corrupt segment."""
    return build_archive(tmp_path_factory.mktemp("archive") / "input root")
