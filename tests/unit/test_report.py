import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.protobuf import json_format
from PIL import Image

from kantoku.planner.planning.brief import Brief, parse_brief
from kantoku.planner.planning.plan import Dialogue, Plan, Shot
from kantoku.planner.rights.credits import ATTRIBUTION_RULE
from kantoku.planner.rights.ledger import SqliteLedger
from kantoku.planner.rights.policy import check_policy
from kantoku.planner.rights.report import build_report, write_report
from kantoku.services._core.assets import sha256_file
from kantoku.services._core.registry import ModelRegistry
from kantoku.v1 import common_pb2

TITLE = "Rain <script>alert('x')</script> & more"


def _brief(**fields: object) -> Brief:
    data: dict = {"title": TITLE, "characters": [{"name": "Ann"}]}
    data.update(fields)
    return parse_brief(data)


def _plan() -> Plan:
    return Plan(title="Rain", duration_s=3.0, width_px=720, height_px=1280, fps=30, shots=[
        Shot(id="s001", start_s=0.0, end_s=2.0, characters=["Ann"],
             dialogue=[Dialogue(speaker="Ann", text="Hello")]),
        Shot(id="s002", start_s=2.0, end_s=3.0),
    ])


def _record(kind: str, model: common_pb2.ModelCard, output: str,
            inputs: tuple[common_pb2.AssetRef, ...] = ()) -> dict:
    record = common_pb2.ProvenanceRecord(step_id=output, kind=kind, model=model,
                                         inputs=list(inputs))
    record.output.CopyFrom(common_pb2.AssetRef(sha256=output * 64, media_type="image/png"))
    return json_format.MessageToDict(record)


def _entries(tmp_path: Path, extra: dict | None = None, *, reference_sha: str = "f" * 64,
             shots: tuple[str, ...] = ("s001", "s002")) -> list[dict]:
    """A job's ledger: the plan, then each shot's steps in the order `shots` were rendered."""
    registry = ModelRegistry()
    card = {m: registry.get(m).to_card() for m in ("previz-v1", "animatic-v1",
                                                   "en_US-joe-medium")}
    reference = common_pb2.AssetRef(sha256=reference_sha, rights=common_pb2.RightsInfo(
        rights_holder="Photo Owner <b>", license="proprietary", consent=True))
    steps = {"s001": [("image", _record("image", card["previz-v1"], "a", (reference,)), False),
                      ("tts", _record("tts", card["en_US-joe-medium"], "b"), False)],
             "s002": [("image", _record("image", card["previz-v1"], "c"), True),
                      ("video", _record("video", card["animatic-v1"], "d"), False)]}
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    ledger.append("job", "plan", data={"plan": _plan().model_dump()})
    for shot_id in shots:
        for kind, record, cache_hit in steps[shot_id]:
            ledger.append("job", kind, shot_id=shot_id, record=record, cache_hit=cache_hit)
    if extra:
        ledger.append("job", "fallback", shot_id="s002", record=extra)
    return ledger.entries("job")


def _report(tmp_path: Path, brief: Brief, entries: list[dict] | None = None,
            song: Path | None = None) -> dict:
    policy = check_policy(brief, _plan(), ModelRegistry(), song=song)
    return build_report("job", brief, policy, _entries(tmp_path) if entries is None else entries)


def test_clean_commercial_job_may_be_published_and_monetized(tmp_path: Path) -> None:
    report = _report(tmp_path, _brief())
    assert report["verdict"]["publish"] and report["verdict"]["monetize"]
    assert report["ledger"]["intact"] and report["ledger"]["entries"] == 5
    assert json.loads(json.dumps(report)) == report


@pytest.mark.parametrize(("use", "publish"), [("non-commercial", True), ("internal", False)])
def test_other_uses_are_not_monetized(tmp_path: Path, use: str, publish: bool) -> None:
    verdict = _report(tmp_path, _brief(rights_policy={"use": use}))["verdict"]
    assert verdict["publish"] is publish and verdict["monetize"] is False
    assert any(f'"{use}"' in reason for reason in verdict["reasons"])


def test_violations_and_broken_ledgers_block_publishing(tmp_path: Path) -> None:
    song = tmp_path / "song.wav"
    song.write_bytes(b"RIFF")
    verdict = _report(tmp_path, _brief(), song=song)["verdict"]
    assert not verdict["publish"] and not verdict["monetize"]
    assert any("rights of the song are unknown" in r for r in verdict["reasons"])

    entries = _entries(tmp_path / "edited")
    entries[2]["shot_id"] = "s002"
    verdict = _report(tmp_path, _brief(), entries)["verdict"]
    assert not verdict["publish"]
    assert any("ledger" in r and "seq 3" in r for r in verdict["reasons"])


def test_models_only_the_ledger_shows_are_judged(tmp_path: Path) -> None:
    card = common_pb2.ModelCard(model_id="nc-fallback", kind="image", rights=common_pb2.RightsInfo(
        license="CC-BY-NC-4.0", rights_holder="Lab", commercial_use=False))
    entries = _entries(tmp_path, extra=_record("image", card, "e"))
    report = _report(tmp_path, _brief(), entries)
    assert not report["verdict"]["publish"]
    assert any("nc-fallback (license CC-BY-NC-4.0)" in r for r in report["verdict"]["reasons"])
    item = next(i for i in report["checked"] if i["id"] == "nc-fallback")
    assert item["fields"] == ["ledger seq 6"]


def test_assets_have_one_row_per_output(tmp_path: Path) -> None:
    rows = _report(tmp_path, _brief())["assets"]
    assert [(r["kind"], r["shot"], r["model_id"]) for r in rows] == [
        ("image", "s001", "previz-v1"), ("tts", "s001", "en_US-joe-medium"),
        ("image", "s002", "previz-v1"), ("video", "s002", "animatic-v1")]
    assert rows[0]["inputs"] == [{"sha256": "f" * 64, "holder": "Photo Owner <b>"}]
    assert rows[0]["output"] == "a" * 64
    assert rows[0]["license"] == "Apache-2.0" and rows[0]["holder"] == "the kantoku project"
    assert [r["cache_hit"] for r in rows] == [False, False, True, False]


def test_shares_split_screen_time_and_sum_to_100(tmp_path: Path) -> None:
    song = tmp_path / "song.wav"
    song.write_bytes(b"RIFF")
    brief = _brief(song={"title": "Rain Song", "holder": "Label", "license": "proprietary",
                         "commercial_use": True})
    attribution = _report(tmp_path, brief, song=song)["attribution"]
    assert attribution["rule"] == ATTRIBUTION_RULE
    shares = {s["holder"]: s for s in attribution["shares"]}
    # s001 (2 s): kantoku, the photo owner and the voice's holder; s002 (1 s): kantoku only.
    project = shares["the kantoku project"]
    assert project["seconds"] == pytest.approx(2 / 3 + 1, abs=1e-3)
    assert shares["Photo Owner <b>"]["seconds"] == pytest.approx(2 / 3, abs=1e-3)
    assert sum(round(s["percent"] * 100) for s in attribution["shares"]) == 10_000
    assert project["percent"] == pytest.approx(55.56)
    assert attribution["soundtrack"] == [{
        "holder": "Label", "title": "Rain Song", "license": "proprietary", "file": "song.wav",
        "sha256": sha256_file(song), "commercial_use": True, "percent": 100.0}]


def test_shares_without_a_plan_count_shots(tmp_path: Path) -> None:
    entries = [e for e in _entries(tmp_path) if e["kind"] != "plan"]
    attribution = _report(tmp_path, _brief(), entries)["attribution"]
    assert "every shot counts once" in attribution["basis"]
    assert sum(s["percent"] for s in attribution["shares"]) == pytest.approx(100)


def test_files_are_written_and_the_html_is_escaped(tmp_path: Path) -> None:
    json_path, html_path = write_report(_report(tmp_path, _brief()), tmp_path / "out")
    assert json.loads(json_path.read_text())["title"] == TITLE
    html = html_path.read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Photo Owner &lt;b&gt;" in html
    for model in ("previz-v1", "animatic-v1", "en_US-joe-medium", "kantoku-visemes-v1"):
        assert model in html
    assert "split equally among the distinct rights holders" in html
    assert "<style>" in html and "<link" not in html and "src=" not in html


def json_strings(value: object) -> list[str]:
    """Every key and string value of a JSON document, at any depth."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *json_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in json_strings(v)]
    return [value] if isinstance(value, str) else []


def paths_in(document: object, *folders: Path) -> list[str]:
    """The strings of `document` that are absolute paths or name one of `folders`."""
    return [s for s in json_strings(document)
            if Path(s).is_absolute() or any(str(folder) in s for folder in folders)]


def _produced_job(tmp_path: Path) -> tuple[dict, str, Path]:
    """A realistic job: song and reference photo beside the brief, shots rendered out of order,
    the report written into the job folder; returns the report, its HTML and the folder."""
    song, photo = tmp_path / "media" / "song.wav", tmp_path / "media" / "ann.png"
    song.parent.mkdir()
    song.write_bytes(b"RIFF song")
    Image.new("RGB", (8, 8), "blue").save(photo)
    brief = _brief(characters=[{"name": "Ann", "reference": {
        "path": str(photo), "holder": "Photo Owner <b>", "license": "proprietary",
        "consent": True}}], song={"title": "Rain Song", "holder": "Label",
                                  "license": "proprietary", "commercial_use": True})
    entries = _entries(tmp_path, reference_sha=sha256_file(photo), shots=("s002", "s001"))
    report = _report(tmp_path, brief, entries, song=song)
    out = tmp_path / "job"
    _, html_path = write_report(report, out)
    return report, html_path.read_text(encoding="utf-8"), out


def test_the_page_credits_contributors_first_in_plain_words(tmp_path: Path) -> None:
    report, html, _ = _produced_job(tmp_path)
    contributors = {c["holder"]: c for c in report["contributors"]}
    assert list(contributors)[0] == "the kantoku project"  # the largest share first
    assert contributors["the kantoku project"]["contributed"] == [
        {"what": "image model previz-v1", "license": "Apache-2.0"},
        {"what": "video model animatic-v1", "license": "Apache-2.0"}]
    assert contributors["the kantoku project"]["share"] == \
        "55.56% of the screen time (1.7 s in 2 of 2 shots)"
    assert contributors["Photo Owner <b>"]["contributed"] == [
        {"what": "reference image ann.png", "license": "proprietary"}]
    song = contributors["Label"]
    assert "Rain Song" in song["contributed"][0]["what"]
    assert song["share"] == "100% of the song in the soundtrack"
    sections = [html.index(f'<h2 id="{name}">') for name in
                ("contributors", "verdict", "assets", "checked", "ledger")]
    assert sections == sorted(sections)
    credits = html[sections[0]:sections[1]]
    for text in ("the kantoku project", "video model animatic-v1", "Apache-2.0",
                 "55.56% of the screen time", "Photo Owner &lt;b&gt;", "reference image ann.png",
                 "Label", "Rain Song", "100% of the song"):
        assert text in credits, text
    assert "all 6 models and assets are cleared" in html[sections[1]:sections[2]]


def test_assets_are_grouped_by_shot_in_time_order_with_short_hashes(tmp_path: Path) -> None:
    report, html, _ = _produced_job(tmp_path)
    assert [s["id"] for s in report["shots"]] == ["s001", "s002"]
    assert [r["shot"] for r in report["assets"]] == ["s002", "s002", "s001", "s001"]  # ledger
    table = html[html.index('<h2 id="assets">'):html.index('<h2 id="checked">')]
    marks = [table.index(text) for text in ("s001 · 0:00.00–0:02.00", "a" * 12, "b" * 12,
                                            "s002 · 0:02.00–0:03.00", "c" * 12, "d" * 12)]
    assert marks == sorted(marks)
    assert "a" * 13 not in html and report["assets"][2]["output"] == "a" * 64


def test_the_report_is_dated_and_every_column_explained(tmp_path: Path) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    report, html, out = _produced_job(tmp_path)
    date = datetime.fromisoformat(report["date"])
    assert date.utcoffset() == timedelta(0) and before <= date <= datetime.now(UTC)
    assert json.loads((out / "rights.json").read_text())["date"] == report["date"]
    assert report["date"] in html
    headers = re.findall(r"<th>([^<]+)</th>", html)
    explained = set(re.findall(r"<dt>([^<]+)</dt>", html))
    assert len(set(headers)) >= 20 and set(headers) <= explained


def test_no_path_of_the_rendering_machine_is_in_the_files(tmp_path: Path) -> None:
    _, html, out = _produced_job(tmp_path)
    document = json.loads((out / "rights.json").read_text(encoding="utf-8"))
    assert {"song.wav", "ann.png"} <= set(json_strings(document))
    assert paths_in(document, tmp_path) == []
    assert str(tmp_path) not in html
