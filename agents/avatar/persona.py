"""A character the avatar plays: who it is, how it speaks and looks, and its rights.

Personas are YAML files (`personas/*.yaml`), read as strictly as briefs: no aliases, bounded
nesting, unknown fields refused; every error names the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kantoku.planner.planning.brief import describe_errors, parse_document
from kantoku.services._core.errors import invalid, not_found

#: The personas that ship with kantoku.
PERSONAS_DIR = Path(__file__).resolve().parents[2] / "personas"
#: A persona file is a page of text; anything larger is not one.
MAX_PERSONA_BYTES = 64 * 1024
_ID = r"^[a-z0-9][a-z0-9_-]{0,39}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Look(_Strict):
    """What the page draws: words it knows (short/long hair, knit/shirt, ...) and CSS colours."""

    hair: Literal["short", "long", "bob", "ponytail"] = "short"
    hair_colour: str = Field(default="black", min_length=1, max_length=30)
    outfit: Literal["knit", "shirt", "hoodie", "jacket", "dress"] = "knit"
    outfit_colour: str = Field(default="pink", min_length=1, max_length=30)
    eye_colour: str = Field(default="brown", min_length=1, max_length=30)
    skin: str = Field(default="light", min_length=1, max_length=30)


class PersonaRights(_Strict):
    """Who may be heard and seen: the voice's licence, consent for the likeness, the holder.
    A character is only played with its likeness holder's consent."""

    voice_licence: str = Field(min_length=1, max_length=100)
    likeness_consent: bool
    holder: str = Field(min_length=1, max_length=200)

    @field_validator("likeness_consent")
    @classmethod
    def _consented(cls, value: bool) -> bool:
        if not value:
            raise ValueError("the character's likeness needs its holder's consent to be shown; "
                             "get it, then set true")
        return value


class Persona(_Strict):
    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=60)
    language: Literal["ja", "en"]
    #: A voice the TTS service lists (`kantoku voices`) that speaks `language`.
    voice_id: str = Field(min_length=1, max_length=100)
    system_prompt: str = Field(min_length=1, max_length=4000)
    greeting: str = Field(min_length=1, max_length=500)
    #: The character's own words about itself (shown on the page).
    description: str = Field("", max_length=500)
    look: Look = Field(default_factory=lambda: Look())
    rights: PersonaRights
    #: Keep the person's speech (utterance WAVs in the asset store); off by default.
    store_audio: bool = False

    def summary(self) -> dict[str, object]:
        """What `GET /v1/personas` and the `ready` event show of the persona."""
        return {"id": self.id, "name": self.name, "language": self.language,
                "description": self.description, "look": self.look.model_dump(),
                "greeting": self.greeting}


def load_persona(path: Path) -> Persona:
    """Read and validate a persona file.

    Raises:
        KantokuError: PERSONA_NOT_FOUND, or PERSONA_INVALID naming the file and the field.
    """
    if not path.is_file():
        raise not_found(f"{path}: no such persona file; check the path",
                        reason="PERSONA_NOT_FOUND")
    if path.stat().st_size > MAX_PERSONA_BYTES:
        raise invalid(f"{path}: over {MAX_PERSONA_BYTES} bytes; a persona is a page of YAML",
                      reason="PERSONA_INVALID")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise invalid(f"{path}: not UTF-8 text", reason="PERSONA_INVALID") from None
    data = parse_document(text, path, "persona")
    if not isinstance(data, dict):
        raise invalid(f"{path}: a persona is a mapping of fields (id, name, language, ...)",
                      reason="PERSONA_INVALID")
    try:
        return Persona.model_validate(data)
    except ValidationError as exc:
        raise invalid(f"{path}: {describe_errors(exc)}", reason="PERSONA_INVALID") from None


def load_personas(folder: Path = PERSONAS_DIR, extra: Path | None = None) -> dict[str, Persona]:
    """Every persona in `folder` (sorted by file name), and `extra` (a file given on the
    command line, which replaces one of the same id); ids must be unique."""
    personas: dict[str, Persona] = {}
    paths = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    for path in paths:
        persona = load_persona(path)
        if persona.id in personas:
            raise invalid(f"{path}: id: {persona.id!r} is used by another persona file; give "
                          "each persona its own id", reason="PERSONA_INVALID")
        personas[persona.id] = persona
    if extra is not None:
        persona = load_persona(extra)
        personas[persona.id] = persona
    return personas
