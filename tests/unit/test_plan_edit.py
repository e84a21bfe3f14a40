"""An edited timeline read back into a plan, and the plan diff that says what must render."""

from __future__ import annotations

import opentimelineio as otio
import pytest

from kantoku.planner.finish.timeline_import import plan_from_timeline, read_editor_timeline
from kantoku.planner.planning.diff import diff_plans
from kantoku.planner.planning.plan import Dialogue, Plan, Shot
from kantoku.services._core.errors import KantokuError

FPS = 30


def plan() -> Plan:
    shots = [Shot(id="s001", start_s=0, end_s=2, description="wide", seed=1),
             Shot(id="s002", start_s=2, end_s=4, description="close", seed=2,
                  characters=["Aki"], dialogue=[Dialogue(speaker="Aki", text="Hi.")]),
             Shot(id="s003", start_s=4, end_s=6, description="end", seed=3)]
    return Plan(title="T", duration_s=6, width_px=72, height_px=128, fps=FPS, shots=shots)


def clip(name: str, frames: int, **metadata: object) -> otio.schema.Clip:
    return otio.schema.Clip(
        name=name, media_reference=otio.schema.ExternalReference(f"shots/{name}.mp4"),
        source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, FPS),
                                             otio.opentime.RationalTime(frames, FPS)),
        metadata={"kantoku": {"shot_id": name, **metadata}} if metadata else {})


def timeline(*items: otio.core.Composable) -> otio.schema.Timeline:
    result = otio.schema.Timeline(name="T")
    result.tracks.append(otio.schema.Track(name="shots", children=list(items)))
    return result


def test_an_untouched_timeline_changes_nothing() -> None:
    old = plan()
    edited = plan_from_timeline(timeline(clip("s001", 60), clip("s002", 60), clip("s003", 60)),
                                old, {"Aki"})

    diff = diff_plans(old, edited.plan, edited.source_ids)

    assert diff.changed == [] and diff.render_steps == 0


def test_moving_a_clip_renders_nothing_and_trimming_renders_only_its_clip() -> None:
    old = plan()
    edited = plan_from_timeline(timeline(clip("s002", 60), clip("s001", 45), clip("s003", 60)),
                                old, {"Aki"})

    diff = {c.shot_id: c for c in diff_plans(old, edited.plan, edited.source_ids).changes}

    assert (diff["s002"].status, diff["s002"].renders) == ("moved", [])
    assert (diff["s001"].status, diff["s001"].renders) == ("changed", ["clip"])
    assert edited.plan.duration_s == pytest.approx(165 / FPS)
    assert [s.start_s for s in edited.plan.shots] == [0, 2, 3.5]


def test_a_duplicated_clip_is_a_new_shot_and_a_removed_one_is_listed() -> None:
    old = plan()
    edited = plan_from_timeline(timeline(clip("s001", 60), clip("s001", 30), clip("s002", 60)),
                                old, {"Aki"})

    diff = {c.shot_id: c for c in diff_plans(old, edited.plan, edited.source_ids).changes}

    assert [s.id for s in edited.plan.shots] == ["s001", "s004", "s002"]
    assert (diff["s004"].status, diff["s004"].source_id) == ("added", "s001")
    assert diff["s004"].renders == ["image", "clip"]  # previz draws the shot id
    assert diff["s003"].status == "removed"


def test_metadata_edits_change_what_renders() -> None:
    old = plan()
    edited = plan_from_timeline(timeline(
        clip("s001", 60, image_prompt="a red umbrella"),
        clip("s002", 60, dialogue=[{"speaker": "Aki", "text": "Goodbye."}]),
        clip("s003", 60, camera_move="dolly_in")), old, {"Aki"})

    diff = {c.shot_id: c for c in diff_plans(old, edited.plan, edited.source_ids).changes}

    assert diff["s001"].renders == ["image", "clip"]
    assert diff["s002"].renders == ["speech"]
    assert diff["s003"].renders == ["clip"]
    assert edited.plan.shots[1].dialogue[0].text == "Goodbye."


def test_a_gap_lengthens_the_shot_before_it() -> None:
    gap = otio.schema.Gap(source_range=otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, FPS), otio.opentime.RationalTime(15, FPS)))
    edited = plan_from_timeline(timeline(clip("s001", 60), gap, clip("s003", 60)), plan(),
                                {"Aki"})

    assert [(s.id, s.end_s - s.start_s) for s in edited.plan.shots] == [("s001", 2.5),
                                                                         ("s003", 2.0)]
    assert any("gap" in note for note in edited.notes)


@pytest.mark.parametrize(("items", "words"), [
    ((clip("s009", 60),), "s009"),
    ((clip("s001", 60, shot_size="huge"),), "shot_size"),
    ((clip("s001", 5), clip("s002", 60)), "shorter than 0.5 s"),
    ((), "no clips"),
])
def test_a_timeline_that_cannot_be_a_plan_names_the_clip_and_rule(
        items: tuple[otio.schema.Clip, ...], words: str) -> None:
    with pytest.raises(KantokuError, match=words):
        plan_from_timeline(timeline(*items), plan(), {"Aki"})


def test_an_unknown_or_unreadable_timeline_file_is_refused(tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "cut.mov").write_bytes(b"\0")
    (tmp_path / "cut.otio").write_text("{not json")

    with pytest.raises(KantokuError, match="cut.mov"):
        read_editor_timeline(tmp_path / "cut.mov", FPS)
    with pytest.raises(KantokuError, match="cut.otio"):
        read_editor_timeline(tmp_path / "cut.otio", FPS)
    with pytest.raises(KantokuError, match="missing.otio"):
        read_editor_timeline(tmp_path / "missing.otio", FPS)
