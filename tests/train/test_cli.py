"""The train and evaluate commands, through a Typer app of their own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from clips import write_clip
from endoveil import cli_train


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    cli_train.register(app)
    return app


def test_train_then_evaluate_writes_model_and_reports(
    app: typer.Typer, tiny_data: Path, tiny_val: Path, tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    runner = CliRunner()
    model = tmp_path / "m.onnx"
    args = [
        "train",
        str(tiny_data),
        "--val",
        str(tiny_val),
        "-o",
        str(model),
        "--epochs",
        "1",
        "--input-size",
        "64",
        "--batch-size",
        "8",
        "--samples-per-epoch",
        "8",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert model.is_file() and "threshold" in result.output

    # A labelled video beside the images: all frames out of body.
    videos = tmp_path / "videos"
    videos.mkdir()
    clip = write_clip(videos / "room__clip.mp4", 8, oob=lambda _i: True, fps=8, size=(96, 64))
    clip.with_name("room__clip.intervals.csv").write_text("start_s,end_s\n0,1.0\n")
    report = tmp_path / "report"
    result = runner.invoke(
        app,
        ["evaluate", str(model), str(tiny_val), str(clip), "-o", str(report), "--threshold", "0.5"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((report / "metrics.json").read_text())
    assert summary["threshold"] == 0.5
    assert summary["frames"]["frames"] == 12 + 8
    assert summary["video_totals"]["oob_frames"] == 8
    assert summary["video_totals"]["leaked"] + summary["video_totals"]["lost"] >= 0
    # One excursion (the whole clip), reported per video, in the text and in the page.
    assert summary["video_totals"]["excursions"] == 1
    hidden = summary["video_totals"]["excursions_hidden"]
    assert hidden == (1 if summary["video_totals"]["leaked"] == 0 else 0)
    assert summary["videos"][0]["excursion_details"][0]["frames"] == 8
    assert f"{hidden} of 1 out-of-body excursions fully hidden" in " ".join(result.output.split())
    assert set(summary["sources"]) == {"in_a", "in_b", "ou_c", "ou_d", "room"}
    page = (report / "report.html").read_text()
    assert "excursions fully hidden: " + str(hidden) + " of 1" in page
    assert (
        page.count("<svg") == 2
        and "room__clip.mp4" in page
        and "http" not in page.replace("http://www.w3.org/2000/svg", "")
    )


def test_errors_are_one_red_line(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["evaluate", str(tmp_path / "nope.onnx"), str(tmp_path), "-o", str(tmp_path / "r")]
    )
    assert result.exit_code == 1
    assert "model file not found" in result.output and "Traceback" not in result.output


def test_train_without_torch_says_how_to_install(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    result = CliRunner().invoke(app, ["train", str(tmp_path), "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2
    assert "pip install 'endoveil[train]'" in result.output


def test_core_and_evaluation_import_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import endoveil.cli_train, endoveil.train.evaluate, endoveil.train.report\n"
        "import endoveil.detect.classifier\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_scores_are_probabilities(tmp_path: Path) -> None:
    # Guards the sigmoid in the graph: extreme inputs stay within [0, 1].
    pytest.importorskip("torch")
    from endoveil.detect.classifier import OnnxClassifier
    from endoveil.train.export import export_onnx
    from endoveil.train.network import EfficientNetLite0

    export_onnx(EfficientNetLite0(64).eval(), tmp_path / "m.onnx", {})
    images = np.stack([np.zeros((64, 64, 3), np.uint8), np.full((64, 64, 3), 255, np.uint8)])
    p = OnnxClassifier(tmp_path / "m.onnx").score(images)
    assert ((p >= 0) & (p <= 1)).all()
