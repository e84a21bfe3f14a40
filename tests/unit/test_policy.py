import json
from pathlib import Path

import pytest
from PIL import Image

from kantoku.planner.planning.brief import Brief, parse_brief
from kantoku.planner.planning.plan import Dialogue, Plan, Shot
from kantoku.planner.rights.policy import PolicyReport, check_policy, enforce
from kantoku.services._core.assets import sha256_file
from kantoku.services._core.errors import Category, KantokuError
from kantoku.services._core.registry import ModelRegistry, add_user_model
from kantoku.services._core.settings import CoreSettings


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    """The shipped registry plus a non-commercial image model and a linked IP-Adapter."""
    home = tmp_path_factory.mktemp("policy-home")
    settings = CoreSettings(home=home)
    pipeline = home / "nc-image"
    (pipeline / "transformer").mkdir(parents=True)
    (pipeline / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    (pipeline / "transformer" / "model.safetensors").write_bytes(b"not really weights")
    ipa = home / "nc-ipa"
    (ipa / "image_encoder").mkdir(parents=True)
    (ipa / "ip_adapter.safetensors").write_bytes(b"adapter")
    (ipa / "image_encoder" / "config.json").write_text("{}")
    (ipa / "image_encoder" / "model.safetensors").write_bytes(b"encoder")
    add_user_model("nc-image", pipeline, "image", "CC-BY-NC-4.0", False, "Research Lab",
                   settings=settings)
    add_user_model("nc-ipa", ipa, "ip_adapter", "CC-BY-NC-4.0", False, "Adapter Lab",
                   settings=settings)
    add_user_model("nc-image-ip", pipeline, "image", "CC-BY-NC-4.0", False, "Research Lab",
                   settings=settings, ip_adapter="nc-ipa")
    return ModelRegistry(settings)


def _brief(**fields: object) -> Brief:
    data: dict = {"title": "Rain", "characters": [{"name": "Ann"}, {"name": "Bo"}],
                  "dialogue": [{"speaker": "Ann", "text": "Hello"}]}
    data.update(fields)
    return parse_brief(data)


def _plan(voice: str = "") -> Plan:
    line = Dialogue(speaker="Ann", text="Hello", voice=voice)
    return Plan(title="Rain", duration_s=3.0, width_px=720, height_px=1280, fps=30, shots=[
        Shot(id="s001", start_s=0.0, end_s=2.0, characters=["Ann"], dialogue=[line]),
        Shot(id="s002", start_s=2.0, end_s=3.0, characters=["Bo"]),
    ])


def _refused(report: PolicyReport) -> KantokuError:
    with pytest.raises(KantokuError) as info:
        enforce(report)
    assert info.value.category == Category.RIGHTS_DENIED
    assert info.value.reason == "POLICY_VIOLATION"
    return info.value


def _reference(tmp_path: Path, consent: bool) -> dict:
    photo = tmp_path / "ann.png"
    Image.new("RGB", (8, 8), "red").save(photo)
    return {"name": "Ann", "reference": {"path": str(photo), "holder": "Ann Lee",
                                         "license": "proprietary", "consent": consent}}


def test_defaults_pass_under_commercial(registry: ModelRegistry) -> None:
    report = check_policy(_brief(), _plan(), registry, song=None)
    enforce(report)
    assert report.ok and report.use == "commercial"
    checked = {(item.kind, item.id) for item in report.items}
    assert checked == {("model", "previz-v1"), ("model", "animatic-v1"),
                       ("model", "kantoku-visemes-v1"), ("voice", "en_US-joe-medium")}
    assert all(item.ok and item.rule and item.license and item.holder for item in report.items)


def test_non_commercial_model_fails_under_commercial(registry: ModelRegistry) -> None:
    report = check_policy(_brief(models={"image": "nc-image"}), _plan(), registry, song=None)
    error = _refused(report)
    assert "model nc-image (license CC-BY-NC-4.0): not cleared for commercial use" in error.message
    assert 'rights_policy.use is "commercial"' in error.message
    assert [item.id for item in report.violations] == ["nc-image"]


def test_non_commercial_model_passes_under_non_commercial(registry: ModelRegistry) -> None:
    brief = _brief(models={"image": "nc-image"}, rights_policy={"use": "non-commercial"})
    report = check_policy(brief, _plan(), registry, song=None)
    enforce(report)
    assert next(i for i in report.items if i.id == "nc-image").commercial_use is False


def test_ip_adapter_of_the_image_model_is_checked(registry: ModelRegistry,
                                                  tmp_path: Path) -> None:
    brief = _brief(models={"image": "nc-image-ip"},
                   characters=[_reference(tmp_path, True), {"name": "Bo"}])
    error = _refused(check_policy(brief, _plan(), registry, song=None))
    assert "adapter nc-ipa (license CC-BY-NC-4.0)" in error.message
    without_reference = check_policy(_brief(models={"image": "nc-image-ip"}), _plan(), registry,
                                     song=None)
    assert "nc-ipa" not in {item.id for item in without_reference.items}


@pytest.mark.parametrize("use", ["commercial", "non-commercial", "internal"])
def test_reference_without_consent_always_fails(registry: ModelRegistry, tmp_path: Path,
                                                use: str) -> None:
    brief = _brief(characters=[_reference(tmp_path, False), {"name": "Bo"}],
                   rights_policy={"use": use})
    error = _refused(check_policy(brief, _plan(), registry, song=None))
    assert "ann.png" in error.message and "no consent from the holder" in error.message


def test_reference_with_consent_passes(registry: ModelRegistry, tmp_path: Path) -> None:
    brief = _brief(characters=[_reference(tmp_path, True), {"name": "Bo"}])
    report = check_policy(brief, _plan(), registry, song=None)
    enforce(report)
    reference = next(item for item in report.items if item.kind == "reference")
    assert reference.holder == "Ann Lee" and reference.fields == ["characters[0].reference"]


def test_missing_reference_file_is_named(registry: ModelRegistry, tmp_path: Path) -> None:
    character = _reference(tmp_path, True)
    character["reference"]["path"] = str(tmp_path / "gone.png")
    with pytest.raises(KantokuError) as info:
        check_policy(_brief(characters=[character, {"name": "Bo"}]), _plan(), registry,
                     song=None)
    assert info.value.category == Category.NOT_FOUND
    assert "gone.png" in info.value.message and "characters[0].reference" in info.value.message


def test_opt_in_only_refuses_kokoro_voices(registry: ModelRegistry) -> None:
    brief = _brief(language="ja", rights_policy={"opt_in_training_data_only": True},
                   characters=[{"name": "Ann", "voice": "jf_alpha"}, {"name": "Bo"}])
    error = _refused(check_policy(brief, _plan(), registry, song=None))
    assert "voice jf_alpha (license Apache-2.0): training data is not opt-in" in error.message
    assert "opt_in_training_data_only" in error.message


def test_opt_in_only_passes_with_opt_in_models(registry: ModelRegistry) -> None:
    brief = _brief(rights_policy={"opt_in_training_data_only": True})
    report = check_policy(brief, _plan(), registry, song=None)
    enforce(report)
    assert all(item.training_data_opt_in for item in report.items)


def test_dialogue_voice_in_the_plan_is_checked(registry: ModelRegistry) -> None:
    brief = _brief(rights_policy={"opt_in_training_data_only": True})
    report = check_policy(brief, _plan(voice="jm_kumo"), registry, song=None)
    kumo = next(item for item in report.items if item.id == "jm_kumo")
    assert not kumo.ok and kumo.fields == ["plan.shots[0].dialogue[0].voice"]
    # Ann's only line names a voice, so the language default is not needed.
    assert "en_US-joe-medium" not in {item.id for item in report.items}


def test_default_voice_follows_the_language(registry: ModelRegistry) -> None:
    report = check_policy(_brief(language="ja"), _plan(), registry, song=None)
    assert "jf_alpha" in {item.id for item in report.items}


def test_song_without_rights_fails(registry: ModelRegistry, tmp_path: Path) -> None:
    song = tmp_path / "song.wav"
    song.write_bytes(b"RIFF")
    error = _refused(check_policy(_brief(), _plan(), registry, song=song))
    assert "song.wav" in error.message
    assert "rights of the song are unknown; add song: {holder, license, commercial_use}" \
        in error.message
    internal = check_policy(_brief(rights_policy={"use": "internal"}), _plan(), registry,
                            song=song)
    enforce(internal)


def test_files_are_named_by_name_and_hash_never_by_path(registry: ModelRegistry,
                                                        tmp_path: Path) -> None:
    song = tmp_path / "song.wav"
    song.write_bytes(b"RIFF")
    brief = _brief(characters=[_reference(tmp_path, True), {"name": "Bo"}],
                   song={"title": "Rain", "holder": "Label", "license": "CC0-1.0",
                         "commercial_use": True})
    report = check_policy(brief, _plan(), registry, song=song)
    files = {item.kind: item for item in report.items if item.kind in ("song", "reference")}
    assert (files["song"].id, files["song"].sha256) == ("song.wav", sha256_file(song))
    assert (files["reference"].id, files["reference"].sha256) == (
        "ann.png", sha256_file(tmp_path / "ann.png"))
    assert str(tmp_path) not in report.model_dump_json()


def test_song_rights_decide_commercial_use(registry: ModelRegistry, tmp_path: Path) -> None:
    song = tmp_path / "song.wav"
    song.write_bytes(b"RIFF")
    rights = {"title": "Rain", "holder": "Label", "license": "proprietary"}
    error = _refused(check_policy(_brief(song=rights), _plan(), registry, song=song))
    assert "song" in error.message and "(license proprietary): not cleared for commercial use" \
        in error.message
    cleared = _brief(song={**rights, "commercial_use": True})
    enforce(check_policy(cleared, _plan(), registry, song=song))
    with pytest.raises(KantokuError, match="nope.wav") as info:
        check_policy(cleared, _plan(), registry, song=tmp_path / "nope.wav")
    assert info.value.category == Category.NOT_FOUND


@pytest.mark.parametrize(("fields", "where"), [
    ({"models": {"image": "nope"}}, "models.image"),
    ({"models": {"video": "previz-v1"}}, "models.video"),
    ({"models": {"tts": "nope"}}, "models.tts"),
    ({"characters": [{"name": "Ann"}, {"name": "Bo", "voice": "nope"}]}, "characters[1].voice"),
])
def test_unknown_model_names_the_field(registry: ModelRegistry, fields: dict,
                                       where: str) -> None:
    with pytest.raises(KantokuError) as info:
        check_policy(_brief(**fields), _plan(), registry, song=None)
    assert info.value.category == Category.NOT_FOUND
    assert info.value.message.startswith(f"{where}: unknown")
    assert "kantoku models list" in info.value.message


def test_every_violation_is_listed(registry: ModelRegistry, tmp_path: Path) -> None:
    brief = _brief(models={"image": "nc-image"},
                   characters=[_reference(tmp_path, False), {"name": "Bo", "voice": "jm_kumo"}],
                   rights_policy={"opt_in_training_data_only": True})
    report = check_policy(brief, _plan(), registry, song=None)
    lines = _refused(report).message.splitlines()[1:]
    assert len(lines) == 4  # nc-image twice (commercial, opt-in), the reference, jm_kumo
    assert {item.id for item in report.violations} == {"nc-image", "ann.png", "jm_kumo"}
