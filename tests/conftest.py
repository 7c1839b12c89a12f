from __future__ import annotations

from pathlib import Path

import pytest

from clips import SHARED_DATA, brightness_model, write_clip


@pytest.fixture(scope="session")
def brightness_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return brightness_model(tmp_path_factory.mktemp("model") / "brightness.onnx")


@pytest.fixture(scope="session")
def known_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s at 25 fps, 320x240; frames 25..49 are bright (out of body), the rest dark."""
    path = tmp_path_factory.mktemp("clips") / "known.mp4"
    return write_clip(path, 75, oob=lambda i: 25 <= i < 50)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"the shared data set is not at {SHARED_DATA}")
    return SHARED_DATA
