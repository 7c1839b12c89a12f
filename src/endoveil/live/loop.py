"""The live loop: capture → judge every frame → anonymize → sinks, failing closed.

Three kinds of threads share the work: one captures and decodes (`Source`), the loop itself
scores every frame and renders it, and each sink encodes and writes in its own thread. A frame
is never handed to a sink before it has been judged:

- the output starts anonymized and turns clear only after ``hold_s`` of in-body scores
  (`CausalGate`); once a frame scores confidently out of body (or a half-second run of frames
  is odd for this video: far above its in-body scores, unlike its colours), it stays
  anonymized until the extraction memory has seen the scope back inside (this video's own
  in-body colours and scores, sustained; `endoveil.detect.extraction`);
- a frame that reaches the model too late (``max_lag_s``), or that the model fails on, is not
  scored and counts as suspicious;
- when the source stalls, sinks get a "paused" card instead of pictures, and the gate starts
  over.

``delay_frames`` holds every frame back that many frames, so a frame is also hidden when any
of the frames after it is suspicious: more latency, but the exit from the body is hidden
before it happens.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import av
import cv2
import numpy as np

from endoveil.anonymize.render import Action, Renderer, renderer_for
from endoveil.detect.classifier import Classifier
from endoveil.detect.extraction import colour_signatures
from endoveil.detect.temporal import CausalGate, TemporalParams
from endoveil.live.sinks import LIVE_TIME_BASE, Delivery, Sink, SinkRunner, SinkStats
from endoveil.live.sources import Captured, Source
from endoveil.media.reader import to_model_image, upright

__all__ = ["LiveConfig", "LiveReport", "LiveSession", "LiveStatus"]

log = logging.getLogger("endoveil.live")

_END, _LOST = "end", "lost"


@dataclass(frozen=True)
class LiveConfig:
    """Settings of a live session.

    Args:
        action: blur, pixelate or black (``cut`` makes no sense live).
        threshold: p(out of body) threshold; None uses the model's.
        hold_s: seconds of in-body scores needed before the output turns clear.
        delay_frames: frames held back for look-ahead (two-sided) hiding.
        max_lag_s: a frame older than this when the model gets to it is not scored.
        stall_s: no frame for this long means the source stalled.
        reconnect: reopen a lost source (with back-off) instead of ending.
        duration_s: stop after this many seconds (None: until stopped or the source ends).
    """

    action: Action = "blur"
    threshold: float | None = None
    hold_s: float = 2.0
    delay_frames: int = 0
    max_lag_s: float = 0.2
    stall_s: float = 0.5
    reconnect: bool = True
    max_backoff_s: float = 10.0
    duration_s: float | None = None

    def __post_init__(self) -> None:
        if self.action == "cut":
            raise ValueError("live output cannot cut frames; use blur, pixelate or black")
        if self.delay_frames < 0 or self.hold_s < 0 or self.max_lag_s <= 0 or self.stall_s <= 0:
            raise ValueError("delay_frames, hold_s must be >= 0; max_lag_s, stall_s > 0")


@dataclass
class LiveStatus:
    """What the loop is doing now (reported about once a second)."""

    state: str = "starting"
    fps: float = 0.0
    latency_ms: float = 0.0
    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class LiveReport:
    """What a session did, when it ends."""

    frames_captured: int = 0
    frames_out: int = 0
    frames_hidden: int = 0
    frames_scored: int = 0
    frames_not_scored: int = 0
    capture_dropped: int = 0
    paused_cards: int = 0
    source_failures: int = 0
    last_source_error: str = ""
    model_failures: int = 0
    duration_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    sinks: dict[str, SinkStats] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames_out / self.duration_s if self.duration_s > 0 else 0.0

    def latency_percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else 0.0


@dataclass
class _Pending:
    captured: Captured
    p_out: float | None
    hidden: bool
    state: str


class LiveSession:
    """One live run: a source, a model, and the sinks it feeds.

    Args:
        source: where frames come from.
        classifier: the model; scored on every frame.
        sinks: where the anonymized frames go.
        config: the session's settings.
        on_status: called about once a second with the current `LiveStatus`.
    """

    def __init__(
        self,
        source: Source,
        classifier: Classifier,
        sinks: list[Sink],
        config: LiveConfig,
        *,
        on_status: Callable[[LiveStatus], None] | None = None,
    ) -> None:
        self.source, self.classifier, self.config = source, classifier, config
        self.runners = [SinkRunner(s, max_backoff_s=config.max_backoff_s) for s in sinks]
        self._runners_lock = threading.Lock()
        self.on_status = on_status
        threshold = config.threshold if config.threshold is not None else classifier.threshold
        self.params = TemporalParams(threshold=threshold)
        self.gate = CausalGate(self.params, hold_s=config.hold_s)
        renderer = renderer_for(config.action)
        assert renderer is not None  # "cut" is refused by LiveConfig
        self.renderer: Renderer = renderer
        self.status = LiveStatus()
        self.report = LiveReport()
        self._incoming: queue.Queue[Captured | str] = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        self._t0: float | None = None
        self._last_pts = -1
        self._size: tuple[int, int] | None = None
        self._pending: deque[_Pending] = deque()
        self._recent: deque[tuple[float, float]] = deque(maxlen=120)
        # Frames emitted while a caller steps the session itself (`step`), handed back to it.
        self._outbox: list[Delivery] = []
        self._stepped = False

    # the public run ------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> LiveReport:
        """Run until ``stop`` is set, the duration is reached or a finite source ends."""
        stop = stop or threading.Event()
        self._warm_up()
        started = time.monotonic()
        capture = threading.Thread(target=self._capture, name="endoveil-capture", daemon=True)
        for runner in self.runners:
            runner.start()
        capture.start()
        next_status = started + 1.0
        try:
            while not stop.is_set():
                if self.config.duration_s and time.monotonic() - started >= self.config.duration_s:
                    break
                try:
                    item = self._incoming.get(timeout=self.config.stall_s)
                except queue.Empty:
                    self._stalled()
                    continue
                if item == _END:
                    break
                if item == _LOST:
                    self._stalled()
                    continue
                assert isinstance(item, Captured)
                self._judge(item)
                if time.monotonic() >= next_status:
                    next_status += 1.0
                    self._report_status()
        finally:
            self._stop.set()
            self._flush(final=True)
            capture.join(timeout=5)
            for runner in self.runners:
                runner.stop()
            for runner in self.runners:
                runner.join(timeout=30)
                self.report.sinks[runner.sink.name] = runner.stats
            self.report.duration_s = time.monotonic() - started
        return self.report

    # stepping in the caller's thread (endoveil.live_frames) ----------------------------------
    def start(self) -> None:
        """Prepare to be stepped with `step` instead of `run` (warms the model up)."""
        self._stepped = True
        self._warm_up()

    def step(self, captured: Captured) -> list[Delivery]:
        """Judge one captured frame now; return the frames that are due (``delay_frames``
        later, so possibly none), each already anonymized where hidden."""
        self.report.frames_captured += 1
        self._judge(captured)
        return self._take_outbox()

    def finish(self) -> list[Delivery]:
        """The source ended: the frames still held back, all hidden (no look-ahead left)."""
        self._flush(final=True)
        return self._take_outbox()

    def _take_outbox(self) -> list[Delivery]:
        out, self._outbox = self._outbox, []
        return out

    def add_sink(self, sink: Sink) -> None:
        """Start feeding one more sink while running (e.g. start recording)."""
        runner = SinkRunner(sink, max_backoff_s=self.config.max_backoff_s)
        if self._size is not None:
            runner.configure(*self._size, self.source.nominal_fps)
        runner.start()
        with self._runners_lock:
            self.runners = [*self.runners, runner]

    def remove_sink(self, sink: Sink, timeout: float = 30.0) -> SinkStats:
        """Stop feeding ``sink``, finish it (finalize a recording) and return its stats."""
        with self._runners_lock:
            runner = next(r for r in self.runners if r.sink is sink)
            self.runners = [r for r in self.runners if r is not runner]
        runner.stop()
        runner.join(timeout=timeout)
        self.report.sinks[sink.name] = runner.stats
        return runner.stats

    def _warm_up(self) -> None:
        """Run the model once before the first frame, so the first frames are not late."""
        size = self.classifier.input_size
        try:
            self.classifier.score(np.zeros((1, size, size, 3), np.uint8))
        except Exception as exc:
            log.error("model failed on warm-up: %s", exc)

    # capture thread ------------------------------------------------------------------------
    def _capture(self) -> None:
        backoff = 0.5
        opened = False
        while not self._stop.is_set():
            try:
                if not opened:
                    self.source.open()
                    opened, backoff = True, 0.5
                    log.info("%s: open (%.2f fps)", self.source.name, self.source.nominal_fps)
                captured = self.source.read()
            except Exception as exc:  # a source may fail in any way; the loop must fail closed
                self.report.source_failures += 1
                self.report.last_source_error = str(exc)
                log.warning("%s", exc)
                self.source.close()
                opened = False
                self._put(_LOST)
                if not self.config.reconnect:
                    break
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.config.max_backoff_s)
                continue
            if captured is None:
                break
            self.report.frames_captured += 1
            self._put(captured)
        self.source.close()
        self._put(_END)

    def _put(self, item: Captured | str) -> None:
        """Hand over without blocking: when the loop is behind, the oldest frame is dropped."""
        while True:
            try:
                self._incoming.put_nowait(item)
                return
            except queue.Full:
                try:
                    old = self._incoming.get_nowait()
                    if isinstance(old, Captured):
                        self.report.capture_dropped += 1
                except queue.Empty:
                    pass

    # judging ---------------------------------------------------------------------------------
    def _judge(self, captured: Captured) -> None:
        if self._t0 is None:
            self._t0 = captured.t_capture
            self._start_sinks(captured)
        p_out, colour = self._score(captured)
        t = captured.t_capture - self._t0
        hidden = self.gate.update(t, p_out, colour)
        state = "fail-closed" if p_out is None else ("anonymized" if hidden else "clear")
        self._pending.append(_Pending(captured, p_out, hidden, state))
        self._flush(final=False)

    def _score(self, captured: Captured) -> tuple[float | None, np.ndarray | None]:
        """The frame's p_out (None: not scored) and its colour signature."""
        lag = time.monotonic() - captured.t_capture
        if lag > self.config.max_lag_s:
            self.report.frames_not_scored += 1
            return None, None
        try:
            image = to_model_image(captured.frame, self.classifier.input_size)
            p_out = float(self.classifier.score(image[None])[0])
        except Exception as exc:  # the model failing must hide the picture, not stop the loop
            self.report.model_failures += 1
            self.report.frames_not_scored += 1
            log.error("model failed: %s", exc)
            return None, None
        self.report.frames_scored += 1
        return p_out, colour_signatures(image[None])[0]

    def _suspicious(self, item: _Pending) -> bool:
        return item.p_out is None or not np.isfinite(item.p_out) or item.p_out >= self.params.low

    def _flush(self, *, final: bool) -> None:
        """Emit pending frames once ``delay_frames`` later frames have been judged.

        ``final`` (stall, lost source, end): the frames still held back will never get
        their look-ahead, so they are all hidden.
        """
        while self._pending and (final or len(self._pending) > self.config.delay_frames):
            item = self._pending.popleft()
            if final or any(self._suspicious(later) for later in self._pending):
                item.hidden = True
                if item.state == "clear":
                    item.state = "anonymized"
            self._emit(item)

    # output ----------------------------------------------------------------------------------
    def _start_sinks(self, captured: Captured) -> None:
        first = upright(captured.frame)
        self._size = (first.width, first.height)
        for runner in self.runners:
            runner.configure(first.width, first.height, self.source.nominal_fps)

    def _pts(self, t_capture: float) -> int:
        assert self._t0 is not None
        pts = max(round((t_capture - self._t0) / LIVE_TIME_BASE), self._last_pts + 1)
        self._last_pts = pts
        return pts

    def _emit(self, item: _Pending) -> None:
        frame = upright(item.captured.frame)
        if item.hidden:
            frame = self.renderer.render(frame)
        delivery = Delivery(
            frame,
            self._pts(item.captured.t_capture),
            item.hidden,
            item.p_out,
            item.captured.t_capture,
            item.state,
            item.captured.index,
        )
        for runner in self.runners:
            runner.offer(delivery)
        if self._stepped:
            self._outbox.append(delivery)
        latency = (time.monotonic() - item.captured.t_capture) * 1000
        self.report.latencies_ms.append(latency)
        self.report.frames_out += 1
        self.report.frames_hidden += item.hidden
        self.status.state = item.state
        self._recent.append((time.monotonic(), latency))

    def _stalled(self) -> None:
        """No picture from the source: fail closed and show a paused card."""
        self.gate.fail()
        self._flush(final=True)
        self.status.state = "paused"
        if self._size is None or self._t0 is None:
            return
        now = time.monotonic()
        card = av.VideoFrame.from_ndarray(_paused_card(*self._size), format="rgb24")
        delivery = Delivery(card, self._pts(now), True, None, now, "paused")
        for runner in self.runners:
            runner.offer(delivery)
        self.report.paused_cards += 1
        log.warning("%s: no frame for %.1f s; output paused", self.source.name, self.config.stall_s)

    def _report_status(self) -> None:
        now = time.monotonic()
        recent = [(t, lat) for t, lat in self._recent if now - t <= 1.0]
        self.status.fps = float(len(recent))
        self.status.latency_ms = float(np.median([lat for _, lat in recent])) if recent else 0.0
        self.status.frames_in = self.report.frames_captured
        self.status.frames_out = self.report.frames_out
        self.status.dropped = self.report.capture_dropped + sum(
            r.stats.dropped for r in self.runners
        )
        if self.on_status:
            self.on_status(self.status)


def _paused_card(width: int, height: int) -> np.ndarray:
    card = np.full((height, width, 3), 24, np.uint8)
    scale = max(0.6, width / 900)
    text = "PAUSED - source lost"
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    origin = ((width - tw) // 2, (height + th) // 2)
    cv2.putText(card, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (200, 200, 200), 2)
    return card
