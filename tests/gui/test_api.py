"""The API end to end on generated cases: detect, review, correct, import, export, verify."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import pytest

from clips import write_clip
from endoveil.anonymize.verify import verify
from endoveil.cases.mapping_log import read_rows
from endoveil.detect.labels import Labels
from endoveil.gui import GuiSettings

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

Settle = Callable[..., list[dict[str, Any]]]
FAST = {"margin_s": 0.2}


def detect_cases(client: TestClient, root: Path, settle: Settle) -> list[dict[str, Any]]:
    made = client.post("/api/work", json={"path": str(root / "cases"), "settings": FAST})
    assert made.status_code == 200, made.text
    assert len(made.json()["reviews"]) == 2
    jobs = settle(client)
    assert [j["status"] for j in jobs] == ["done", "done"], jobs
    return [client.get(f"/api/reviews/{i}").json() for i in made.json()["reviews"]]


def test_session_and_listing(client: TestClient, root: Path) -> None:
    session = client.get("/api/session").json()
    assert session["roots"] == [str(root)]
    assert session["defaults"]["output"] == str(root / "endoveil-output")
    assert session["defaults"]["mode"] == "exact" and session["defaults"]["unattended"] is False
    assert client.get("/api/fs").json()["entries"] == [
        {"name": str(root), "path": str(root), "kind": "folder"}
    ]
    listing = client.get("/api/fs", params={"path": str(root / "cases" / "case-0412")}).json()
    assert [e["name"] for e in listing["entries"]] == ["VID1.mp4", "VID2.mp4"]
    assert listing["parent"] == str(root / "cases")
    assert client.get("/api/fs", params={"path": "nowhere"}).status_code == 404


def test_review_a_case_correct_it_and_export(
    client: TestClient, root: Path, settings: GuiSettings, settle: Settle
) -> None:
    first, second = detect_cases(client, root, settle)
    assert first["title"] == "case-0412" and second["title"] == "case-0413"
    assert first["status"] == "ready" and first["playable"] is True
    assert first["video"]["frame_count"] == 100 and len(first["frame_times"]) == 100
    # Frames 20..34 are bright; sampling, the safer-neighbour fill and the margin pad them.
    ((start, end),) = [(s["start_frame"], s["end_frame"]) for s in first["segments"]]
    assert 10 <= start <= 15 and 40 <= end <= 45
    assert first["curve"]["p_out"][0] < 0.5 and max(first["curve"]["p_out"]) > 0.5
    assert first["reviewed"] is False

    for frame, bright in [(25, True), (5, False), (60, False), (34, True), (35, False)]:
        thumb = client.get("/api/reviews/1/thumb", params={"frame": frame})
        assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
        image = cv2.imdecode(np.frombuffer(thumb.content, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert (image.mean() > 128) == bright, frame
    assert client.get("/api/reviews/1/thumb", params={"frame": 100}).status_code == 422
    assert client.get("/api/reviews/1/thumb", params={"frame": 1, "width": 33}).status_code == 422
    video = client.get("/api/reviews/1/video", headers={"Range": "bytes=0-99"})
    assert video.status_code == 206 and len(video.content) == 100
    assert video.headers["content-range"].startswith("bytes 0-99/")

    # The reviewer widens the segment and adds one; overlapping ones are joined on save.
    body = {
        "segments": [
            {"start_frame": 8, "end_frame": 45},
            {"start_frame": 40, "end_frame": 50},
            {"start_frame": 90, "end_frame": 100},
        ]
    }
    saved = client.put("/api/reviews/1/segments", json=body).json()
    assert [(s["start_frame"], s["end_frame"]) for s in saved["segments"]] == [(8, 50), (90, 100)]
    again = client.get("/api/reviews/1").json()
    assert again["reviewed"] is True
    assert again["detected_segments"] == first["segments"]

    job = client.post("/api/reviews/1/export").json()["job"]
    jobs = {j["id"]: j for j in settle(client)}
    assert jobs[job]["status"] == "done", jobs[job]
    result = jobs[job]["result"]
    pseudonym = first["pseudonym"]
    assert result["verified"] is True and result["reviewed"] is True
    video_out = Path(result["video"])
    assert video_out == root / "endoveil-output" / f"{pseudonym}.anonymized.mp4"
    labels = Labels.load(Path(result["labels"]))
    assert labels.extra["reviewed"] is True
    assert [(s.start_frame, s.end_frame) for s in labels.segments] == [(8, 50), (90, 100)]
    merged = settings.data_dir / "reviews" / "1" / f"{pseudonym}.mp4"
    assert verify(merged, video_out, labels).ok
    report = client.get(f"/api/jobs/{job}/report").json()
    assert report["ok"] is True and report["oob_frames"] == 52

    # The mapping log links the pseudonym to the case, owner-only, outside the output folder.
    log = root / "endoveil-mapping-log.csv"
    assert os.stat(log).st_mode & 0o777 == 0o600
    rows = list(read_rows(log))
    assert [(r["case"], r["pseudonym"]) for r in rows] == [("case-0412", pseudonym)]
    assert json.loads(rows[0]["parameters"])["reviewed"] is True
    assert json.loads(rows[0]["original_files"]) == ["VID1.mp4", "VID2.mp4"]
    assert client.get("/api/reviews").json()[0]["status"] == "exported"
    # Nothing of the second case left before the user said so.
    assert not list((root / "endoveil-output").glob(f"{second['pseudonym']}*"))


@pytest.mark.parametrize(
    "bad",
    [
        [{"start_frame": -1, "end_frame": 5}],
        [{"start_frame": 5, "end_frame": 5}],
        [{"start_frame": 90, "end_frame": 101}],
    ],
)
def test_segments_outside_the_video_are_refused(
    client: TestClient, root: Path, settle: Settle, bad: list[dict[str, int]]
) -> None:
    detect_cases(client, root, settle)
    assert client.put("/api/reviews/1/segments", json={"segments": bad}).status_code == 422


def _write_imports(folder: Path, frame_count: int) -> dict[str, Path]:
    """The same annotation (frames 50..74 out of body) in every format the import takes."""
    mask = np.zeros(frame_count, dtype=int)
    mask[50:75] = 1
    files = {
        "roban.json": json.dumps({"labels": mask.tolist(), "frames": list(range(frame_count))}),
        "oobnet.csv": "FRAME_ID,OOB\n" + "".join(f"{i},{v}.0\n" for i, v in enumerate(mask)),
        "intervals.csv": "start_s,end_s\n2.0,3.0\n",
    }
    paths = {}
    for name, text in files.items():
        paths[name] = folder / name
        paths[name].write_text(text)
    return paths


def test_import_labels_in_every_format(
    client: TestClient, root: Path, tmp_path: Path, settle: Settle
) -> None:
    (detected, _) = detect_cases(client, root, settle)
    paths = _write_imports(tmp_path, 100)
    # endoveil's own labels: the detected ones, as another tool would hand them back.
    paths["endoveil.json"] = tmp_path / "endoveil.labels.json"
    shutil.copy(client.app.state.gui.store.review(1).detected_labels, paths["endoveil.json"])
    for name, path in paths.items():
        with open(path, "rb") as f:
            response = client.post("/api/reviews/1/import", files={"file": (path.name, f)})
        assert response.status_code == 200, (name, response.text)
        segments = [(s["start_frame"], s["end_frame"]) for s in response.json()["segments"]]
        expected = [(50, 75)]
        if name == "endoveil.json":
            expected = [(s["start_frame"], s["end_frame"]) for s in detected["segments"]]
        assert segments == expected, name
    # An import is shown for review, not saved.
    assert client.get("/api/reviews/1").json()["reviewed"] is False


@pytest.mark.parametrize(
    ("name", "content", "status"),
    [
        ("labels.txt", b"start_s,end_s\n", 422),
        ("labels.csv", b"a,b\n1,2\n", 422),
        ("labels.json", b"{not json", 422),
        ("labels.csv", b"start_s,end_s\n1.0,2.0\n" + b"#" * (5 * 1024 * 1024), 413),
    ],
)
def test_bad_or_oversize_imports(
    client: TestClient, root: Path, settle: Settle, name: str, content: bytes, status: int
) -> None:
    detect_cases(client, root, settle)
    response = client.post("/api/reviews/1/import", files={"file": (name, content)})
    assert response.status_code == status, response.text


def test_oversize_upload_refused_before_reading(client: TestClient) -> None:
    # The declared length alone is enough: the body is never read, the review never looked up.
    response = client.post(
        "/api/reviews/999/import",
        content=b"x" * 16,
        headers={"Content-Length": str(50 * 1024 * 1024), "Content-Type": "multipart/form-data"},
    )
    assert response.status_code == 413


def test_single_video_unattended(client: TestClient, root: Path, settle: Settle) -> None:
    settings = {**FAST, "unattended": True, "action": "black"}
    made = client.post("/api/work", json={"path": "clip.mp4", "settings": settings}).json()
    assert made["reviews"] == []
    (job,) = settle(client)
    assert job["kind"] == "batch" and job["status"] == "done", job
    ((case,),) = [job["result"]["cases"]]
    assert case["verified"] is True
    # The output is named by its pseudonym, never after the input.
    outputs = [p.name for p in (root / "endoveil-output").iterdir()]
    assert any(n.endswith(".anonymized.mp4") for n in outputs)
    assert not any("clip" in n for n in outputs), outputs
    (row,) = read_rows(root / "endoveil-mapping-log.csv")
    assert row["case"] == "clip.mp4" and json.loads(row["original_files"]) == ["clip.mp4"]


def test_unattended_batch(client: TestClient, root: Path, settle: Settle) -> None:
    settings = {**FAST, "unattended": True}
    made = client.post("/api/work", json={"path": "cases", "settings": settings}).json()
    assert made["reviews"] == []
    (job,) = settle(client)
    assert job["kind"] == "batch" and job["status"] == "done", job
    cases = job["result"]["cases"]
    assert [(c["status"], c["verified"]) for c in cases] == [("done", True), ("done", True)]
    assert len(list(read_rows(root / "endoveil-mapping-log.csv"))) == 2
    assert client.get(f"/api/jobs/{job['id']}/report").json()["cases"] == 2


def test_work_errors_in_plain_words(client: TestClient, root: Path) -> None:
    (root / "empty").mkdir()
    response = client.post("/api/work", json={"path": "empty"})
    assert response.status_code == 422 and "no videos in it" in response.json()["detail"]
    assert client.post("/api/work", json={"path": "missing.mp4"}).status_code == 404
    response = client.post("/api/work", json={"path": "clip.mp4", "settings": {"threshold": 2}})
    assert response.status_code == 422 and "threshold" in response.json()["detail"]
    assert (
        client.post(
            "/api/work", json={"path": "clip.mp4", "settings": {"colour": "red"}}
        ).status_code
        == 422
    )
    inside = {"output": str(root / "out"), "mapping_log": str(root / "out" / "log.csv")}
    response = client.post("/api/work", json={"path": "cases", "settings": inside})
    assert response.status_code == 400 and "outside the output folder" in response.json()["detail"]
    response = client.post("/api/work", json={"path": "cases", "settings": {"pseudonym": "hmac"}})
    assert response.status_code == 400 and "secret" in response.json()["detail"]


def test_hmac_pseudonyms_are_stable(client: TestClient, root: Path) -> None:
    (root / "secret.key").write_text("a long enough secret for tests\n")
    settings = {"pseudonym": "hmac", "secret_file": "secret.key"}
    first = client.post("/api/work", json={"path": "cases", "settings": settings}).json()
    second = client.post("/api/work", json={"path": "cases", "settings": settings}).json()
    names = [client.get(f"/api/reviews/{i}").json()["pseudonym"] for i in first["reviews"]]
    again = [client.get(f"/api/reviews/{i}").json()["pseudonym"] for i in second["reviews"]]
    assert names == again and len(set(names)) == 2 and all(len(n) == 32 for n in names)


def test_failed_export_is_reported_and_resumable(
    client: TestClient, root: Path, settle: Settle
) -> None:
    detect_cases(client, root, settle)
    out = root / "endoveil-output"
    out.mkdir()
    pseudonym = client.get("/api/reviews/1").json()["pseudonym"]
    (out / f"{pseudonym}.labels.json").write_text("{}")  # an earlier output in the way
    job = client.post("/api/reviews/1/export").json()["job"]
    failed = {j["id"]: j for j in settle(client)}[job]
    assert failed["status"] == "failed"
    # In the GUI's words (a button), not the CLI's ("--force").
    assert "already in the output folder" in failed["error"] and "Replace" in failed["error"]
    assert "--force" not in failed["error"] and "Traceback" not in failed["error"]
    assert client.get("/api/reviews/1").json()["status"] == "ready"
    (out / f"{pseudonym}.labels.json").unlink()
    assert client.post(f"/api/jobs/{job}/resume").status_code == 200
    assert {j["id"]: j for j in settle(client)}[job]["status"] == "done"
    assert client.post(f"/api/jobs/{job}/resume").status_code == 409
    assert client.post(f"/api/jobs/{job}/cancel").status_code == 409


def test_replace_the_earlier_export_and_clear_the_queue(
    client: TestClient, root: Path, settle: Settle
) -> None:
    detect_cases(client, root, settle)
    first = client.post("/api/reviews/1/export").json()["job"]
    done = {j["id"]: j for j in settle(client)}[first]["result"]
    earlier = client.get("/api/reviews/1").json()["earlier_export"]
    earlier_labels = Path(done["labels"]).read_bytes()
    assert sorted(earlier) == sorted([done["video"], done["labels"]])
    # Fix the review, export again: refused without asking, replaced when asked.
    client.put("/api/reviews/1/segments", json={"segments": [{"start_frame": 0, "end_frame": 60}]})
    again = client.post("/api/reviews/1/export").json()["job"]
    assert {j["id"]: j for j in settle(client)}[again]["status"] == "failed"
    assert Path(done["labels"]).read_bytes() == earlier_labels
    replaced = client.post("/api/reviews/1/export", json={"replace": True}).json()["job"]
    jobs = {j["id"]: j for j in settle(client)}
    assert jobs[replaced]["status"] == "done" and jobs[replaced]["title"].startswith("re-export")
    labels = Labels.load(Path(jobs[replaced]["result"]["labels"]))
    assert [(s.start_frame, s.end_frame) for s in labels.segments] == [(0, 60)]
    assert jobs[replaced]["result"]["mapping_log"] == str(root / "endoveil-mapping-log.csv")
    summary = client.get(f"/api/jobs/{replaced}/summary").json()
    assert summary["verify"]["ok"] is True and summary["hidden"][0]["frames"] == 60
    assert summary["output"]["frames_written"] == 100 and summary["mapping_log"]
    # The queue is cleared of finished and failed jobs; running ones would stay.
    assert client.delete("/api/jobs/finished").json() == {"cleared": len(jobs)}
    assert client.get("/api/jobs").json() == []
    assert client.get("/api/reviews/1").json()["status"] == "exported"


def test_delete_review(
    client: TestClient, root: Path, settings: GuiSettings, settle: Settle
) -> None:
    detect_cases(client, root, settle)
    work_dir = settings.data_dir / "reviews" / "1"
    assert work_dir.is_dir()
    assert client.delete("/api/reviews/1").json() == {"deleted": 1}
    assert not work_dir.exists()
    assert client.get("/api/reviews/1").status_code == 404
    assert client.delete("/api/reviews/1").status_code == 404


def test_report_of_a_job_without_one(client: TestClient, root: Path, settle: Settle) -> None:
    detect_cases(client, root, settle)
    assert client.get("/api/jobs/1/report").status_code == 404
    assert client.get("/api/jobs/99").status_code == 404


def test_csv_mapping_log_is_valid(client: TestClient, root: Path, settle: Settle) -> None:
    detect_cases(client, root, settle)
    client.post("/api/reviews/2/export")
    settle(client)
    with open(root / "endoveil-mapping-log.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[:4] == ["case_folder", "case", "original_files", "pseudonym"]


def test_oversize_upload_without_a_length_is_cut_off(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(7):
            yield b"x" * (1024 * 1024)

    response = client.post(
        "/api/reviews/999/import",
        content=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert response.status_code == 413


def test_a_video_the_browser_cannot_play_is_reviewed_from_thumbnails(
    client: TestClient, root: Path, settle: Settle
) -> None:
    write_clip(root / "old.avi", 30, oob=lambda i: 10 <= i < 20, codec="mpeg4")
    made = client.post("/api/work", json={"path": "old.avi", "settings": FAST}).json()
    (job,) = settle(client)
    assert job["status"] == "done", job
    review = client.get(f"/api/reviews/{made['reviews'][0]}").json()
    assert review["playable"] is False
    assert "avi" in review["not_playable_because"]
    # The thumbnail is the frame asked for: bright inside 10..19, dark outside.
    for frame, bright in [(5, False), (15, True), (25, False), (10, True)]:
        thumb = client.get(f"/api/reviews/{review['id']}/thumb", params={"frame": frame})
        assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
        image = cv2.imdecode(np.frombuffer(thumb.content, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert (image.mean() > 128) == bright, frame
