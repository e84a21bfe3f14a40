"""Moving a cut: a shot's `end_s` is the next shot's `start_s`, so changing one moves both.

The new time snaps to the nearest beat of the song that keeps both shots at least
`MIN_SHOT_S` long (a person dragging a cut near a beat means the beat), then to the frame grid.
Without a song, or with `snap` off, only the frame grid applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kantoku.planner.planning.plan import MIN_SHOT_S

#: The shot fields that are cuts.
CUT_FIELDS = ("start_s", "end_s")


class CutRefused(Exception):
    """A cut that cannot move there; `problem` names the shot, the field and the rule."""

    def __init__(self, shot: str, field: str, rule: str) -> None:
        super().__init__(f"{shot}.{field}: {rule}")
        self.problem = {"shot": shot, "field": field, "rule": rule}


@dataclass
class MovedCut:
    shots: list[dict[str, Any]]
    #: {"field", "asked_s", "cut_s"} when the cut was moved onto a beat, else None.
    snapped: dict[str, Any] | None


def move_cut(shots: list[dict[str, Any]], shot_id: str, field: str, asked: Any, *, fps: int,
             beats_s: list[float], snap: bool) -> MovedCut:
    """The shots with the cut at `field` ("start_s" or "end_s") of `shot_id` moved to `asked`.

    Raises:
        CutRefused: the time is not a number, the first shot's start or the last shot's end
            was asked to move, or a shot would be shorter than MIN_SHOT_S.
    """
    index = next(i for i, shot in enumerate(shots) if shot["id"] == shot_id)
    if isinstance(asked, bool) or not isinstance(asked, int | float) or not math.isfinite(asked):
        raise CutRefused(shot_id, field, "send the time of the cut in seconds (a number)")
    if field == "start_s" and index == 0:
        instead = "; move the cut at its end_s instead" if len(shots) > 1 else ""
        raise CutRefused(shot_id, field, f"the first shot starts at 0 s{instead}")
    if field == "end_s" and index == len(shots) - 1:
        instead = "; move the cut at its start_s instead" if index > 0 else ""
        raise CutRefused(shot_id, field, f"the last shot ends where the video does "
                         f"({shots[index]['end_s']:.3f} s){instead}")
    left, right = (index - 1, index) if field == "start_s" else (index, index + 1)
    lowest = shots[left]["start_s"] + MIN_SHOT_S
    highest = shots[right]["end_s"] - MIN_SHOT_S
    asked = float(asked)
    if not lowest - 1e-6 <= asked <= highest + 1e-6:
        short = shots[left] if asked < lowest else shots[right]
        side = "end_s" if short is shots[left] else "start_s"
        raise CutRefused(short["id"], side, f"a cut at {asked:.3f} s leaves {short['id']} "
                         f"shorter than {MIN_SHOT_S} s; move it between {lowest:.3f} and "
                         f"{highest:.3f} s")
    cut, snapped = asked, None
    beat = _nearest_beat(asked, beats_s, lowest, highest) if snap else None
    if beat is not None:
        cut = beat
    cut = _on_grid(cut, fps, lowest, highest)
    if beat is not None:
        snapped = {"field": field, "asked_s": asked, "cut_s": cut}
    moved = [dict(shot) for shot in shots]
    moved[left]["end_s"] = cut
    moved[right]["start_s"] = cut
    for shot in (moved[left], moved[right]):  # a person set the cut, not the planner
        shot["sources"] = {k: v for k, v in shot.get("sources", {}).items()
                           if k not in CUT_FIELDS}
    return MovedCut(moved, snapped)


def _nearest_beat(asked: float, beats_s: list[float], lowest: float, highest: float
                  ) -> float | None:
    """The beat nearest `asked` that keeps both shots long enough; None when none does."""
    usable = [b for b in beats_s if lowest - 1e-6 <= b <= highest + 1e-6]
    return min(usable, key=lambda b: abs(b - asked)) if usable else None


def _on_grid(time: float, fps: int, lowest: float, highest: float) -> float:
    """`time` on the frame grid (shots are whole frames), kept inside [lowest, highest]."""
    frame = round(time * fps)
    if frame / fps < lowest - 1e-6:
        frame += 1
    elif frame / fps > highest + 1e-6:
        frame -= 1
    return frame / fps
