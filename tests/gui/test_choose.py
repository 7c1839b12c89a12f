"""Choosing work as a clinician would: a case folder or an archive, several at once, never
an output, and the same case recognised when it comes back."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

Settle = Callable[..., list[dict[str, Any]]]


def _titles(client: TestClient, made: dict[str, Any]) -> list[str]:
    return [client.get(f"/api/reviews/{i}").json()["title"] for i in made["reviews"]]


def test_a_case_folder_an_archive_and_a_video_chosen_together(
    client: TestClient, root: Path
) -> None:
    # The patient folder itself (it holds the videos) is one case.
    one = client.post("/api/work", json={"paths": ["cases/case-0412"]})
    assert one.status_code == 200, one.text
    assert _titles(client, one.json()) == ["case-0412"]
    review = client.get(f"/api/reviews/{one.json()['reviews'][0]}").json()
    assert review["pseudonym"] and "case-0412" not in review["pseudonym"]
    several = client.post("/api/work", json={"paths": ["cases", "clip.mp4"]}).json()
    assert _titles(client, several) == ["case-0412", "case-0413", "clip.mp4"]


def test_outputs_are_never_taken_as_inputs(client: TestClient, root: Path, settle: Settle) -> None:
    out = root / "endoveil-output"
    out.mkdir()
    shutil.copy(root / "clip.mp4", out / "a1b2.anonymized.mp4")
    shutil.copytree(root / "cases" / "case-0412", root / "cases" / "case-0414")
    shutil.copy(root / "clip.mp4", root / "cases" / "case-0414" / "x.anonymized.mp4")
    # The root as an archive: endoveil-output is no case, anonymized files no segments.
    made = client.post("/api/work", json={"paths": [str(root)]}).json()
    # The root as an archive: each case folder a case, the loose video one too; not the
    # output folder, not the anonymized file.
    assert _titles(client, made) == [
        "cases/case-0412",
        "cases/case-0413",
        "cases/case-0414",
        "clip.mp4",
    ]
    made = client.post("/api/work", json={"paths": ["cases"]}).json()
    assert _titles(client, made) == ["case-0412", "case-0413", "case-0414"]
    for rid in made["reviews"]:
        segments = client.get(f"/api/reviews/{rid}").json()
        assert segments["title"] != "endoveil-output"
    (last,) = [client.get(f"/api/reviews/{made['reviews'][2]}").json()]
    assert "anonymized" not in str(last)  # x.anonymized.mp4 is not a segment
    for bad in ["endoveil-output", "endoveil-output/a1b2.anonymized.mp4"]:
        response = client.post("/api/work", json={"paths": [bad]})
        assert response.status_code == 422 and "output" in response.json()["detail"]


def test_the_same_case_twice_is_recognised(client: TestClient, root: Path, settle: Settle) -> None:
    first = client.post("/api/work", json={"paths": ["cases/case-0412"]}).json()
    assert first["warnings"] == []
    again = client.post("/api/work", json={"paths": ["cases/case-0412"]}).json()
    (warning,) = again["warnings"]
    earlier = client.get(f"/api/reviews/{first['reviews'][0]}").json()["pseudonym"]
    assert "chosen before" in warning and earlier in warning and "HMAC" in warning
    assert client.get(f"/api/reviews/{again['reviews'][0]}").json()["result"]["warning"] == warning

    (root / "secret.key").write_text("a long enough secret for tests\n")
    keyed = {"pseudonym": "hmac", "secret_file": "secret.key"}
    a = client.post("/api/work", json={"paths": ["cases/case-0413"], "settings": keyed}).json()
    b = client.post("/api/work", json={"paths": ["cases/case-0413"], "settings": keyed}).json()
    names = [client.get(f"/api/reviews/{x['reviews'][0]}").json()["pseudonym"] for x in (a, b)]
    assert names[0] == names[1] and "keeps its name" in b["warnings"][0]


def test_names_stay_out_of_outputs_unless_asked(
    client: TestClient, root: Path, settle: Settle
) -> None:
    patient = root / "Smith_John_1960-01-01_lap.mp4"
    shutil.copy(root / "clip.mp4", patient)
    made = client.post("/api/work", json={"paths": [patient.name]}).json()
    settle(client)
    job = client.post(f"/api/reviews/{made['reviews'][0]}/export").json()["job"]
    result = {j["id"]: j for j in settle(client)}[job]["result"]
    assert "Smith" not in Path(result["video"]).name and "Smith" not in Path(result["labels"]).name
    asked = {"keep_names": True, "output": str(root / "named")}
    made = client.post("/api/work", json={"paths": [patient.name], "settings": asked}).json()
    settle(client)
    job = client.post(f"/api/reviews/{made['reviews'][0]}/export").json()["job"]
    result = {j["id"]: j for j in settle(client)}[job]["result"]
    assert Path(result["video"]).name == "Smith_John_1960-01-01_lap.anonymized.mp4"


def test_a_reviewed_export_never_overwrites_through_the_batch_setting(
    client: TestClient, root: Path, settle: Settle
) -> None:
    # "Replace existing outputs" is for unattended batches; a review replaces only when asked.
    made = client.post("/api/work", json={"paths": ["clip.mp4"], "settings": {"force": True}})
    settle(client)
    rid = made.json()["reviews"][0]
    first = client.post(f"/api/reviews/{rid}/export").json()["job"]
    labels = Path({j["id"]: j for j in settle(client)}[first]["result"]["labels"])
    before = labels.read_bytes()
    again = client.post(f"/api/reviews/{rid}/export").json()["job"]
    assert {j["id"]: j for j in settle(client)}[again]["status"] == "failed"
    assert labels.read_bytes() == before
