"""The web GUI (extra ``gui``): review what the model found, correct it, then export.

app           create_app(settings): the FastAPI app, its pages and the work API
security      session token, password, allowed roots (path traversal refused)
settings      GuiSettings (the server), WorkSettings (one piece of work)
store         SQLite (WAL): jobs and reviews survive a restart
jobs          the worker thread: one job at a time, real progress, cooperative cancel
tasks         what detect / export / batch jobs do (offline pipeline, cases package)
case_review   a case in two phases: prepare (merge + detect), export (+ mapping log)
thumbs        frame thumbnails, whether the browser can play a video
live          the live session behind the live page, its JPEG preview, recording
api_*         the review, queue and live routes
static/       index.html, app.js, style.css (no build step, nothing from a CDN)
"""

from endoveil.gui.app import create_app
from endoveil.gui.settings import GuiSettings, WorkSettings

__all__ = ["GuiSettings", "WorkSettings", "create_app"]
