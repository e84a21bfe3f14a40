"""What changes between two versions of a plan, shot by shot, and what it costs to render.

Used wherever a plan is edited (a timeline back from an editor, a plan edited in the studio):
each shot of the new plan is compared with the shot it came from (`source_ids`: the same id by
default; a duplicated clip names the shot it copies), and shots of the old plan that are gone
are listed as removed. The cost counts the render steps that cannot come from the cache: a new
keyframe when what the image shows changed, a new clip when the keyframe, the move or the
length changed, new speech for each changed line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from kantoku.planner.planning.plan import Plan, Shot

Status = Literal["unchanged", "moved", "changed", "added", "removed"]

#: Fields that change the keyframe image (the shot id too: previz draws it in the caption).
IMAGE_FIELDS = ("description", "shot_size", "camera_angle", "characters", "location",
                "time_of_day", "image_prompt", "seed")
#: Fields that change the clip beyond its keyframe (the length is compared in frames).
CLIP_FIELDS = ("camera_move",)
#: Fields that change nothing rendered (the assembly and the timeline pick them up).
EDIT_ONLY_FIELDS = ("section", "transition", "lyrics")


@dataclass
class ShotChange:
    """One shot's fate between two plans."""

    shot_id: str
    status: Status
    #: The shot of the old plan it came from (itself, or the one a duplicate copies).
    source_id: str | None = None
    #: Fields whose values differ ("frames" for a new length).
    fields: list[str] = field(default_factory=list)
    #: Render steps that must run: "image", "clip", "speech" (one per changed line).
    renders: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.status == "added":
            return f"{self.shot_id}: new, a copy of {self.source_id}"
        if self.status in ("unchanged", "removed", "moved"):
            return f"{self.shot_id}: {self.status}"
        return f"{self.shot_id}: {', '.join(self.fields)} changed"


@dataclass
class PlanDiff:
    changes: list[ShotChange]

    @property
    def render_steps(self) -> int:
        return sum(len(c.renders) for c in self.changes)

    @property
    def changed(self) -> list[ShotChange]:
        return [c for c in self.changes if c.status != "unchanged"]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for change in self.changes:
            counts[change.status] = counts.get(change.status, 0) + 1
        return counts

    def summary(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.counts().items()))
        return f"{counts}; {self.render_steps} render step(s) to run"


def diff_plans(old: Plan, new: Plan, source_ids: Mapping[str, str] | None = None) -> PlanDiff:
    """The shot-by-shot difference from `old` to `new`.

    Args:
        old: the plan that was rendered.
        new: the edited plan.
        source_ids: new shot id -> the old shot it came from, for shots whose id is new
            (duplicates); shots not named keep their own id as their source.
    """
    source_ids = source_ids or {}
    before = {shot.id: shot for shot in old.shots}
    changes = []
    for shot in new.shots:
        source = before.get(source_ids.get(shot.id, shot.id))
        if source is None:
            changes.append(ShotChange(shot.id, "added", None, ["everything"],
                                      ["image", "clip", *(["speech"] * len(shot.dialogue))]))
            continue
        changes.append(_compare(source, shot, old, new, added=source.id != shot.id))
    kept = {change.source_id for change in changes if change.status != "added"}
    changes += [ShotChange(shot.id, "removed", shot.id) for shot in old.shots
                if shot.id not in kept]
    return PlanDiff(changes)


def _compare(source: Shot, shot: Shot, old: Plan, new: Plan, *, added: bool) -> ShotChange:
    fields = [name for name in (*IMAGE_FIELDS, *CLIP_FIELDS, *EDIT_ONLY_FIELDS)
              if getattr(source, name) != getattr(shot, name)]
    lines = _changed_lines(source, shot)
    if lines:
        fields.append("dialogue")
    if old.frames(source) != new.frames(shot):
        fields.append("frames")
    image = added or any(name in IMAGE_FIELDS for name in fields)
    clip = image or "camera_move" in fields or "frames" in fields
    renders = [*(["image"] if image else []), *(["clip"] if clip else []),
               *(["speech"] * lines)]
    if added:
        return ShotChange(shot.id, "added", source.id, fields, renders)
    if fields and set(fields) - {"lyrics"}:
        return ShotChange(shot.id, "changed", source.id, fields, renders)
    moved = abs(source.start_s - shot.start_s) > 1e-6
    return ShotChange(shot.id, "moved" if moved else "unchanged", source.id, fields, renders)


def _changed_lines(source: Shot, shot: Shot) -> int:
    """Lines of `shot` whose speaker, text or voice is not among `source`'s lines."""
    before = [(line.speaker, line.text, line.voice) for line in source.dialogue]
    return sum(1 for line in shot.dialogue
               if (line.speaker, line.text, line.voice) not in before)
