from __future__ import annotations

from pathlib import Path

import pytest

from endoveil.detect.classifier import OnnxClassifier


@pytest.fixture(scope="session")
def classifier(brightness_model_path: Path) -> OnnxClassifier:
    return OnnxClassifier(brightness_model_path, threads=1)
