"""Regression tests for safety defects found in review: each once let a picture or a sound
through that should have been hidden."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from clips import DARK, textured, write_clip
from endoveil.detect.classifier import ScriptedClassifier, safe_scores
from endoveil.detect.labels import Labels, VideoSummary
from endoveil.detect.scan import scan_video
from endoveil.detect.temporal import TemporalParams, fill_scores, postprocess
from endoveil.live.loop import LiveConfig, LiveSession
from endoveil.live.sinks import Delivery, Sink
from endoveil.live.sources import Captured, Source, SourceError
from endoveil.media.audio import add_audio
from endoveil.media.probe import probe
from endoveil.media.reader import upright


def test_a_nan_score_counts_as_out_of_body() -> None:
    assert safe_scores(np.array([np.nan, np.inf, -np.inf, 0.2], np.float32)).tolist() == [
        1.0,
        1.0,
        1.0,
        pytest.approx(0.2),
    ]
    filled = fill_scores(np.array([0, 5, 10]), np.array([0.0, np.nan, 0.0], np.float32), 11)
    assert (filled[1:10] == 1.0).all()
    times = np.arange(11) / 10
    segments = postprocess(
        np.array([0, 5, 10]), np.array([0.0, np.nan, 0.0], np.float32), times, 1.1,
        TemporalParams(margin_s=0.0, smoothing_s=0.0),
    )  # fmt: skip
    assert segments and segments[0].start_frame <= 5 < segments[0].end_frame


def test_labels_refuse_nan_scores() -> None:
    with pytest.raises(ValueError, match="no NaN"):
        Labels(VideoSummary(1, 10, 10, 8, 8), np.array([0]), np.array([0.0]), np.array([np.nan]))


def test_a_model_answering_nan_hides_the_frames(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.mp4", 100, oob=lambda i: 40 <= i < 60)
    nan_when_bright = ScriptedClassifier(
        lambda x: np.where(x.mean(axis=(1, 2, 3)) > 128, np.nan, 0.0)
    )
    labels = scan_video(clip, nan_when_bright, params=TemporalParams(margin_s=0.0))
    assert labels.oob_mask()[40:60].all()


def test_frames_made_from_arrays_come_out_upright() -> None:
    frame = av.VideoFrame.from_ndarray(np.zeros((6, 8, 3), np.uint8), format="bgr24")
    out = upright(frame)  # a camera frame: no time base at all
    assert out.format.name == "yuv420p" and (out.width, out.height) == (8, 6)


class _FailingAt(Source):
    """Untimed array frames (like a camera's): dark, then bright (out of body) from ``oob``,
    and the connection drops at frame ``fail``."""

    name = "failing"

    def __init__(self, oob: int, fail: int) -> None:
        self.oob, self.fail, self.n = oob, fail, 0
        self.nominal_fps = 25.0

    def open(self) -> None:
        if self.n >= self.fail:
            raise SourceError("gone for good")

    def read(self) -> Captured | None:
        if self.n >= self.fail:
            raise SourceError("signal lost")
        level = 200 if self.n >= self.oob else DARK
        image = textured(level, self.n, (64, 48))
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        self.n += 1
        time.sleep(0.02)
        return Captured(frame, time.monotonic(), self.n - 1)

    def close(self) -> None:
        pass


class _Collect(Sink):
    name = "collect"

    def __init__(self) -> None:
        self.items: list[Delivery] = []

    def open(self, width: int, height: int, fps: float) -> None:
        pass

    def write(self, item: Delivery) -> None:
        self.items.append(item)

    def close(self) -> None:
        pass


def test_frames_held_back_are_hidden_when_the_source_drops() -> None:
    sink = _Collect()
    classifier = ScriptedClassifier(lambda x: (x.mean(axis=(1, 2, 3)) > 128).astype("f4"))
    config = LiveConfig(hold_s=0.0, delay_frames=3, reconnect=False, stall_s=0.3)
    LiveSession(_FailingAt(oob=10, fail=10), classifier, [sink], config).run()
    clear = [d.source_index for d in sink.items if not d.hidden]
    # Frames 7..9 were waiting for their look-ahead when the source dropped: never shown.
    assert clear and max(clear) <= 6


def test_kept_sound_stays_on_its_timestamps(tmp_path: Path) -> None:
    """A sound track that starts 1 s after the pictures must not be pulled forward."""
    path = tmp_path / "late.mp4"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        sound = container.add_stream("aac", rate=48000)
        for i in range(100):
            frame = av.VideoFrame.from_ndarray(textured(DARK, i, (160, 120)), format="rgb24")
            container.mux(video.encode(frame))
        for k in range(0, 3 * 48000, 1024):
            tone = 0.2 * np.sin(2 * np.pi * 440 * (k + np.arange(1024)) / 48000)
            chunk = av.AudioFrame.from_ndarray(
                tone.astype("f4")[None], format="fltp", layout="mono"
            )
            chunk.sample_rate, chunk.pts, chunk.time_base = 48000, 48000 + k, Fraction(1, 48000)
            container.mux(sound.encode(chunk))
        container.mux(video.encode(None))
        container.mux(sound.encode(None))
    out = tmp_path / "out.mp4"
    add_audio(path, probe(path), [(2.0, 3.0)], out, cut=False)
    with av.open(str(out)) as container:
        stream = container.streams.audio[0]
        samples = np.concatenate([f.to_ndarray()[0] for f in container.decode(stream)])
    block = stream.rate // 100  # judge loudness per 10 ms, not per sample (sines cross 0)
    loud = np.abs(samples[: len(samples) // block * block]).reshape(-1, block).max(axis=1)
    t = np.arange(len(loud)) / 100
    audible = loud > 1e-3
    assert not audible[t < 0.95].any(), "silence until the sound's own start"
    assert audible[(t > 1.1) & (t < 1.9)].all()
    assert not audible[(t > 2.05) & (t < 2.95)].any(), "silent while hidden"
