"""The rights policy gate: every model, voice, adapter, reference and song, checked before a render.

Rules, by ``rights_policy.use``:

* ``commercial``: everything must be cleared for commercial use and have a known license;
* ``non-commercial``: non-commercial licenses are fine, but every license must be known;
* ``internal``: anything goes, except a missing consent.

Whatever the use, a reference image needs its holder's consent (``consent: true``), and with
``rights_policy.opt_in_training_data_only`` every registry model (voices and adapters included)
must state ``training_data_opt_in: true``. A song file without ``song:`` rights in the brief has
unknown rights, which only ``internal`` use accepts. A reference image counts as cleared for
commercial use when its holder consented (the consent covers the brief's stated use).

Checked: the brief's image, video and motion models; every voice (characters' voices,
``models.tts`` when set, voices the plan's dialogue names, and the language's default voice when a
plan line would fall back to it); the image model's IP-Adapter when a character has a reference
image; every reference image; the song file when one is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.plan import Plan
from kantoku.services._core.assets import sha256_bytes, sha256_file
from kantoku.services._core.errors import Category, KantokuError, not_found
from kantoku.services._core.inputs import image_bytes
from kantoku.services._core.registry import ModelEntry, ModelRegistry
from kantoku.services.tts.language import base_language
from kantoku.services.tts.servicer import DEFAULT_VOICES

ItemKind = Literal["model", "voice", "adapter", "reference", "song"]
#: License ids that say nothing about the terms.
UNKNOWN_LICENSES = frozenset({"", "unknown", "not stated", "noassertion", "none"})
SONG_RIGHTS_UNKNOWN = ("rights of the song are unknown; add song: {holder, license, "
                       "commercial_use} to the brief")


class PolicyItem(BaseModel):
    """One checked model or asset and the verdict on it."""

    kind: ItemKind
    #: Registry id, or the file's name for references and songs (never its path: the reports
    #: that carry it are handed on to other machines and people).
    id: str
    #: Where the brief or plan names it, e.g. ``models.image``, ``characters[1].voice``.
    fields: list[str] = Field(default_factory=list)
    license: str
    holder: str
    commercial_use: bool
    #: Registry items only: the training data was given with explicit opt-in.
    training_data_opt_in: bool | None = None
    #: Registry items only: the registry's training-data statement.
    training_data: str | None = None
    #: References only: the holder agreed to this use.
    consent: bool | None = None
    #: References and songs: the sha256 of the file, which identifies it wherever it lies.
    sha256: str | None = None
    #: False for a song file whose rights the brief does not state.
    rights_known: bool = True
    ok: bool = True
    #: The rules it satisfies when ok, else every rule it breaks ("; " between rules).
    rule: str = ""
    violations: list[str] = Field(default_factory=list)

    def describe(self, violation: str) -> str:
        """``voice jf_alpha (license X): <violation>``."""
        return f"{self.kind} {self.id} (license {self.license}): {violation}"


class PolicyReport(BaseModel):
    """Every item the gate checked, under which policy."""

    use: str
    opt_in_training_data_only: bool
    items: list[PolicyItem]

    @property
    def violations(self) -> list[PolicyItem]:
        """The items that break the policy."""
        return [item for item in self.items if not item.ok]

    @property
    def ok(self) -> bool:
        """No item breaks the policy."""
        return not self.violations


def check_policy(brief: Brief, plan: Plan, registry: ModelRegistry, *,
                 song: Path | None) -> PolicyReport:
    """Check every model and asset the job will use against ``brief.rights_policy``.

    Args:
        brief: the validated brief (its models, characters, references, song rights and policy).
        plan: the shot plan (its dialogue may name voices).
        registry: the model registry the services render with.
        song: the song file the job is cut to, when there is one.

    Returns:
        The report, one item per distinct model, voice and adapter and per reference and song.

    Raises:
        KantokuError: NOT_FOUND when a model id is not registered (naming the brief field) or
            a reference or song file does not exist (naming the file).
    """
    items = _registry_items(brief, plan, registry) + _reference_items(brief)
    if song is not None:
        items.append(_song_item(brief, song))
    policy = brief.rights_policy
    for item in items:
        judge(item, policy.use, policy.opt_in_training_data_only)
    return PolicyReport(use=policy.use, opt_in_training_data_only=policy.opt_in_training_data_only,
                        items=items)


def enforce(report: PolicyReport) -> None:
    """Refuse to render when any item breaks the policy.

    Args:
        report: what :func:`check_policy` returned.

    Raises:
        KantokuError: RIGHTS_DENIED, reason ``POLICY_VIOLATION``, with one line per violation
            naming the model or asset, its license and the rule it breaks.
    """
    bad = report.violations
    if not bad:
        return
    lines = [item.describe(v) for item in bad for v in item.violations]
    message = (f"the rights policy (use: {report.use}) refuses {len(bad)} "
               f"item{'s' if len(bad) != 1 else ''}; replace them or change the brief:\n  "
               + "\n  ".join(lines))
    raise KantokuError(message, "POLICY_VIOLATION", Category.RIGHTS_DENIED,
                       {"items": ",".join(f"{item.kind}:{item.id}" for item in bad)})


def judge(item: PolicyItem, use: str, opt_in_only: bool) -> None:
    """Apply the policy rules (see the module docstring) to one item.

    Args:
        item: the model or asset; its ``ok``, ``rule`` and ``violations`` are set in place.
        use: ``rights_policy.use``.
        opt_in_only: ``rights_policy.opt_in_training_data_only``.
    """
    passed: list[str] = []
    broken: list[str] = []
    if item.consent is False:
        broken.append("no consent from the holder; set consent: true only once "
                      f"{item.holder} (and anyone shown) agreed")
    elif not item.rights_known:
        (passed if use == "internal" else broken).append(
            "rights unknown; internal use only" if use == "internal" else SONG_RIGHTS_UNKNOWN)
    elif use == "commercial" and not item.commercial_use:
        broken.append(f'not cleared for commercial use; rights_policy.use is "{use}"')
    elif use != "internal" and item.license.strip().lower() in UNKNOWN_LICENSES:
        broken.append(f'the license is unknown; rights_policy.use is "{use}"')
    else:
        passed.append(f"{use} use allowed")
    if opt_in_only and item.training_data_opt_in is False:
        broken.append(f"training data is not opt-in ({item.training_data}); "
                      "rights_policy.opt_in_training_data_only is true")
    elif opt_in_only and item.training_data_opt_in:
        passed.append("opt-in training data")
    item.ok = not broken
    item.violations = broken
    item.rule = "; ".join(broken or passed)


def _registry_items(brief: Brief, plan: Plan, registry: ModelRegistry) -> list[PolicyItem]:
    items: dict[tuple[str, str], PolicyItem] = {}
    wanted: list[tuple[ItemKind, str, str, str]] = [
        ("model", "image", brief.models.image, "models.image"),
        ("model", "video", brief.models.video, "models.video"),
        ("model", "motion", brief.models.motion, "models.motion")]
    wanted += [("voice", "tts", voice, where) for voice, where in _voices(brief, plan)]
    image = _entry(registry, brief.models.image, "image", "models.image")
    if image.ip_adapter and any(c.reference for c in brief.characters):
        wanted.append(("adapter", "ip_adapter", image.ip_adapter,
                       f"models.image ({brief.models.image}).ip_adapter"))
    for item_kind, registry_kind, model_id, where in wanted:
        entry = _entry(registry, model_id, registry_kind, where)
        items.setdefault((registry_kind, model_id), _model_item(item_kind, entry))
        items[(registry_kind, model_id)].fields.append(where)
    return list(items.values())


def _voices(brief: Brief, plan: Plan) -> list[tuple[str, str]]:
    """(voice id, field) for every voice the job will speak with."""
    voices = [(c.voice, f"characters[{i}].voice") for i, c in enumerate(brief.characters)
              if c.voice]
    if brief.models.tts:
        voices.append((brief.models.tts, "models.tts"))
    for i, shot in enumerate(plan.shots):
        voices += [(line.voice, f"plan.shots[{i}].dialogue[{j}].voice")
                   for j, line in enumerate(shot.dialogue) if line.voice]
    language = base_language(brief.language)
    if _needs_default_voice(brief, plan) and language in DEFAULT_VOICES:
        voices.append((DEFAULT_VOICES[language], f"models.tts (the default {language} voice)"))
    return voices


def _needs_default_voice(brief: Brief, plan: Plan) -> bool:
    """A plan line names no voice, its speaker has none and the brief names no models.tts."""
    if brief.models.tts:
        return False
    voiced = {c.name for c in brief.characters if c.voice}
    return any(not line.voice and line.speaker not in voiced
               for shot in plan.shots for line in shot.dialogue)


def _entry(registry: ModelRegistry, model_id: str, kind: str, where: str) -> ModelEntry:
    try:
        return registry.get(model_id, kind=kind)
    except KantokuError as exc:
        if exc.category != Category.NOT_FOUND:
            raise
    known = ", ".join(sorted(e.id for e in registry.list(kind))) or "none"
    raise not_found(f"{where}: unknown {kind} model {model_id!r} (registered: {known}); "
                    "run `kantoku models list` to see every model", reason="MODEL_NOT_FOUND",
                    model_id=model_id, field=where)


def _model_item(kind: ItemKind, entry: ModelEntry) -> PolicyItem:
    return PolicyItem(kind=kind, id=entry.id, license=entry.license, holder=entry.rights_holder,
                      commercial_use=entry.commercial_use,
                      training_data_opt_in=entry.training_data_opt_in,
                      training_data=entry.training_data)


def _reference_items(brief: Brief) -> list[PolicyItem]:
    items = []
    for i, character in enumerate(brief.characters):
        reference = character.reference
        if reference is None:
            continue
        where = f"characters[{i}].reference"
        if not reference.path.exists():
            raise not_found(f"{where}.path: {reference.path} does not exist; fix the path in "
                            "the brief (relative paths start at the brief's folder)",
                            reason="REFERENCE_NOT_FOUND", path=str(reference.path))
        data, _ = image_bytes(reference.path, f"{where}.path")  # a picture, or refused
        items.append(PolicyItem(kind="reference", id=reference.path.name, fields=[where],
                                sha256=sha256_bytes(data), license=reference.license,
                                holder=reference.holder, commercial_use=reference.consent,
                                consent=reference.consent))
    return items


def _song_item(brief: Brief, song: Path) -> PolicyItem:
    if not song.is_file():
        raise not_found(f"--song: {song} does not exist; check the path",
                        reason="SONG_NOT_FOUND", path=str(song))
    rights, digest = brief.song, sha256_file(song)
    if rights is None:
        return PolicyItem(kind="song", id=song.name, fields=["--song"], sha256=digest,
                          license="unknown", holder="unknown", commercial_use=False,
                          rights_known=False)
    return PolicyItem(kind="song", id=song.name, fields=["--song", "song"], sha256=digest,
                      license=rights.license, holder=rights.holder,
                      commercial_use=rights.commercial_use)
