"""The live loop end to end: real time from a file, a synthetic source, faults injected.

The fail-closed guarantee is checked frame by frame: every recorded frame either is the
source frame it claims to be, intact, or is anonymized; every truly out-of-body frame and
every frame that could not be judged is anonymized; the recording passes the offline
`verify` against its own labels.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest

from clips import write_clip
from endoveil.anonymize.verify import frame_similarity, verify
from endoveil.detect.classifier import OnnxClassifier
from endoveil.detect.labels import Labels
from endoveil.errors import ModelError, OutputError
from endoveil.live.loop import LiveConfig, LiveSession
from endoveil.live.preview import HttpPreviewSink
from endoveil.live.sinks import PushSink, RecordSink
from endoveil.live.sources import Captured, FileSource, Source, StreamSource
from endoveil.media.probe import probe

FPS = 25
OOB = range(40, 70)  # truly out-of-body source frames


@pytest.fixture(scope="module")
def live_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("live") / "source.mp4"
    return write_clip(path, 125, oob=lambda i: i in OOB, fps=FPS)


@pytest.fixture(scope="module")
def classifier(brightness_model_path: Path) -> OnnxClassifier:
    return OnnxClassifier(brightness_model_path)


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="gray").astype(np.float32) for f in container.decode(video=0)]


def _check_fail_closed(source: Path, recording: Path, must_hide: set[int]) -> Labels:
    """Every recorded frame is its source frame intact, or anonymized; ``must_hide`` hidden."""
    labels = Labels.load(recording.with_name(f"{recording.stem}.labels.json"))
    shown = labels.extra["source_frames"]
    hidden = labels.oob_mask()
    originals, outputs = _frames(source), _frames(recording)
    assert len(outputs) == len(shown) == labels.video.frame_count
    for k, (index, out) in enumerate(zip(shown, outputs, strict=True)):
        if index < 0:  # a paused card
            assert hidden[k]
            continue
        corr, psnr, _ = frame_similarity(originals[index], out)
        if hidden[k]:
            assert corr < 0.5, f"recorded frame {k} (source {index}) is marked hidden but shows"
        else:
            assert index not in must_hide, f"source frame {index} had to be hidden"
            assert psnr > 28, f"recorded frame {k} (source {index}) is not its source frame"
    return labels


def _record(tmp_path: Path) -> RecordSink:
    return RecordSink(tmp_path / "live.mp4", preset="ultrafast")


def test_file_in_real_time_is_anonymized_and_verifies(
    live_clip: Path, classifier: OnnxClassifier, tmp_path: Path
) -> None:
    sink = _record(tmp_path)
    config = LiveConfig(hold_s=0.4)
    started = time.monotonic()
    report = LiveSession(FileSource(live_clip), classifier, [sink], config).run()
    elapsed = time.monotonic() - started

    assert elapsed >= 125 / FPS * 0.95, "a real-time file source plays at its own rate"
    assert report.frames_out == 125 and report.capture_dropped == 0
    labels = _check_fail_closed(live_clip, sink.path, must_hide=set(OOB))
    hidden = labels.oob_mask()
    assert hidden[0], "the output is anonymized until the model has judged"
    # After the excursion (frames 40..69) the extraction memory waits for 1.5 s of frames
    # like the earlier in-body ones, then the hold: clear again from about frame 118.
    assert not hidden[30] and not hidden[-1], "in-body frames after the hold are clear"
    # One recorded frame per source frame here, so the offline verifier applies directly.
    result = verify(live_clip, sink.path, labels, timing=False)
    assert result.ok, result.problems
    # Timestamps follow the capture clock: 25 fps played in real time stays ~40 ms apart.
    steps = np.diff(probe(sink.path).frame_times)
    assert abs(float(np.median(steps)) - 1 / FPS) < 0.005


class _Stalling(Source):
    """The real file source, which stops delivering for ``pause_s`` at frame ``at``."""

    def __init__(self, inner: FileSource, at: int, pause_s: float) -> None:
        self.inner, self.at, self.pause_s = inner, at, pause_s
        self.name = "stalling file"

    def open(self) -> None:
        self.inner.open()
        self.nominal_fps = self.inner.nominal_fps

    def read(self) -> Captured | None:
        captured = self.inner.read()
        if captured is not None and captured.index == self.at:
            time.sleep(self.pause_s)
            return Captured(captured.frame, time.monotonic(), captured.index)
        return captured

    def close(self) -> None:
        self.inner.close()


def test_a_stalled_source_pauses_and_fails_closed(
    live_clip: Path, classifier: OnnxClassifier, tmp_path: Path
) -> None:
    sink = _record(tmp_path)
    source = _Stalling(FileSource(live_clip), at=90, pause_s=1.2)
    config = LiveConfig(hold_s=0.4, stall_s=0.3)
    report = LiveSession(source, classifier, [sink], config).run()

    assert report.paused_cards >= 2
    labels = _check_fail_closed(live_clip, sink.path, must_hide=set(OOB))
    shown = labels.extra["source_frames"]
    hidden = labels.oob_mask()
    after = [k for k, index in enumerate(shown) if 90 <= index < 90 + int(0.4 * FPS)]
    assert after and all(hidden[k] for k in after), "after a stall the hold starts over"


class _FailingModel:
    """The real classifier, raising for the source frames in ``broken``."""

    def __init__(self, inner: OnnxClassifier, broken: range) -> None:
        self.inner, self.broken = inner, broken
        self.input_size, self.threshold, self.info = inner.input_size, inner.threshold, inner.info
        self.calls = 0

    def score(self, images: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls - 1 in self.broken:
            raise ModelError("injected failure")
        return self.inner.score(images)


def test_a_failing_model_hides_the_picture(
    live_clip: Path, classifier: OnnxClassifier, tmp_path: Path
) -> None:
    sink = _record(tmp_path)
    broken = range(21, 31)  # call 0 is the warm-up, so these are source frames 20..29
    model = _FailingModel(classifier, broken)
    report = LiveSession(FileSource(live_clip), model, [sink], LiveConfig(hold_s=0.4)).run()

    assert report.model_failures == len(broken)
    _check_fail_closed(live_clip, sink.path, must_hide=set(OOB) | set(range(20, 30)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listen(port: int, frames: list[int], stop_after: int) -> threading.Thread:
    """A loopback MPEG-TS server that reads ``stop_after`` frames, then hangs up."""

    def serve() -> None:
        url = f"tcp://127.0.0.1:{port}?listen=1&listen_timeout=20000"
        with av.open(url, format="mpegts", timeout=20) as container:
            for n, _ in enumerate(container.decode(video=0)):
                frames.append(n)
                if n + 1 >= stop_after:
                    break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_dead_push_target_reconnects_and_spares_the_recording(
    live_clip: Path, classifier: OnnxClassifier, tmp_path: Path
) -> None:
    port = _free_port()
    first: list[int] = []
    server = _listen(port, first, stop_after=20)
    time.sleep(0.3)
    record, push = _record(tmp_path), PushSink(f"tcp://127.0.0.1:{port}")
    config = LiveConfig(hold_s=0.4, max_backoff_s=0.5)
    session = LiveSession(FileSource(live_clip, loop=True), classifier, [record, push], config)
    done = threading.Event()
    result: list = []
    runner = threading.Thread(target=lambda: result.append(session.run(done)), daemon=True)
    runner.start()
    server.join(timeout=20)
    assert len(first) == 20, "the push reached the loopback server"
    second: list[int] = []
    server = _listen(port, second, stop_after=10)  # the peer comes back
    server.join(timeout=20)
    done.set()
    runner.join(timeout=30)
    report = result[0]

    push_stats = report.sinks[push.name]
    assert push_stats.failures >= 1 and len(second) == 10, "the push reconnected"
    assert report.sinks[record.name].dropped == 0, "the recording lost nothing meanwhile"
    assert record.path.is_file()


def test_synthetic_source_with_browser_preview(classifier: OnnxClassifier, tmp_path: Path) -> None:
    session_ref: list[LiveSession] = []
    preview = HttpPreviewSink(0, status=lambda: session_ref[0].status.as_dict())
    source = StreamSource("lavfi:testsrc2=size=320x240:rate=25")
    session = LiveSession(source, classifier, [preview], LiveConfig(duration_s=3.0))
    session_ref.append(session)
    thread = threading.Thread(target=session.run, daemon=True)
    thread.start()
    time.sleep(1.5)
    page = urllib.request.urlopen(preview.url, timeout=5).read().decode()
    status = json.loads(urllib.request.urlopen(preview.url + "status.json", timeout=5).read())
    with urllib.request.urlopen(preview.url + "stream.mjpg", timeout=5) as stream:
        head = stream.read(4096)
    thread.join(timeout=10)

    assert "endoveil live" in page and "stream.mjpg" in page
    assert status["state"] in {"clear", "anonymized", "fail-closed"}
    assert b"Content-Type: image/jpeg" in head and b"\xff\xd8" in head
    assert session.report.frames_out > 25


def _running_session(classifier: OnnxClassifier) -> tuple[LiveSession, threading.Thread]:
    """A synthetic camera session running in a thread for 3 s."""
    source = StreamSource("lavfi:testsrc2=size=320x240:rate=25")
    session = LiveSession(source, classifier, [], LiveConfig(duration_s=3.0))
    thread = threading.Thread(target=session.run, daemon=True)
    thread.start()
    return session, thread


def test_recording_starts_and_stops_while_running(
    classifier: OnnxClassifier, tmp_path: Path
) -> None:
    session, thread = _running_session(classifier)
    time.sleep(0.8)
    sink = _record(tmp_path)
    session.add_sink(sink)
    time.sleep(1.2)
    stats = session.remove_sink(sink)
    thread.join(timeout=10)

    assert stats.delivered > 10 and not stats.errors
    recorded = probe(sink.path)
    assert recorded.frame_count == stats.delivered
    assert sink.path.with_name("live.labels.json").is_file()


def test_a_recording_never_replaces_a_file_that_appears_while_it_runs(
    classifier: OnnxClassifier, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The names are free when recording starts; another program then writes the labels name.
    Stopping keeps that file and puts the recording, which cannot be made again, under the
    next free name, video and labels together."""
    session, thread = _running_session(classifier)
    time.sleep(0.5)
    sink = _record(tmp_path)
    session.add_sink(sink)
    time.sleep(0.8)
    sink.labels_path.write_text("someone else's file")
    stats = session.remove_sink(sink)
    thread.join(timeout=10)

    assert sink.labels_path.read_text() == "someone else's file"
    assert not sink.path.exists(), "a video must not sit beside labels that are not its own"
    assert sink.placed == tmp_path / "live-1.mp4"
    assert stats.close_error is None and stats.delivered > 5
    assert probe(sink.placed).frame_count == stats.delivered
    labels = Labels.load(tmp_path / "live-1.labels.json")
    assert labels.video.frame_count == stats.delivered
    assert "live-1.mp4" in caplog.text
    assert not list(tmp_path.glob(".*endoveil.part*")), "temporary files must be removed"


def test_a_recording_that_cannot_start_leaves_no_temporary_file(tmp_path: Path) -> None:
    sink = RecordSink(tmp_path / "live.mp4", preset="no-such-preset")
    with pytest.raises(OutputError, match="no-such-preset") as refused:
        sink.open(320, 240, 25.0)
    assert refused.value.path == tmp_path / "live.mp4"
    sink.close()
    assert sink.placed is None
    assert list(tmp_path.iterdir()) == []


class _UnfinishableSink(RecordSink):
    def close(self) -> None:
        super().close()
        raise OSError(28, "No space left on device")


def test_cli_fails_when_a_recording_cannot_be_finished(
    brightness_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recording that could not be finalized (disk full) is not a success."""
    from typer.testing import CliRunner

    import endoveil.live.sinks
    from endoveil.cli import app

    monkeypatch.setattr(endoveil.live.sinks, "RecordSink", _UnfinishableSink)
    record = str(tmp_path / "live.mp4")
    args = ["live", "lavfi:testsrc2=size=160x120:rate=25", "--duration", "0.6", "-q",
            "--model", str(brightness_model_path), "--record", record]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "could not finish record live.mp4" in result.output
    assert "No space left" in result.output


@pytest.mark.parametrize("existing", ["live.mp4", "live.labels.json"])
def test_cli_refuses_to_record_over_an_existing_file(
    existing: str, brightness_model_path: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from endoveil.cli import app

    (tmp_path / existing).write_text("an earlier export")
    record = str(tmp_path / "live.mp4")
    args = ["live", "lavfi:testsrc2=size=160x120:rate=25", "--duration", "0.5", "-q",
            "--model", str(brightness_model_path), "--record", record]  # fmt: skip
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 1
    assert "exists" in refused.output and existing in refused.output
    assert (tmp_path / existing).read_text() == "an earlier export"

    forced = CliRunner().invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert probe(tmp_path / "live.mp4").frame_count > 0
    assert Labels.load(tmp_path / "live.labels.json").video.frame_count > 0


def test_cli_says_when_no_frame_ever_arrived(brightness_model_path: Path) -> None:
    from typer.testing import CliRunner

    from endoveil.cli import app

    port = _free_port()  # nothing listens there
    result = CliRunner().invoke(
        app,
        ["live", f"tcp://127.0.0.1:{port}", "--duration", "1", "-q",
         "--model", str(brightness_model_path)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "no frame received" in result.output
    assert f"tcp://127.0.0.1:{port}" in result.output


def _tinted(level: int, index: int, tint: tuple[float, float, float]) -> np.ndarray:
    from clips import textured

    return np.clip(textured(level, index, (320, 240)) * np.asarray(tint), 0, 255).astype(np.uint8)


def test_live_keeps_an_extraction_hidden_while_the_model_takes_the_drape_for_tissue(
    classifier: OnnxClassifier, tmp_path: Path
) -> None:
    # Tissue (red, scores ~3e-4), out through a bright trocar (scores ~1), a blue drape the
    # model scores low (~5e-3: taken for tissue), back through the trocar, tissue again.
    red, blue = (1.6, 0.6, 0.5), (0.5, 0.8, 1.7)
    parts = [(50, 63, red), (8, 200, (1, 1, 1)), (38, 85, blue), (8, 200, (1, 1, 1)), (75, 63, red)]
    frames = [_tinted(level, i, tint) for n, level, tint in parts for i in range(n)]
    clip = write_clip(tmp_path / "extraction.mp4", frames, fps=FPS)
    sink = _record(tmp_path)
    LiveSession(FileSource(clip), classifier, [sink], LiveConfig(hold_s=0.4)).run()

    outside = set(range(50, 104))
    labels = _check_fail_closed(clip, sink.path, must_hide=outside)
    shown = labels.extra["source_frames"]
    visible = {index for k, index in enumerate(shown) if not labels.oob_mask()[k]}
    # It comes back on evidence: the red tissue like before, for back_s (1.5 s) + hold.
    assert {index for index in visible if index >= 104 + int(2.2 * FPS)}
