"""The GUI in a real headless Chromium: choose a case folder, run, review, move a boundary,
export, and prove the exported file with `verify`. Screenshots of each page are written to
test-artifacts/gui/ (and to docs/screenshots/ with ENDOVEIL_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from endoveil.anonymize.verify import verify
from endoveil.cases.mapping_log import read_rows
from endoveil.detect.labels import Labels
from endoveil.gui import GuiSettings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium phones home, and this machine's closed network refuses it.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 768}
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "gui"
DOCS_SCREENSHOTS = REPO / "docs" / "screenshots"

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (apt install chromium)"
    ),
]


@pytest.fixture
def page(server: str) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT, color_scheme="light")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        dialogs: list[str] = []
        page.dialogs = dialogs  # type: ignore[attr-defined]

        def accept(dialog: Any) -> None:  # the export confirmations
            dialogs.append(dialog.message)
            dialog.accept()

        page.on("dialog", accept)
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            browser.close()
        assert errors == [], errors


def shoot(page: Any, name: str, element: Any = None) -> None:
    """Screenshot the page (or one element of it) once its images have loaded."""
    page.evaluate(
        "Promise.all([...document.images].filter(i => i.src && !i.src.includes('mjpg'))"
        ".map(i => i.decode().catch(() => null)))"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    (element or page).screenshot(path=str(path))
    if os.environ.get("ENDOVEIL_UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_SCREENSHOTS / path.name)


def api(page: Any, path: str) -> Any:
    """GET an API path with the session token the page holds."""
    token = page.evaluate("localStorage.getItem('endoveil-token')")
    response = page.request.get(
        page.url.split("#")[0].rstrip("/") + path, headers={"X-Endoveil-Token": token}
    )
    assert response.ok, response.text()
    return response.json()


def test_choose_run_review_move_a_boundary_export_verify(
    page: Any,
    server: str,
    launch_url: Callable[[], str],
    settings: GuiSettings,
    root: Path,
    poll: Callable[..., Any],
) -> None:
    dialogs = page.dialogs
    # Open the printed link: its one-time launch token is exchanged and leaves the URL.
    page.goto(launch_url())
    page.wait_for_selector("#page-work:not([hidden])")
    assert page.url == f"{server}/#work"
    assert page.context.cookies() == []
    # Choose as a clinician would: open the patient's folder and add it; tick another case.
    page.get_by_role("button", name="cases/", exact=True).click()
    page.get_by_role("button", name="case-0412/", exact=True).click()
    page.wait_for_selector("#entries button:has-text('VID1.mp4')")
    page.get_by_role("button", name="Add this folder").click()
    page.get_by_role("button", name="../ (up)").click()
    page.get_by_label("Choose case-0413").check()
    chosen = page.locator("#chosen").inner_text()
    assert "case-0412" in chosen and "case-0413" in chosen
    page.locator("input[name=margin_s]").fill("0.2")
    shoot(page, "work")
    # Run: two cases are merged and scanned; the queue shows real progress.
    page.get_by_role("button", name="Detect, then review").click()
    page.wait_for_selector("#page-queue:not([hidden])")
    poll(
        lambda: page.locator("#jobs tbody .badge.done").count() == 2,
        60,
        "both detections to finish",
    )
    assert "frames" in page.locator("#jobs tbody").inner_text()
    shoot(page, "queue")

    # Review the first case.
    page.locator("#jobs tbody tr", has_text="prepare case-0412").get_by_role(
        "button", name="Review"
    ).click()
    page.wait_for_selector("#segments li")
    review = api(page, "/api/reviews/1")
    ((start, end),) = [(s["start_frame"], s["end_frame"]) for s in review["segments"]]
    poll(lambda: page.evaluate("document.querySelector('#video').readyState >= 1"), 20, "video")
    # The page explains itself: a legend, a time axis, large edge frames with the model's own
    # edge as well as the padded one, and a way to look further outside.
    legend = page.locator(".legend").inner_text()
    assert "threshold" in legend and "before the margin" in legend
    page.wait_for_selector("#edge-start figure img[src^='blob:']")
    widths = page.evaluate("[...document.querySelectorAll('#edges img')].map(i => i.clientWidth)")
    assert min(widths) >= 96 and max(widths) >= 140, widths
    captions = page.locator("#edges").inner_text()
    assert "model edge" in captions and "hidden" in captions and "shown" in captions
    shoot(page, "review-edges", page.locator("#edges"))
    first = page.evaluate("parseInt(document.querySelector('#edge-start figcaption').textContent)")
    page.get_by_role("button", name="Earlier frames at the start").click()
    earlier = page.evaluate(
        "parseInt(document.querySelector('#edge-start figcaption').textContent)"
    )
    assert earlier == first - 4
    # A notice never covers a button.
    page.evaluate("notify('A long notice that would once have covered the buttons below it')")
    notice = page.locator("#notice").bounding_box()
    for box in page.evaluate(
        "[...document.querySelectorAll('button')].filter(b => b.offsetParent)"
        ".map(b => b.getBoundingClientRect().toJSON())"
    ):
        overlaps = not (
            box["x"] >= notice["x"] + notice["width"]
            or box["x"] + box["width"] <= notice["x"]
            or box["y"] >= notice["y"] + notice["height"]
            or box["y"] + box["height"] <= notice["y"]
        )
        assert not overlaps, box
    page.evaluate("document.querySelector('#notice').hidden = true")
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, "review")

    # Drag the segment's end 12 frames later on the timeline.
    box = page.locator("#timeline").bounding_box()
    frame_px = box["width"] / review["video"]["frame_count"]
    x_end = box["x"] + review["frame_times"][end] / review["video"]["duration_s"] * box["width"]
    y = box["y"] + box["height"] / 2
    page.mouse.move(x_end, y)
    page.mouse.down()
    page.mouse.move(x_end + 6 * frame_px, y, steps=4)
    page.mouse.move(x_end + 12 * frame_px, y, steps=4)
    page.mouse.up()
    dragged = page.evaluate("rv.segments.map(s => [s.start_frame, s.end_frame])")
    assert dragged == [[start, end + 12]]
    assert page.locator("#review-dirty").is_visible()

    # And its start 3 frames earlier with the keyboard: J jumps to it, ← steps, [ sets it.
    page.locator("#timeline").focus()
    page.keyboard.press("j")
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    page.keyboard.press("[")
    assert page.evaluate("rv.segments.map(s => [s.start_frame, s.end_frame])") == [
        [start - 3, end + 12]
    ]
    page.keyboard.press("s")
    page.wait_for_selector("#review-dirty", state="hidden")
    assert api(page, "/api/reviews/1")["reviewed"] is True

    # Export: confirmed (in plain words), queued, written, verified.
    page.get_by_role("button", name="Export…").click()
    page.wait_for_selector("#page-queue:not([hidden])")
    assert "blurred" in dialogs[-1] and "mapping log" in dialogs[-1]
    poll(
        lambda: (
            page.locator("#jobs tbody tr", has_text="export case-0412")
            .locator(".badge.done")
            .count()
            == 1
        ),
        60,
        "the export to finish",
    )
    queue_text = page.locator("#jobs tbody").inner_text()
    assert "✔ verified" in queue_text
    # Where the mapping log is, after every export.
    assert f"Mapping log (names the patients; keep it private): {root}" in queue_text
    jobs = api(page, "/api/jobs")
    export = next(j for j in jobs if j["kind"] == "export")
    report = api(page, f"/api/jobs/{export['id']}/report")
    assert report["ok"] is True

    video = Path(export["result"]["video"])
    assert video.name == f"{review['pseudonym']}.anonymized.mp4"  # no input name in it
    labels = Labels.load(Path(export["result"]["labels"]))
    assert labels.extra["reviewed"] is True
    assert [(s.start_frame, s.end_frame) for s in labels.segments] == [(start - 3, end + 12)]
    merged = settings.data_dir / "reviews" / "1" / f"{review['pseudonym']}.mp4"
    checked = verify(merged, video, labels)
    assert checked.ok, checked.problems
    assert checked.oob_frames == end + 12 - (start - 3)
    rows = list(read_rows(root / "endoveil-mapping-log.csv"))
    assert [r["pseudonym"] for r in rows] == [review["pseudonym"]]
    assert json.loads(rows[0]["parameters"])["reviewed"] is True

    # The report is a page to read, not JSON.
    page.locator("#jobs tbody tr", has_text="export case-0412").get_by_role(
        "button", name="Report"
    ).click()
    page.wait_for_selector("#report .verdict")
    report_text = page.locator("#report").inner_text()
    assert "✔ Verified" in report_text and "What was hidden (1 segment(s))" in report_text
    assert "re-encoded" in report_text and "Mapping log" in report_text
    shoot(page, "report")

    # Fix and re-export: the review offers to replace the earlier export.
    page.get_by_role("button", name="◀ Back to the queue").click()
    page.locator("#jobs tbody tr", has_text="prepare case-0412").get_by_role(
        "button", name="Review"
    ).click()
    page.wait_for_selector("#replace:not([hidden])")
    assert "An earlier export is in the output folder" in page.locator("#review-note").inner_text()
    page.locator("#timeline").focus()
    page.keyboard.press("j")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("[")
    page.get_by_role("button", name="Replace the earlier export…").click()
    assert "Replace the earlier export" in dialogs[-1]
    page.wait_for_selector("#page-queue:not([hidden])")
    poll(
        lambda: (
            page.locator("#jobs tbody tr", has_text="re-export case-0412")
            .locator(".badge.done")
            .count()
            == 1
        ),
        60,
        "the re-export",
    )
    relabelled = Labels.load(Path(export["result"]["labels"]))
    assert [(s.start_frame, s.end_frame) for s in relabelled.segments] == [(start - 4, end + 12)]
    # The queue can be cleared of what is finished.
    page.get_by_role("button", name="Clear finished and failed").click()
    page.wait_for_selector("#jobs-empty:not([hidden])")

    # The same case chosen again is recognised (random pseudonyms: a warning, nothing queued
    # until it has been read).
    page.get_by_role("button", name="Work").click()
    page.get_by_label("Choose case-0412").check()  # the picker still shows cases/
    page.get_by_role("button", name="Detect, then review").click()
    page.wait_for_selector("#work-warnings:not([hidden])")
    assert review["pseudonym"] in page.locator("#work-warnings").inner_text()
    assert "HMAC" in page.locator("#work-warnings").inner_text()

    # Live: a file played in real time, anonymized, recorded.
    page.get_by_role("button", name="Live").click()
    page.locator("input[name=source]").fill(str(root / "clip.mp4"))
    page.get_by_label("Loop a file").check()
    page.get_by_role("button", name="Start").click()
    poll(
        lambda: page.evaluate(
            "document.querySelector('#live-preview').naturalWidth > 0"
            " && ['clear', 'anonymized', 'fail-closed'].includes("
            "document.querySelector('#live-state').textContent)"
        ),
        30,
        "the live preview",
    )
    page.locator("input[name=record]").fill(str(root / "live.mp4"))
    page.get_by_role("button", name="● Record").click()
    page.wait_for_selector("#live-rec:not([hidden])")
    poll(
        lambda: page.evaluate("parseFloat(document.querySelector('#live-fps').textContent) > 0"),
        10,
        "the live fps",
    )
    shoot(page, "live")
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="■ Stop recording").click()
    page.wait_for_selector("#rec-last:has-text('live.mp4')")
    page.get_by_role("button", name="Stop", exact=True).click()
    page.wait_for_selector("#live-empty:not([hidden])")
    assert (root / "live.mp4").stat().st_size > 0

    # Dark theme, on the review page.
    page.get_by_role("button", name="Switch between light and dark theme").click()
    page.get_by_role("button", name="Review").first.click()
    page.wait_for_selector("#segments li")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(21, 24, 28)"
    shoot(page, "review-dark")


def test_keyboard_only_add_and_remove(
    page: Any, server: str, launch_url: Callable[[], str], poll: Callable[..., Any]
) -> None:
    page.goto(launch_url())
    # Keyboard: Tab to the chosen video in the picker, Enter to choose it, Enter to start.
    page.locator("#entries button", has_text="clip.mp4").focus()
    page.keyboard.press("Enter")
    page.locator("#start").focus()
    page.keyboard.press("Enter")
    poll(lambda: page.locator("#jobs tbody .badge.done").count() == 1, 60, "detection")
    page.goto(f"{server}/#review/1")
    page.wait_for_selector("#segments li")
    before = page.evaluate("rv.segments.length")
    page.locator("#timeline").focus()
    page.keyboard.press("End")  # not a shortcut: nothing changes
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("a")
    assert page.evaluate("rv.segments.length") == before + 1
    page.keyboard.press("Delete")
    assert page.evaluate("rv.segments.length") == before
    assert page.locator("#review-dirty").is_visible()


def test_signed_out_page_says_what_to_do(page: Any, server: str) -> None:
    page.goto(server)
    page.wait_for_selector("#page-signin:not([hidden])")
    assert "Open the link" in page.locator("#page-signin").inner_text()
    assert page.locator("#login").is_hidden()
