import json
from pathlib import Path

import pytest
from google.protobuf import json_format

from kantoku.planner.planning.brief import Brief, parse_brief
from kantoku.planner.planning.plan import Dialogue, Plan, Shot
from kantoku.planner.rights.ledger import Ledger
from kantoku.planner.rights.policy import check_policy
from kantoku.planner.rights.report import ATTRIBUTION_RULE, build_report, write_report
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


def _entries(tmp_path: Path, extra: dict | None = None) -> list[dict]:
    registry = ModelRegistry()
    card = {m: registry.get(m).to_card() for m in ("previz-v1", "animatic-v1",
                                                   "en_US-joe-medium")}
    reference = common_pb2.AssetRef(sha256="f" * 64, rights=common_pb2.RightsInfo(
        rights_holder="Photo Owner <b>", license="proprietary", consent=True))
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.append("job", "plan", data={"plan": _plan().model_dump()})
    ledger.append("job", "image", shot_id="s001",
                  record=_record("image", card["previz-v1"], "a", (reference,)))
    ledger.append("job", "tts", shot_id="s001", record=_record("tts", card["en_US-joe-medium"],
                                                                "b"))
    ledger.append("job", "image", shot_id="s002", record=_record("image", card["previz-v1"], "c"),
                  cache_hit=True)
    ledger.append("job", "video", shot_id="s002",
                  record=_record("video", card["animatic-v1"], "d"))
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
    assert rows[0]["inputs"] == [{"sha256": "f" * 12, "holder": "Photo Owner <b>"}]
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
        "commercial_use": True, "percent": 100.0}]


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
