"""What a studio upload must survive: reference pictures matched to the brief's characters and
checked by content, bombs (a YAML alias bomb, a decompression-bomb picture, hours of silence in
a small FLAC, a zip sent as a song), paths in file names — each refused with a 4xx naming the
field, nothing kept — and the sign-in cookie a page uses instead of the token."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile
import yaml
from PIL import Image

from tests.integration.test_studio_api import BRIEF, wait_for

pytestmark = pytest.mark.integration


def png(size: tuple[int, int] = (64, 96), colour: str = "pink") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def with_reference(path: str = "refs/mei.png") -> dict[str, Any]:
    mei = {**BRIEF["characters"][0], "reference": {  # type: ignore[index]
        "path": path, "holder": "Mei's illustrator", "license": "CC-BY-4.0", "consent": True}}
    return {**BRIEF, "characters": [mei]}


def form(brief: dict[str, Any], **files: Any) -> dict[str, Any]:
    return {"brief": ("brief.yaml", yaml.safe_dump(brief, allow_unicode=True).encode()),
            **files}


def refused(response: httpx.Response, status: int, field: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["field"] == field, body
    assert str(Path(os.environ["KANTOKU_HOME"])) not in body["detail"]
    return str(body["detail"])


def uploads_left(job_count_before: int, api: httpx.Client) -> None:
    assert len(api.get("/v1/jobs").json()) == job_count_before


def test_a_reference_picture_uploads_with_its_brief_and_reaches_the_policy(
        api: httpx.Client) -> None:
    created = api.post("/v1/jobs", files=[
        *form(with_reference()).items(), ("references", ("mei.png", png(), "image/png"))])
    assert created.status_code == 201, created.text
    job = wait_for(api, created.json()["id"], "awaiting_review")
    references = [item for item in job["policy"]["items"] if item["kind"] == "reference"]
    assert [r["holder"] for r in references] == ["Mei's illustrator"]
    assert api.post(f"/v1/jobs/{job['id']}:cancel").status_code == 200


def test_references_must_match_the_brief_and_be_pictures(api: httpx.Client) -> None:
    before = len(api.get("/v1/jobs").json())
    as_json = api.post("/v1/jobs", json={"brief": with_reference()})
    assert as_json.status_code == 400 and "references" in as_json.json()["detail"]
    missing = api.post("/v1/jobs", files=form(with_reference()))
    assert "mei.png was not uploaded" in refused(missing, 400,
                                                 "characters[0].reference.path")
    unused = api.post("/v1/jobs", files=[*form(BRIEF).items(),
                                         ("references", ("aoi.png", png(), "image/png"))])
    assert "aoi.png" in refused(unused, 400, "references")
    text = api.post("/v1/jobs", files=[*form(with_reference()).items(),
                                       ("references", ("mei.png", b"GIF89a not a picture"))])
    assert "not a PNG" in refused(text, 400, "references")
    pathed = api.post("/v1/jobs", files=[*form(with_reference()).items(),
                                         ("references", ("../../mei.png", png()))])
    assert "holds a path" in refused(pathed, 400, "references")
    uploads_left(before, api)


def test_bombs_are_refused_before_they_go_off(api: httpx.Client, tmp_path: Path) -> None:
    before = len(api.get("/v1/jobs").json())
    uploads = Path(os.environ["KANTOKU_HOME"]) / "studio" / "uploads"
    kept = set(uploads.glob("*")) if uploads.exists() else set()
    # A billion laughs: nine levels of aliases; refused as syntax, never expanded.
    levels = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    bomb = "\n".join(levels) + "\ntitle: *a8\nlogline: x\nduration_s: 4\n"
    laughs = api.post("/v1/jobs", files={"brief": ("brief.yaml", bomb.encode())})
    assert laughs.status_code == 400 and "aliases" in laughs.json()["detail"]
    # A picture of 20 000 × 20 000 pixels that compresses to a few hundred kilobytes.
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, "PNG")
    big = api.post("/v1/jobs", files=[*form(with_reference()).items(),
                                      ("references", ("mei.png", buffer.getvalue()))])
    assert "pixels" in refused(big, 400, "references")
    # Two hours of silence: a small FLAC whose header says it is far over the longest song.
    silence = tmp_path / "long.flac"
    soundfile.write(silence, np.zeros(8000 * 7200, dtype=np.int16), 8000, format="FLAC")
    assert silence.stat().st_size < 2 << 20
    song_brief = {k: v for k, v in BRIEF.items() if k != "duration_s"}
    long_song = api.post("/v1/jobs", files=form(song_brief, song=("song.flac",
                                                                  silence.read_bytes())))
    assert refused(long_song, 400, "song").startswith("song:")
    # A zip (of zeros) named song.wav: read by content, not by name.
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("song.wav", bytes(50 << 20))
    zipped = api.post("/v1/jobs", files=form(song_brief, song=("song.wav", packed.getvalue())))
    assert refused(zipped, 400, "song").startswith("song:")
    uploads_left(before, api)
    assert (set(uploads.glob("*")) if uploads.exists() else set()) == kept


def test_a_page_signs_in_for_a_cookie(api: httpx.Client, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    monkeypatch.setenv("KANTOKU_AUTH_TOKEN", "page-token")
    assert api.get("/v1/jobs").status_code == 401
    wrong = api.post("/v1/session", json={"token": "guess"})
    assert wrong.status_code == 401 and wrong.json()["field"] == "token"
    assert api.post("/v1/session", json={}).status_code == 400
    assert api.post("/v1/session", content=b"{", headers={"content-type": "application/json"}
                    ).status_code == 400
    signed = api.post("/v1/session", json={"token": "page-token"})
    assert signed.status_code == 204
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/v1" in cookie
    assert api.get("/v1/jobs").status_code == 200  # the client sends the cookie back
    api.cookies.clear()
    assert api.get("/v1/jobs").status_code == 401
    assert json.loads(api.get("/healthz").text) == {"status": "ok"}
