"""Moving a cut in the studio: the neighbour follows, the beat wins, the 0.5 s rule holds."""

from __future__ import annotations

import pytest

from kantoku.agents.studio.cuts import CutRefused, move_cut

SHOTS = [{"id": "s001", "start_s": 0.0, "end_s": 2.0, "sources": {"end_s": "llm"}},
         {"id": "s002", "start_s": 2.0, "end_s": 4.0},
         {"id": "s003", "start_s": 4.0, "end_s": 6.0}]
BEATS = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5]


def test_the_cut_snaps_to_the_nearest_beat_and_the_next_shot_follows() -> None:
    moved = move_cut(SHOTS, "s001", "end_s", 2.62, fps=30, beats_s=BEATS, snap=True)
    assert moved.snapped == {"field": "end_s", "asked_s": 2.62, "cut_s": 2.5}
    assert [(s["start_s"], s["end_s"]) for s in moved.shots] == [(0, 2.5), (2.5, 4), (4, 6)]
    assert moved.shots[0]["sources"] == {}
    assert SHOTS[0]["end_s"] == 2.0  # the plan it came from is left alone


def test_a_start_moves_the_previous_shots_end_and_snap_off_keeps_the_frame_grid() -> None:
    moved = move_cut(SHOTS, "s003", "start_s", 3.71, fps=24, beats_s=BEATS, snap=False)
    assert moved.snapped is None
    assert moved.shots[1]["end_s"] == moved.shots[2]["start_s"] == round(3.71 * 24) / 24


def test_the_nearest_beat_that_keeps_both_shots_long_enough_wins() -> None:
    # 0.3 s is nearer 0.52 s, but would leave s001 0.3 s long.
    moved = move_cut(SHOTS, "s001", "end_s", 0.52, fps=30, beats_s=[0.3, 0.9], snap=True)
    assert moved.snapped is not None and moved.snapped["cut_s"] == 0.9
    # No usable beat: the time asked, on the frame grid.
    moved = move_cut(SHOTS, "s001", "end_s", 0.52, fps=30, beats_s=[0.3], snap=True)
    assert moved.snapped is None and moved.shots[0]["end_s"] == round(0.52 * 30) / 30


@pytest.mark.parametrize(("shot", "field", "asked", "named", "words"), [
    ("s001", "start_s", 0.5, ("s001", "start_s"), "first shot"),
    ("s003", "end_s", 5.0, ("s003", "end_s"), "last shot"),
    ("s001", "end_s", 0.2, ("s001", "end_s"), "shorter than 0.5 s"),
    ("s001", "end_s", 3.8, ("s002", "start_s"), "shorter than 0.5 s"),
    ("s002", "start_s", "soon", ("s002", "start_s"), "seconds"),
    ("s002", "start_s", float("nan"), ("s002", "start_s"), "seconds"),
])
def test_a_cut_that_breaks_a_rule_names_the_shot_field_and_rule(
        shot: str, field: str, asked: object, named: tuple[str, str], words: str) -> None:
    with pytest.raises(CutRefused) as refused:
        move_cut(SHOTS, shot, field, asked, fps=30, beats_s=BEATS, snap=True)
    problem = refused.value.problem
    assert (problem["shot"], problem["field"]) == named and words in problem["rule"]
