"""The shot plan (`plan.json`): contiguous shots covering the whole running time.

Shot boundaries sit on the frame grid (a whole number of frames at the plan's fps), so
concatenating the shots in order is frame-accurate.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ShotSize = Literal["extreme_wide", "wide", "full", "medium", "medium_close_up", "close_up",
                   "extreme_close_up"]
CameraAngle = Literal["eye_level", "high", "low", "birds_eye", "dutch"]
CameraMove = Literal["static", "pan_left", "pan_right", "tilt_up", "tilt_down", "dolly_in",
                     "dolly_out", "zoom_in", "zoom_out", "truck_left", "truck_right"]
TimeOfDay = Literal["dawn", "day", "golden_hour", "dusk", "night"]
Transition = Literal["cut", "fade_in", "fade_out"]
Source = Literal["llm", "rules", "llm+rules"]

SHOT_SIZES: tuple[str, ...] = ShotSize.__args__  # type: ignore[attr-defined]
CAMERA_ANGLES: tuple[str, ...] = CameraAngle.__args__  # type: ignore[attr-defined]
CAMERA_MOVES: tuple[str, ...] = CameraMove.__args__  # type: ignore[attr-defined]
TIMES_OF_DAY: tuple[str, ...] = TimeOfDay.__args__  # type: ignore[attr-defined]

MAX_SHOTS = 120
#: Shortest shot, in seconds: under this a cut reads as a glitch.
MIN_SHOT_S = 0.5
#: Longest shot, in seconds.
MAX_SHOT_S = 20.0


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Dialogue(Strict):
    speaker: str
    text: str = Field(min_length=1, max_length=500)
    voice: str = ""


class Shot(Strict):
    id: str = Field(pattern=r"^s\d{3}$")
    start_s: float = Field(ge=0)
    end_s: float = Field(gt=0)
    section: str = ""
    description: str = ""
    shot_size: ShotSize = "medium"
    camera_angle: CameraAngle = "eye_level"
    camera_move: CameraMove = "static"
    characters: list[str] = Field(default_factory=list)
    location: str = ""
    time_of_day: TimeOfDay = "day"
    dialogue: list[Dialogue] = Field(default_factory=list)
    transition: Transition = "cut"
    image_prompt: str = Field(default="", max_length=2000)
    seed: int = Field(default=0, ge=0, lt=2**63)
    #: Lyric lines sung during the shot (music videos).
    lyrics: list[str] = Field(default_factory=list)
    #: Where each field came from, for LLM plans: "llm", "rules" (the heuristic planner's
    #: value for this shot) or "llm+rules" (the LLM's, completed by the rules). Empty for
    #: plans made by the rules alone.
    sources: dict[str, Source] = Field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class Plan(Strict):
    title: str
    duration_s: float = Field(gt=0)
    width_px: int = Field(gt=0)
    height_px: int = Field(gt=0)
    fps: int = Field(gt=0)
    planner: str = "heuristic"
    shots: list[Shot]
    #: Warnings and repairs a person reviewing the plan should see.
    notes: list[str] = Field(default_factory=list)

    def frame(self, t: float) -> int:
        return round(t * self.fps)

    def frames(self, shot: Shot) -> int:
        return self.frame(shot.end_s) - self.frame(shot.start_s)

    def shot(self, shot_id: str) -> Shot:
        return next(s for s in self.shots if s.id == shot_id)


def plan_problems(plan: Plan, characters: set[str]) -> list[str]:
    """Everything that makes `plan` unrenderable, each naming the shot and the rule."""
    problems = []
    if not plan.shots:
        return ["shots: the plan has no shots"]
    if len(plan.shots) > MAX_SHOTS:
        problems.append(f"shots: {len(plan.shots)} shots is over the limit of {MAX_SHOTS}")
    ids = [s.id for s in plan.shots]
    if len(set(ids)) != len(ids):
        problems.append("shots: shot ids must be unique")
    expected = 0.0
    for index, shot in enumerate(plan.shots):
        where = f"shots[{index}] ({shot.id})"
        if abs(shot.start_s - expected) > 1e-3:
            problems.append(f"{where}: starts at {shot.start_s:.3f} s but the previous shot ends "
                            f"at {expected:.3f} s; shots must be contiguous")
        if shot.end_s <= shot.start_s:
            problems.append(f"{where}: ends before it starts")
        elif plan.frames(shot) < 1 or shot.duration_s < MIN_SHOT_S - 1e-3:
            problems.append(f"{where}: {shot.duration_s:.3f} s is shorter than {MIN_SHOT_S} s")
        elif shot.duration_s > MAX_SHOT_S + 1e-3:
            problems.append(f"{where}: {shot.duration_s:.3f} s is longer than {MAX_SHOT_S} s")
        for name in shot.characters:
            if name not in characters:
                problems.append(f"{where}.characters: {name!r} is not in the brief")
        for line in shot.dialogue:
            if line.speaker not in characters:
                problems.append(f"{where}.dialogue: speaker {line.speaker!r} is not in the brief")
        expected = shot.end_s
    if abs(expected - plan.duration_s) > 1e-3:
        problems.append(f"shots: they end at {expected:.3f} s but the video lasts "
                        f"{plan.duration_s:.3f} s; the last shot must end at the end")
    return problems
