"""The director's brief: what a job is asked to make, validated at the door.

A brief is a YAML or JSON file. Every error names the field (and, for YAML syntax, the line and
column) and says what to do; nothing is rendered from a brief that does not validate.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kantoku.services._core.errors import invalid, not_found
from kantoku.services._core.files import read_text_file
from kantoku.services._core.inputs import image_bytes, inside_roots, reference_roots
from kantoku.services._core.registry import ModelId

#: Longest job kantoku plans, in seconds (a short-form video; songs have the same limit).
MAX_DURATION_S = 600.0
MIN_DURATION_S = 1.0
MAX_CHARACTERS = 16
ASPECTS: dict[str, tuple[int, int]] = {"9:16": (9, 16), "16:9": (16, 9), "1:1": (1, 1)}
#: Short side in pixels for the named resolutions.
RESOLUTIONS = {"480p": 480, "720p": 720, "1080p": 1080}
#: Largest brief file read (a brief is a page of text; checked before reading).
MAX_BRIEF_BYTES = 1 << 20


#: Control characters but tab and line breaks: no field of a brief has a use for them, and they
#: reach voices, terminals and reports.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: object) -> object:
        if isinstance(value, str) and (found := _CONTROL.search(value)) is not None:
            raise ValueError(f"holds the control character U+{ord(found.group()):04X}; "
                             "remove it")
        return value


class ReferenceImage(Strict):
    """A photo or drawing a character is made to look like; its owner must have consented."""

    path: Path
    holder: str = Field(min_length=1, description="who owns the picture")
    license: str = Field(default="proprietary", min_length=1)
    consent: bool = Field(description="the holder (and any person shown) agreed to this use")


class CharacterSpec(Strict):
    name: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=500)
    voice: ModelId | None = Field(default=None, description="a TTS voice id from the registry")
    reference: ReferenceImage | None = None


class DialogueLine(Strict):
    speaker: str = Field(min_length=1)
    text: str = Field(min_length=1, max_length=500)


class Models(Strict):
    """Registry ids per modality; the defaults are the embedded CPU models."""

    image: ModelId = "previz-v1"
    video: ModelId = "animatic-v1"
    motion: ModelId = "kantoku-visemes-v1"
    #: Voice for characters that do not name one; by language when empty.
    tts: ModelId | None = None


class RightsPolicy(Strict):
    use: Literal["commercial", "non-commercial", "internal"] = "commercial"
    opt_in_training_data_only: bool = False


class SongRights(Strict):
    """Who holds the song and under which terms (the audio file itself comes with --song)."""

    title: str = ""
    holder: str = Field(min_length=1)
    license: str = Field(min_length=1)
    commercial_use: bool = False


class Brief(Strict):
    title: str = Field(min_length=1, max_length=200)
    logline: str = Field(default="", max_length=2000)
    language: str = Field(default="en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    aspect: str = "9:16"
    resolution: str = "720p"
    duration_s: float | None = Field(default=None, description="when there is no song")
    style: str = Field(default="", max_length=500)
    locations: list[str] = Field(default_factory=list, max_length=32)
    mood: str = Field(default="", max_length=200)
    characters: list[CharacterSpec] = Field(default_factory=list)
    dialogue: list[DialogueLine] = Field(default_factory=list, max_length=200)
    models: Models = Models()
    rights_policy: RightsPolicy = RightsPolicy()
    song: SongRights | None = None
    fps: int = Field(default=30, ge=1, le=60)
    seed: int = Field(default=0, ge=0, lt=2**63)

    @field_validator("aspect")
    @classmethod
    def _known_aspect(cls, value: str) -> str:
        if value not in ASPECTS:
            raise ValueError(f"must be one of {', '.join(ASPECTS)}")
        return value

    @field_validator("resolution")
    @classmethod
    def _known_resolution(cls, value: str) -> str:
        if value not in RESOLUTIONS:
            raise ValueError(f"must be one of {', '.join(RESOLUTIONS)}")
        return value

    @field_validator("duration_s")
    @classmethod
    def _sane_duration(cls, value: float | None) -> float | None:
        if value is not None and not MIN_DURATION_S <= value <= MAX_DURATION_S:
            raise ValueError(f"must be between {MIN_DURATION_S:g} and {MAX_DURATION_S:g} seconds")
        return value

    @field_validator("characters")
    @classmethod
    def _few_characters(cls, value: list[CharacterSpec]) -> list[CharacterSpec]:
        if len(value) > MAX_CHARACTERS:
            raise ValueError(f"at most {MAX_CHARACTERS} characters")
        names = [c.name for c in value]
        if len(set(names)) != len(names):
            raise ValueError("character names must be unique")
        return value

    @model_validator(mode="after")
    def _speakers_are_characters(self) -> Brief:
        names = {c.name for c in self.characters}
        for index, line in enumerate(self.dialogue):
            if line.speaker not in names:
                raise ValueError(
                    f"dialogue[{index}].speaker: {line.speaker!r} is not one of the characters "
                    f"({', '.join(sorted(names)) or 'none declared'}); add it to characters")
        return self

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels; the short side from `resolution`, even numbers."""
        across, down = ASPECTS[self.aspect]
        short = RESOLUTIONS[self.resolution]
        if across <= down:
            return short, _even(short * down / across)
        return _even(short * across / down), short

    def character(self, name: str) -> CharacterSpec:
        return next(c for c in self.characters if c.name == name)


def _even(value: float) -> int:
    return int(round(value / 2)) * 2


def load_brief(path: Path) -> Brief:
    """Read and validate a brief; relative reference paths are taken from the brief's folder.

    Each reference must be a picture (by its content) inside the brief's folder or a folder in
    `KANTOKU_REFERENCE_ROOTS`, symlinks followed; its path becomes the real one.
    """
    if not path.is_file():
        raise not_found(f"{path}: no such brief file; check the path", reason="BRIEF_NOT_FOUND")
    text = read_text_file(path, "the brief", MAX_BRIEF_BYTES, "BRIEF")
    data = _parse(text, path)
    brief = parse_brief(data, str(path))
    roots = reference_roots(path.parent)
    for index, character in enumerate(brief.characters):
        if character.reference:
            field = f"characters[{index}].reference.path"
            real = inside_roots(path.parent / character.reference.path, field, roots)
            image_bytes(real, field)
            character.reference.path = real
    return brief


def brief_from_text(text: str, origin: str = "brief") -> Brief:
    """A brief from YAML or JSON text (JSON is YAML), read as strictly as a brief file:
    no aliases, bounded nesting; errors start with `origin`."""
    return parse_brief(_parse(text, Path(origin)), origin)


def parse_brief(data: object, origin: str = "brief") -> Brief:
    if not isinstance(data, dict):
        raise invalid(f"{origin}: a brief is a mapping of fields (title, logline, ...)",
                      reason="BRIEF_INVALID")
    try:
        return Brief.model_validate(data)
    except ValidationError as exc:
        raise invalid(f"{origin}: {describe_errors(exc)}", reason="BRIEF_INVALID") from None


def describe_errors(exc: ValidationError, limit: int = 5) -> str:
    """'characters.0.name: Field required; fps: ...' — the field path first, then the rule."""
    parts = []
    for error in exc.errors()[:limit]:
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field; remove it or check its spelling"
        parts.append(f"{where}: {message}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _parse(text: str, path: Path) -> object:
    return parse_document(text, path, "brief")


def parse_document(text: str, path: Path, what: str) -> object:
    """YAML (or JSON, by the file's suffix) read strictly: a SafeLoader without aliases and
    with bounded nesting; errors name `path` (line and column) and `what` the file is."""
    try:
        return _parse_syntax(text, path, what)
    except RecursionError:
        raise invalid(f"{path}: nested too deeply to be a {what}; a {what} is a few levels of "
                      "fields and lists", reason=f"{what.upper()}_SYNTAX") from None


def _parse_syntax(text: str, path: Path, what: str) -> object:
    reason = f"{what.upper()}_SYNTAX"
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise invalid(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})",
                          reason=reason) from None
    try:
        return yaml.load(text, Loader=_BriefLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or "syntax error"
        raise invalid(f"{where}: not valid YAML ({problem}); fix the {what}",
                      reason=reason) from None


class _BriefLoader(yaml.SafeLoader):
    """SafeLoader without aliases: `*name` can repeat a value exponentially ("billion laughs"),
    and a brief (or a persona) has no use for them."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed here; write the value out",
                event.start_mark)
        return super().compose_node(parent, index)  # type: ignore[no-any-return]
