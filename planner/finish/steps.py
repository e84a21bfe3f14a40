"""The job's last three steps: assemble the video, sign every output, write the reports.

Output folder:
    video.mp4        the finished video (C2PA: composite; every clip, dialogue line and the song
                     as an ingredient)
    shots/           each shot's keyframe, clip (its keyframe as an ingredient) and dialogue
                     audio, each C2PA-signed
    plan.json        the plan that was rendered
    timeline.png     shots against the waveform, beats, sections and lyrics
    lyrics.srt/.vtt  the lyrics at their times (music videos)
    timeline.otio    shots, song, dialogue and lyric markers; media inside this folder
    song.EXT         a copy of the song, for the timeline (music videos)
    storyboard.png   contact sheet of the keyframes
    ledger.jsonl     the job's hash-chained ledger
    rights.json/.html  verdict, per-asset table, attribution shares
    record.json      written last: every file's sha256 and the ledger's head, signed (JWS)
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import soundfile
from google.protobuf import json_format, struct_pb2

from kantoku.planner.cache import idempotency_key, message_dict
from kantoku.planner.context import JobContext
from kantoku.planner.finish.assemble import ClipInput, DialogueInput, assemble_video
from kantoku.planner.finish.loudness import DEFAULT_TARGET_LUFS, LoudnessTarget
from kantoku.planner.finish.storyboard import StoryboardFrame, make_storyboard
from kantoku.planner.finish.subtitle_track import SubtitleTrack
from kantoku.planner.finish.subtitles import SubtitleBurner
from kantoku.planner.finish.timeline import TimelineLine, TimelineShot, write_timeline
from kantoku.planner.finish.timeline_picture import draw_timeline
from kantoku.planner.music import steps as music
from kantoku.planner.music.lyrics import write_srt, write_vtt
from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.plan import Plan
from kantoku.planner.rights.c2pa_sign import (
    Ingredient,
    made_by_trained_model,
    sign_file,
    signing_credentials,
)
from kantoku.planner.rights.ledger import chain_head
from kantoku.planner.rights.policy import PolicyReport
from kantoku.planner.rights.record import write_record
from kantoku.planner.rights.report import build_report, write_report
from kantoku.planner.state import JobState
from kantoku.services._core.assets import sha256_file
from kantoku.services._core.files import (
    PARTIAL_PATTERN,
    remove_leftovers,
    scratch_folder,
    write_atomic,
    write_text_atomic,
)
from kantoku.services._core.registry import ModelRegistry
from kantoku.services._core.settings import core_settings
from kantoku.v1 import common_pb2

SHOTS_DIR = "shots"
#: Drafts of the step that runs (assembly, storyboard, timeline picture); gone when it ends.
WORK_DIR = ".work"
#: Earlier versions moved aside by `kantoku edit`, each a finished job folder of its own.
VERSIONS_DIR = "versions"
#: The temporary copy c2pa_sign.sign_file writes before renaming it into place (glob pattern).
SIGNING_PATTERN = ".*.signing.*"
#: `lyrics_mode`: lyrics burned into the picture, or carried as a subtitle track in video.mp4.
LYRICS_BURN, LYRICS_SOFT = "burn", "soft"
LYRICS_MODES = (LYRICS_BURN, LYRICS_SOFT)


def thread_progress(ctx: JobContext) -> Any:
    """A progress callback safe to call from a worker thread: events go out on the loop."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()

    def report(done: int, total: int) -> None:
        loop.call_soon_threadsafe(ctx.emit, {"event": "assemble_progress", "done": done,
                                             "total": total}, context=context)
    return report


async def assemble_job(state: JobState, ctx: JobContext) -> dict[str, Any]:
    """Concatenate the shot clips with the song and dialogue; cached like a render step.

    The lyrics are burned into the picture, or muxed as a subtitle track with `lyrics_mode`
    "soft"; the soundtrack is normalised to the job's `loudness_lufs` (default -14 LUFS).
    """
    plan, brief = Plan.model_validate(state["plan"]), Brief.model_validate(state["brief"])
    results = state["shots"]
    clips = [ClipInput(ctx.store.checked_path(results[s.id]["clip"]["uri"]), plan.frames(s), s.id)
             for s in plan.shots]
    spoken = [line for s in plan.shots for line in results[s.id]["dialogue"]]
    lines = [DialogueInput(ctx.store.checked_path(line["wav"]["uri"]), line["start_s"])
             for line in spoken]
    song = Path(state["song"]) if state.get("song") else None
    lyrics = music.lyric_lines(state.get("song_analysis") or {})
    mode = state.get("lyrics_mode", LYRICS_BURN)
    loudness = LoudnessTarget(state.get("loudness_lufs", DEFAULT_TARGET_LUFS))
    inputs = {"clips": [(results[s.id]["clip"]["sha256"], plan.frames(s)) for s in plan.shots],
              "dialogue": [(line["wav"]["sha256"], line["start_s"]) for line in spoken],
              "song": sha256_file(song) if song else None, "fps": plan.fps,
              "size": [plan.width_px, plan.height_px],
              "subtitles": [asdict(line) for line in lyrics], "lyrics_mode": mode,
              "language": brief.language, "loudness": asdict(loudness),
              # What the assembler writes: videos cached before it tagged BT.709 are made again.
              "colour": "bt709"}
    key = idempotency_key("assemble", "kantoku-assemble", inputs)
    quarantined: list[str] = []
    cached = ctx.cache.get(key, {"video": common_pb2.AssetRef, "report": struct_pb2.Struct},
                           quarantined)
    if cached is None:
        burn = bool(lyrics) and mode == LYRICS_BURN
        burner = SubtitleBurner(lyrics, fps=plan.fps, width_px=plan.width_px,
                                height_px=plan.height_px) if burn else None
        with scratch_folder(ctx.out_dir / WORK_DIR) as work:
            report = await asyncio.to_thread(
                assemble_video, clips, fps=plan.fps, width_px=plan.width_px,
                height_px=plan.height_px, out=work / "assembled.mp4", song=song,
                dialogue=lines, frame_hook=burner, loudness=loudness,
                on_progress=thread_progress(ctx),
                subtitles=SubtitleTrack(lyrics, brief.language) if lyrics and not burn else None)
            video = ctx.store.put_file(report.path, "video/mp4")
        facts = {"notes": [*(burner.warnings if burner else []), *report.notes],
                 "frames": report.frames, "lyrics_mode": mode,
                 "loudness": report.loudness.as_dict() if report.loudness else None}
        summary = struct_pb2.Struct()
        summary.update(facts)
        ctx.cache.put(key, {"video": video, "report": summary})
    else:
        video = cached["video"]  # type: ignore[assignment]
        facts = json_format.MessageToDict(cached["report"])
        facts["frames"] = int(facts["frames"])  # a Struct keeps numbers as floats
    ctx.ledger.append(ctx.job_id, "assemble", cache_hit=cached is not None,
                      data={"idempotency_key": key, "output": message_dict(video), **facts,
                            **({"quarantined": quarantined} if quarantined else {})})
    return {"video": message_dict(video), "notes": facts["notes"]}


def shot_files(plan: Plan, results: dict[str, Any], out_dir: Path
               ) -> list[tuple[str, dict[str, Any], Path, str]]:
    """(shot id, asset, destination, step id) for every asset a shot produced."""
    shots = out_dir / SHOTS_DIR
    files = []
    for shot in plan.shots:
        result = results[shot.id]
        image_step, clip_step = result["step_ids"][:2]
        files.append((shot.id, result["image"], shots / f"{shot.id}.png", image_step))
        files.append((shot.id, result["clip"], shots / f"{shot.id}.mp4", clip_step))
        for index, line in enumerate(result["dialogue"], start=1):
            files.append((shot.id, line["wav"], shots / f"{shot.id}.line{index}.wav",
                          line["step_ids"][0]))
    return files


def dialogue_lines(plan: Plan, results: dict[str, Any], out_dir: Path) -> list[TimelineLine]:
    """Every spoken line's signed WAV in shots/, with its start time, speaker and text."""
    lines = []
    for shot in plan.shots:
        for index, (line, spoken) in enumerate(zip(shot.dialogue, results[shot.id]["dialogue"],
                                                   strict=True), start=1):
            lines.append(TimelineLine(shot.id, out_dir / SHOTS_DIR / f"{shot.id}.line{index}.wav",
                                      float(spoken["start_s"]), line.speaker, line.text))
    return lines


def song_in_folder(song: Path, out_dir: Path) -> Path:
    """A copy of the song inside the job folder (`song.EXT`), so the folder handed to an editor
    carries its own audio. A copy, not a hard link: an edit to one must not reach the other."""
    target = out_dir / f"song{song.suffix.lower()}"
    if target.exists() and sha256_file(target) == sha256_file(song):
        return target
    with open(song, "rb") as source:
        write_atomic(target, lambda handle: shutil.copyfileobj(source, handle))
    return target


def clear_leftovers(out_dir: Path) -> list[Path]:
    """Remove what a killed run left in a job's folder: drafts, partial and half-signed files.

    Called when a run starts, under the job's lock, so every step can run again from any kill
    point; archived versions (`versions/`) are left as they are.
    """
    removed = [out_dir / WORK_DIR] if (out_dir / WORK_DIR).is_dir() else []
    shutil.rmtree(out_dir / WORK_DIR, ignore_errors=True)
    return removed + remove_leftovers(out_dir, (PARTIAL_PATTERN, SIGNING_PATTERN),
                                      skip=(VERSIONS_DIR,))


async def sign_job(state: JobState, ctx: JobContext) -> dict[str, Any]:
    """C2PA-sign every shot asset into shots/, then the video with its parts as ingredients.

    Each file's digital source type comes from its step's provenance record and the model
    registry (trained or procedural model); the video lists every clip, every dialogue line and
    the song, which is read, never rewritten.
    """
    plan, brief = Plan.model_validate(state["plan"]), Brief.model_validate(state["brief"])
    credentials = signing_credentials(core_settings().home_dir)
    registry = ModelRegistry()
    entries = ctx.ledger.entries(ctx.job_id)
    records = step_records(entries)
    files = shot_files(plan, state["shots"], ctx.out_dir)
    (ctx.out_dir / SHOTS_DIR).mkdir(parents=True, exist_ok=True)
    signed: dict[str, str] = {}
    for shot_id, ref, dst, step_id in files:  # per shot: keyframe, then clip, then lines
        ctx.emit({"event": "sign", "file": dst.name})
        record = records.get(step_id)
        await asyncio.to_thread(
            sign_file, ctx.store.checked_path(ref["uri"]), dst, title=f"{brief.title} · {shot_id}",
            generated=True, trained=made_by_trained_model(record, registry),
            assertions=_provenance_summary(record), ingredients=_made_from(dst),
            credentials=credentials)
        signed[f"{SHOTS_DIR}/{dst.name}"] = sha256_file(dst)
    song = Path(state["song"]) if state.get("song") else None
    parts = [Ingredient(dst) for *_, dst, _ in files if dst.suffix in (".mp4", ".wav")]
    summary: dict[str, Any] = {"job_id": ctx.job_id, "shots": len(plan.shots),
                               "planner": plan.planner}
    if song is not None:
        # The holder's file, unsigned as a rule: c2pa records it by title and format, and the
        # sha256 here ties the manifest to those exact bytes.
        rights = brief.song
        title = rights.title if rights and rights.title else song.name
        parts.append(Ingredient(song, title=title))
        summary["song"] = {"title": title, "sha256": sha256_file(song),
                           **({"holder": rights.holder, "license": rights.license} if rights
                              else {})}
    # The ledger's head at signing time anchors the chain: `rights verify` checks that
    # ledger.jsonl still contains it, so a truncated or rewritten chain is found.
    summary["ledger_head"] = chain_head(entries)
    video = ctx.out_dir / "video.mp4"
    # No model of its own (trained=False): the label is composite with trained media exactly
    # when a part's manifest says a trained model made it.
    await asyncio.to_thread(
        sign_file, ctx.store.checked_path(state["assembly"]["video"]["uri"]), video,
        title=brief.title, generated=False, trained=False, assertions=summary,
        ingredients=parts, credentials=credentials)
    signed["video.mp4"] = sha256_file(video)
    ctx.ledger.append(ctx.job_id, "sign", data={"files": signed})
    return {"files": signed}


def _made_from(dst: Path) -> list[Ingredient]:
    """What a shot file was made from: a clip, from its keyframe (signed just before it).

    The keyframe is ``inputTo`` its clip, the C2PA relationship for an ingredient "used as input
    to a computational process, such as an AI/ML model, that led to the creation" of the asset:
    the image-to-video model (or the animatic's camera) takes the keyframe and creates the clip.
    Not ``parentOf``, which says the clip is an edit or rendition of the picture and goes with a
    ``c2pa.opened`` action, while a clip is ``c2pa.created``; not ``componentOf``, which says the
    picture was placed into the clip as one of its parts (``c2pa.placed``).
    """
    if dst.suffix != ".mp4":
        return []
    return [Ingredient(dst.with_suffix(".png"), relationship="inputTo")]


def timeline_picture(plan: Plan, song: Path | None, song_doc: dict[str, Any], out: Path) -> None:
    """timeline.png: shots against the waveform, beats, sections and lyrics."""
    analysis = music.analysis_of(song_doc)
    audio, rate = (None, 1)
    if song is not None:
        samples, rate = soundfile.read(song, dtype="float32", always_2d=True)
        audio = samples.mean(axis=1)
    draw_timeline(
        plan, out, audio=audio, sample_rate_hz=rate,
        beats_s=analysis.beats_s if analysis else [],
        downbeats_s=analysis.downbeats_s if analysis else [],
        sections=[(s.label, s.start_s, s.end_s) for s in analysis.sections] if analysis else [],
        lyrics=[(line.start_s, line.end_s, line.text) for line in music.lyric_lines(song_doc)])


def _provenance_summary(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """What goes into each file's `dev.kantoku.provenance` assertion."""
    if not record:
        return None
    model = record.get("model", {})
    return {"step_id": record.get("step_id"), "kind": record.get("kind"),
            "model_id": model.get("model_id"), "model_version": model.get("version"),
            "weights": [{"path": w.get("path"), "sha256": w.get("sha256")}
                        for w in model.get("weights", [])],
            "license": model.get("rights", {}).get("license"),
            "rights_holder": model.get("rights", {}).get("rights_holder"),
            "adapters": record.get("adapters", []),
            "inputs": [{"sha256": i.get("sha256"), "rights": i.get("rights", {})}
                       for i in record.get("inputs", [])],
            "seed": record.get("seed"), "output_sha256": record.get("output", {}).get("sha256")}


def step_records(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Step id -> ProvenanceRecord, for the ledger entries that carry one."""
    return {e["record"]["step_id"]: e["record"] for e in entries
            if e.get("record") and e["record"].get("step_id")}


def _keyframes_trained(plan: Plan, results: dict[str, Any], ctx: JobContext) -> bool:
    records = step_records(ctx.ledger.entries(ctx.job_id))
    registry = ModelRegistry()
    return any(made_by_trained_model(records.get(results[shot.id]["step_ids"][0]), registry)
               for shot in plan.shots)


async def report_job(state: JobState, ctx: JobContext) -> dict[str, Any]:
    """plan.json, timeline.otio, storyboard.png, ledger.jsonl, rights.json/html, then the record.

    A job killed before the record is written has no record.json; resuming runs this step again
    and writes it.
    """
    plan, brief = Plan.model_validate(state["plan"]), Brief.model_validate(state["brief"])
    out = ctx.out_dir
    write_text_atomic(out / "plan.json", json.dumps(state["plan"], indent=2, ensure_ascii=False))
    shots_dir = out / SHOTS_DIR
    signed = state["signed"]["files"]
    timeline = [TimelineShot(s.id, shots_dir / f"{s.id}.mp4",
                             signed[f"{SHOTS_DIR}/{s.id}.mp4"], state["shots"][s.id]["step_ids"])
                for s in plan.shots]
    song = Path(state["song"]) if state.get("song") else None
    song_copy = await asyncio.to_thread(song_in_folder, song, out) if song else None
    song_doc = state.get("song_analysis") or {}
    lyrics = music.lyric_lines(song_doc)
    await asyncio.to_thread(write_timeline, plan, timeline, out / "timeline.otio",
                            song=song_copy, video=out / "video.mp4",
                            dialogue=dialogue_lines(plan, state["shots"], out), lyrics=lyrics)
    frames = [StoryboardFrame(s.id, s.start_s, s.end_s, shots_dir / f"{s.id}.png",
                              s.description) for s in plan.shots]
    if lyrics:
        write_srt(lyrics, out / "lyrics.srt")
        write_vtt(lyrics, out / "lyrics.vtt")
    # The storyboard shows the keyframes (trained when a keyframe's model was); the timeline
    # picture is drawn by kantoku from the plan and the waveform.
    keyframes_trained = _keyframes_trained(plan, state["shots"], ctx)
    with scratch_folder(out / WORK_DIR) as drafts:
        await asyncio.to_thread(make_storyboard, frames, drafts / "storyboard.png",
                                title=plan.title)
        await asyncio.to_thread(timeline_picture, plan, song, song_doc, drafts / "timeline.png")
        for name, what, trained in (("storyboard.png", "storyboard", keyframes_trained),
                                    ("timeline.png", "timeline", False)):
            await asyncio.to_thread(sign_file, drafts / name, out / name,
                                    title=f"{plan.title} · {what}", generated=False,
                                    trained=trained,
                                    credentials=signing_credentials(core_settings().home_dir))
    entries = ctx.ledger.entries(ctx.job_id)
    report = build_report(ctx.job_id, brief, PolicyReport.model_validate(state["policy"]),
                          entries, plan=plan)
    report["notes"] = [*plan.notes, *state.get("notes", []),
                       *state.get("assembly", {}).get("notes", [])]
    write_report(report, out)
    ctx.ledger.export_jsonl(ctx.job_id, out / "ledger.jsonl")
    # Last, once every output is final: the signed record of every file and the ledger's head.
    await asyncio.to_thread(write_record, out, ctx.job_id,
                            signing_credentials(core_settings().home_dir), signed)
    return {"verdict": report["verdict"]}
