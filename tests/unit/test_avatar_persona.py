"""Persona files: the shipped ones load; a broken one is refused naming the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from kantoku.agents.avatar.persona import PERSONAS_DIR, load_persona, load_personas
from kantoku.services._core.errors import KantokuError
from kantoku.services.tts.servicer import DEFAULT_VOICES

GOOD = (PERSONAS_DIR / "bell.yaml").read_text(encoding="utf-8")


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refused(path: Path) -> str:
    with pytest.raises(KantokuError) as caught:
        load_persona(path)
    assert str(path) in caught.value.message
    return caught.value.message


def test_the_shipped_personas_load() -> None:
    personas = load_personas()
    bell = personas["bell"]
    assert (bell.language, bell.look.hair, bell.look.hair_colour, bell.look.outfit,
            bell.look.outfit_colour) == ("ja", "short", "black", "knit", "pink")
    assert "ベル" in bell.description and bell.store_audio is False
    assert bell.rights.likeness_consent and bell.rights.holder
    assert personas["joe"].language == "en"
    for persona in personas.values():
        assert persona.summary()["greeting"] == persona.greeting
    # Their voices are voices the TTS service has (the defaults are in the model registry).
    from kantoku.services._core.registry import ModelRegistry

    voices = {e.id: e for e in ModelRegistry().list("tts")}
    assert all(p.voice_id in voices for p in personas.values())
    assert set(DEFAULT_VOICES) == {"en", "ja"}


@pytest.mark.parametrize(("change", "field"), [
    (("language: ja", "language: fr"), "language"),
    (("id: bell", "id: Bell Two"), "id"),
    (("  hair: short", "  hair: purple"), "look.hair"),
    (("  likeness_consent: true", "  likeness_consent: maybe"), "rights.likeness_consent"),
    (("  likeness_consent: true", "  likeness_consent: false"), "rights.likeness_consent"),
    (("store_audio: false", "store_audio: false\nvoice: x"), "voice"),
])
def test_a_wrong_field_is_named(tmp_path: Path, change: tuple[str, str], field: str) -> None:
    assert change[0] in GOOD
    message = refused(write(tmp_path, GOOD.replace(*change, 1)))
    assert f"{field}:" in message


def test_missing_fields_and_bad_yaml_are_named(tmp_path: Path) -> None:
    message = refused(write(tmp_path, "id: x\nname: X\n"))
    assert "language: Field required" in message and "rights: Field required" in message
    assert "p.yaml:2:7: not valid YAML" in refused(write(tmp_path, "id: x\nname: : x\n"))
    assert "aliases" in refused(write(tmp_path, "a: &x 1\nb: *x\n"))
    assert "mapping" in refused(write(tmp_path, "- a list\n"))


def test_ids_are_unique_and_the_command_line_file_wins(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, GOOD, "b.yaml")
    with pytest.raises(KantokuError, match="id: 'bell' is used by another"):
        load_personas(tmp_path)
    (tmp_path / "x").mkdir()
    extra = write(tmp_path / "x", GOOD.replace("name: ベル", "name: ベル二号"), "x.yaml")
    assert load_personas(PERSONAS_DIR, extra)["bell"].name == "ベル二号"
