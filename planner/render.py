"""Render one shot on the services: keyframe image → video clip; dialogue → speech → motion.

Every step goes through the render cache under its idempotency key, and appends a ledger record
(with `cache_hit`), so a resumed or repeated job never renders a finished step again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from kantoku.planner.cache import idempotency_key, message_dict
from kantoku.planner.context import JobContext
from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.plan import Dialogue, Plan, Shot
from kantoku.services._core.assets import AssetStore
from kantoku.services._core.errors import KantokuError
from kantoku.services._core.generation import allowed_frame_count
from kantoku.services._core.inputs import image_bytes
from kantoku.services._core.registry import ModelRegistry
from kantoku.services.image.client import generate_image
from kantoku.services.tts.client import synthesize
from kantoku.services.video.client import generate_video
from kantoku.v1 import common_pb2, image_pb2, motion_pb2, tts_pb2, video_pb2

#: Viseme frames per second for dialogue motion (matches the video frame rate by default).
MOTION_FPS = 30


async def cached_step(ctx: JobContext, kind: str, shot_id: str, model_id: str, request: Message,
                      types: Mapping[str, type[Message]],
                      run: Callable[[], Awaitable[dict[str, Message]]],
                      record_of: Callable[[dict[str, Message]], common_pb2.ProvenanceRecord]
                      ) -> dict[str, Message]:
    """Run a render step once: a cache hit returns the earlier result and says so in the ledger."""
    key = idempotency_key(kind, model_id, request)
    ctx.emit({"event": "step", "shot_id": shot_id, "step": kind, "kind": kind, "state": "start"})
    quarantined: list[str] = []
    parts = ctx.cache.get(key, types, quarantined)
    hit = parts is not None
    if parts is None:
        parts = await run()
        ctx.cache.put(key, parts)
    record = record_of(parts)
    ctx.ledger.append(ctx.job_id, kind, shot_id=shot_id, cache_hit=hit, record=message_dict(record),
                      data={"idempotency_key": key,
                            **({"quarantined": quarantined} if quarantined else {})})
    ctx.emit({"event": "step", "shot_id": shot_id, "step": kind, "kind": kind, "state": "done",
              "cache_hit": hit, **step_provenance(record)})
    return parts


def step_provenance(record: common_pb2.ProvenanceRecord) -> dict[str, Any]:
    """What a finished step's event says of how it was made: the console, the studio's event
    stream and the ledger (which keeps the whole record) tell it from this one record.

    `weights_sha256` is the model's weights file's sha256; for a model of several files, the
    sha256 of their sorted `sha256  path` lines (what `sha256sum` prints), so one value names
    the exact set; None for a renderer with no weights (previz, animatic).
    """
    weights = sorted((w.sha256, w.path) for w in record.model.weights)
    if not weights:
        digest = None
    elif len(weights) == 1:
        digest = weights[0][0]
    else:
        manifest = "".join(f"{sha}  {path}\n" for sha, path in weights)
        digest = hashlib.sha256(manifest.encode()).hexdigest()
    return {"step_id": record.step_id, "model": record.model.model_id,
            "model_version": record.model.version, "weights_sha256": digest,
            "license": record.model.rights.license, "seed": record.seed}


def image_request(shot: Shot, plan: Plan, brief: Brief,
                  references: list[image_pb2.ReferenceImage]) -> image_pb2.GenerateImageRequest:
    characters = [image_pb2.CharacterSpec(name=c.name, description=c.description)
                  for c in brief.characters if c.name in shot.characters]
    spec = image_pb2.ShotSpec(
        shot_size=image_pb2.ShotSize.Value(f"SHOT_SIZE_{shot.shot_size.upper()}"),
        camera_angle=image_pb2.CameraAngle.Value(f"CAMERA_ANGLE_{shot.camera_angle.upper()}"),
        characters=characters, location=shot.location,
        time_of_day=image_pb2.TimeOfDay.Value(f"TIME_OF_DAY_{shot.time_of_day.upper()}"),
        mood=brief.mood, caption=f"{shot.id} · {shot.description}"[:200])
    return image_pb2.GenerateImageRequest(
        prompt=shot.image_prompt or shot.description, width_px=plan.width_px,
        height_px=plan.height_px, seed=shot.seed, model_id=brief.models.image, shot=spec,
        references=[r for r in references if r.character_name in shot.characters])


async def render_image(ctx: JobContext, shot: Shot, plan: Plan, brief: Brief,
                       notes: list[str]) -> image_pb2.ImageResult:
    request = image_request(shot, plan, brief, ctx.references)

    async def run() -> dict[str, Message]:
        try:
            result = await generate_image(ctx.client, request, ctx.progress(shot.id, "image"))
        except KantokuError as exc:
            if exc.reason != "REFERENCES_UNSUPPORTED" or not request.references:
                raise
            notes.append(f"{shot.id}: {brief.models.image} takes no reference images; the "
                         "characters' references were not used for this shot")
            request.ClearField("references")
            result = await generate_image(ctx.client, request, ctx.progress(shot.id, "image"))
        return {"result": result}

    parts = await cached_step(ctx, "image", shot.id, brief.models.image, request,
                              {"result": image_pb2.ImageResult}, run,
                              lambda p: p["result"].provenance)  # type: ignore[attr-defined]
    return parts["result"]  # type: ignore[return-value]


def clip_frames(model_id: str, frames: int) -> int:
    """Frames to ask the video model for: `frames`, or the next count the model can make."""
    try:
        family = ModelRegistry().get(model_id).family
    except KantokuError:
        return frames  # the service names the unknown model
    return allowed_frame_count(family, frames)


async def render_clip(ctx: JobContext, shot: Shot, plan: Plan, brief: Brief,
                      image: image_pb2.ImageResult, notes: list[str]) -> video_pb2.VideoResult:
    frames = plan.frames(shot)
    asked = clip_frames(brief.models.video, frames)
    if asked != frames:
        notes.append(f"{shot.id}: {brief.models.video} cannot make {frames} frames; rendered "
                     f"{asked} and the assembly keeps the first {frames}")
    request = video_pb2.GenerateVideoRequest(
        keyframe=image.image, layers=image.layers, prompt=shot.image_prompt or shot.description,
        camera_move=video_pb2.CameraMove.Value(f"CAMERA_MOVE_{shot.camera_move.upper()}"),
        duration_s=asked / plan.fps, fps=plan.fps, width_px=plan.width_px,
        height_px=plan.height_px, seed=shot.seed, model_id=brief.models.video)

    async def run() -> dict[str, Message]:
        return {"result": await generate_video(ctx.client, request,
                                               ctx.progress(shot.id, "video"))}

    parts = await cached_step(ctx, "video", shot.id, brief.models.video, request,
                              {"result": video_pb2.VideoResult}, run,
                              lambda p: p["result"].provenance)  # type: ignore[attr-defined]
    return parts["result"]  # type: ignore[return-value]


async def render_line(ctx: JobContext, shot: Shot, brief: Brief, line: Dialogue
                      ) -> dict[str, Any]:
    """Speech for one dialogue line, then visemes and gestures for it."""
    speech_request = tts_pb2.SynthesizeSpeechRequest(text=line.text, voice_id=line.voice,
                                                     language_code=brief.language[:2])

    async def speak() -> dict[str, Message]:
        speech = await synthesize(ctx.client, speech_request)
        track = motion_pb2.PhonemeTrack(
            language_code=speech.header.language_code, duration_s=speech.duration_s,
            phonemes=[p for c in speech.chunks for p in c.phonemes],
            words=[w for c in speech.chunks for w in c.words])
        return {"track": track, "provenance": speech.provenance}

    spoken = await cached_step(ctx, "tts", shot.id, line.voice, speech_request,
                               {"track": motion_pb2.PhonemeTrack,
                                "provenance": common_pb2.ProvenanceRecord}, speak,
                               lambda p: p["provenance"])  # type: ignore[arg-type,return-value]
    wav: common_pb2.AssetRef = spoken["provenance"].output  # type: ignore[attr-defined]
    motion_request = motion_pb2.AnimateSpeechRequest(
        phonemes=spoken["track"], fps=MOTION_FPS, seed=shot.seed, inputs=[wav])

    async def animate() -> dict[str, Message]:
        response = await ctx.client.animate(motion_request)
        document = ctx.store.put_bytes(json_format.MessageToJson(response).encode(),
                                       "application/json")
        return {"response": response, "document": document}

    moved = await cached_step(ctx, "motion", shot.id, "motion", motion_request,
                              {"response": motion_pb2.AnimateSpeechResponse,
                               "document": common_pb2.AssetRef}, animate,
                              lambda p: p["response"].provenance)  # type: ignore[attr-defined]
    return {"speaker": line.speaker, "text": line.text, "voice": line.voice,
            "start_s": shot.start_s, "duration_s": spoken["track"].duration_s,  # type: ignore
            "wav": message_dict(wav), "motion": message_dict(moved["document"]),
            "step_ids": [spoken["provenance"].step_id,  # type: ignore[attr-defined]
                         moved["response"].provenance.step_id]}  # type: ignore[attr-defined]


async def render_shot(ctx: JobContext, shot: Shot, plan: Plan, brief: Brief) -> dict[str, Any]:
    """All of one shot's assets, as a JSON-ready dict for the graph state."""

    notes: list[str] = []

    async def picture() -> tuple[image_pb2.ImageResult, video_pb2.VideoResult]:
        image = await render_image(ctx, shot, plan, brief, notes)
        return image, await render_clip(ctx, shot, plan, brief, image, notes)

    async def voices() -> list[dict[str, Any]]:
        return [await render_line(ctx, shot, brief, line) for line in shot.dialogue]

    (image, clip), lines = await asyncio.gather(picture(), voices())
    return {"shot_id": shot.id, "frames": plan.frames(shot), "image": message_dict(image.image),
            "clip": message_dict(clip.video), "clip_frames": clip.frame_count, "dialogue": lines,
            "step_ids": [image.provenance.step_id, clip.provenance.step_id,
                         *(i for line in lines for i in line["step_ids"])], "notes": notes}


def reference_images(brief: Brief, store: AssetStore) -> list[image_pb2.ReferenceImage]:
    """Characters' reference pictures, put into the store with their holder and license."""
    references = []
    for index, character in enumerate(brief.characters):
        ref = character.reference
        if ref is None:
            continue
        asset = store.put_bytes(*image_bytes(ref.path, f"characters[{index}].reference.path"))
        asset.rights.CopyFrom(common_pb2.RightsInfo(license=ref.license,
                                                    rights_holder=ref.holder))
        references.append(image_pb2.ReferenceImage(image=asset, character_name=character.name))
    return references
