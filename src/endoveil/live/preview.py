"""A browser preview on localhost: the anonymized picture as MJPEG, with its live status.

Served by the standard library's threading HTTP server on 127.0.0.1 only; the page needs
nothing from the internet.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2

from endoveil.live.sinks import Delivery, Sink

__all__ = ["HttpPreviewSink", "JpegSink"]

PAGE = """<!doctype html><html lang="en"><meta charset="utf-8">
<title>endoveil live</title>
<style>body{font:15px system-ui;margin:0;background:#111;color:#eee}
img{display:block;max-width:100vw;max-height:90vh;margin:auto}
#s{padding:8px 12px}</style>
<div id="s">connecting…</div><img src="/stream.mjpg" alt="anonymized live preview">
<script>
async function tick(){try{const s=await (await fetch('/status.json')).json();
document.getElementById('s').textContent=
`${s.state} · ${s.fps.toFixed(1)} fps · +${s.latency_ms.toFixed(0)} ms`;}catch(e){}}
setInterval(tick,1000);tick();
</script></html>"""
PREVIEW_WIDTH = 640
JPEG_QUALITY = 80
BOUNDARY = "endoveilframe"


class JpegSink(Sink):
    """The latest picture as JPEG (≤ 640 px wide, at most ``max_fps`` a second), with a
    sequence number to wait on: what a browser preview streams as MJPEG."""

    reconnect = False

    def __init__(self, max_fps: float = 10.0) -> None:
        self.name = "preview"
        self._interval = 1.0 / max_fps
        self._last = float("-inf")
        self._jpeg: bytes | None = None
        self._seq = 0
        self._changed = threading.Condition()
        self._closed = False

    def open(self, width: int, height: int, fps: float) -> None:
        with self._changed:
            self._closed = False

    def write(self, item: Delivery) -> None:
        if item.t_capture - self._last < self._interval:
            return
        self._last = item.t_capture
        frame = item.frame
        height = max(2, round(PREVIEW_WIDTH * frame.height / frame.width))
        image = frame.reformat(width=PREVIEW_WIDTH, height=height, format="bgr24").to_ndarray()
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if ok:
            with self._changed:
                self._jpeg, self._seq = jpeg.tobytes(), self._seq + 1
                self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def next_jpeg(self, seen: int, timeout: float = 2.0) -> tuple[bytes | None, int]:
        """Wait for a picture newer than ``seen``; (None, seen) once closed or on timeout."""
        with self._changed:
            self._changed.wait_for(lambda: self._seq != seen or self._closed, timeout=timeout)
            if self._closed or self._seq == seen:
                return None, seen
            return self._jpeg, self._seq


class HttpPreviewSink(JpegSink):
    """Serve ``http://127.0.0.1:PORT/``: the live picture as MJPEG, and the live status."""

    def __init__(
        self, port: int = 0, *, status: Callable[[], dict[str, object]], max_fps: float = 10.0
    ) -> None:
        super().__init__(max_fps)
        self.name = "http preview"
        self._status = status
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def open(self, width: int, height: int, fps: float) -> None:
        super().open(width, height, fps)
        if not self._thread.is_alive():
            self._thread.start()

    def close(self) -> None:
        super().close()
        if self._thread.is_alive():  # shutdown() waits for a loop that must have started
            self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # quiet server
                return

            def do_GET(self) -> None:
                if self.path == "/":
                    self._send(PAGE.encode(), "text/html; charset=utf-8")
                elif self.path == "/status.json":
                    self._send(json.dumps(sink._status()).encode(), "application/json")
                elif self.path == "/stream.mjpg":
                    self._stream()
                else:
                    self.send_error(HTTPStatus.NOT_FOUND)

            def _send(self, body: bytes, kind: str) -> None:
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _stream(self) -> None:
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                seen = -1
                try:
                    while True:
                        jpeg, seen = sink.next_jpeg(seen)
                        if jpeg is None:
                            if sink.closed:
                                return
                            continue
                        self.wfile.write(
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                            + jpeg
                            + b"\r\n"
                        )
                except (BrokenPipeError, ConnectionResetError):
                    return

        return Handler
