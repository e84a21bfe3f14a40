"""`kantoku`: the command line. Errors print one readable line and exit non-zero."""

from __future__ import annotations

import asyncio
import json
import logging
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column, Table

from kantoku.planner.planning.brief import describe_errors
from kantoku.services._core.errors import Category, KantokuError, from_os_error, invalid
from kantoku.services._core.files import write_text_atomic

app = typer.Typer(help="kantoku: AI video production with a signed rights record.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
models_app = typer.Typer(help="The model registry.", no_args_is_help=True)
app.add_typer(models_app, name="models")
console = Console()
errors = Console(stderr=True, soft_wrap=True)

ServerOpt = Annotated[str | None, typer.Option("--server", help="HOST:PORT; default: `kantoku up`")]


def package_version() -> str:
    """The installed kantoku's version, or ``unknown`` when it runs from a bare source tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kantoku")
    except PackageNotFoundError:
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        console.print(f"kantoku {package_version()}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[bool, typer.Option(
        "--version", help="Print the version and exit.", callback=_print_version,
        is_eager=True)] = False,
) -> None:
    """kantoku: AI video production with a signed rights record."""


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    TimeElapsedColumn(), console=errors, transient=True)


@app.command()
def tts(
    text: Annotated[str, typer.Argument(help="Words to speak (English or Japanese).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="WAV file to write.")],
    voice: Annotated[str, typer.Option(help="Voice id (see `kantoku voices`).")] = "",
    language: Annotated[str, typer.Option(help="en or ja; default: detected.")] = "",
    rate: Annotated[float, typer.Option(help="Speaking rate, 0.5 to 2.0.")] = 1.0,
    server: ServerOpt = None,
) -> None:
    """Synthesize speech to OUT.wav and OUT.wav.json (timings and provenance)."""
    from kantoku.services._core.client import client_for
    from kantoku.services.tts.client import synthesize, write_speech
    from kantoku.v1 import tts_pb2

    async def run() -> None:
        request = tts_pb2.SynthesizeSpeechRequest(text=text, voice_id=voice,
                                                  language_code=language, speaking_rate=rate)
        with _progress() as progress:
            task = progress.add_task("synthesizing", total=None)
            async with client_for(server) as client:
                result = await synthesize(client, request, lambda s: progress.update(
                    task, description=f"synthesizing: {s:.1f} s of audio"))
        sidecar = write_speech(result, text, out)
        console.print(f"wrote {out} ({result.duration_s:.2f} s, voice {result.header.voice_id}) "
                      f"and {sidecar}")

    asyncio.run(run())


@app.command()
def voices(server: ServerOpt = None, language: str = "") -> None:
    """List the voices a TTS service offers, with license and rights holder."""
    from kantoku.services._core.client import client_for

    async def run() -> None:
        async with client_for(server) as client:
            response = await client.list_voices(language)
        table = Table(Column("voice", no_wrap=True), "languages", "rate (Hz)", "license",
                      "rights holder")
        for v in response.voices:
            table.add_row(v.voice_id, ", ".join(v.language_codes), str(v.sample_rate_hz),
                          v.model.rights.license, v.model.rights.rights_holder)
        console.print(table)

    asyncio.run(run())


@app.command()
def motion(
    timings: Annotated[Path, typer.Argument(help="OUT.wav.json written by `kantoku tts`.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Motion JSON to write.")],
    fps: Annotated[float, typer.Option(help="Viseme frames per second.")] = 30.0,
    seed: Annotated[int, typer.Option(help="Seed for blink timing.")] = 0,
    server: ServerOpt = None,
) -> None:
    """Viseme and gesture tracks for a speech file's timings."""
    from kantoku.services._core.client import client_for
    from kantoku.services.motion.client import load_timings, motion_document
    from kantoku.v1 import motion_pb2

    track, inputs = load_timings(timings)

    async def run() -> None:
        request = motion_pb2.AnimateSpeechRequest(phonemes=track, fps=fps, seed=seed,
                                                  inputs=inputs)
        with _progress() as progress:
            progress.add_task("animating", total=None)
            async with client_for(server) as client:
                response = await client.animate(request)
        write_text_atomic(out, json.dumps(motion_document(response), indent=1,
                                          ensure_ascii=False))
        console.print(f"wrote {out} ({len(response.visemes.frames)} viseme frames, "
                      f"{len(response.gestures.keyframes)} gestures)")

    asyncio.run(run())


SHOT_SIZES = ["extreme_wide", "wide", "full", "medium", "medium_close_up", "close_up",
              "extreme_close_up"]
CAMERA_MOVES = ["static", "pan_left", "pan_right", "tilt_up", "tilt_down", "dolly_in",
                "dolly_out", "zoom_in", "zoom_out", "truck_left", "truck_right"]


def _progress_updater(progress: Progress, task: TaskID) -> Callable[[Any], None]:
    def update(event: Any) -> None:
        progress.update(task, description=event.stage, completed=event.step,
                        total=event.total_steps or None)

    return update


@app.command()
def image(
    prompt: Annotated[str, typer.Argument(help="What the picture shows.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="PNG file to write.")],
    shot_size: Annotated[str, typer.Option(help=", ".join(SHOT_SIZES))] = "medium",
    character: Annotated[list[str] | None, typer.Option(
        help="NAME or NAME:description; repeat for several.")] = None,
    location: Annotated[str, typer.Option(help="Where the shot is set.")] = "",
    time_of_day: Annotated[str, typer.Option(help="dawn, day, golden_hour, dusk, night")] = "day",
    seed: int = 0,
    width: Annotated[int, typer.Option(help="Width in pixels.")] = 720,
    height: Annotated[int, typer.Option(help="Height in pixels.")] = 1280,
    steps: Annotated[int, typer.Option(help="Denoising steps (0: model default).")] = 0,
    model: Annotated[str, typer.Option(help="Registry id (default: previz).")] = "",
    reference: Annotated[list[str] | None, typer.Option(
        help="Reference image PATH or PATH:CHARACTER (a model with an IP-Adapter).")] = None,
    reference_weight: Annotated[float, typer.Option(
        help="How strongly the reference steers the picture (0: 1.0).")] = 0.0,
    reference_holder: Annotated[str, typer.Option(
        help="Rights holder of the reference images.")] = "",
    reference_license: Annotated[str, typer.Option(
        help="License of the reference images (SPDX id).")] = "",
    server: ServerOpt = None,
) -> None:
    """Generate a still: OUT.png and OUT.png.json (layers and provenance)."""
    from kantoku.services._core.client import client_for, save_result
    from kantoku.services.image.client import generate_image, reference_inputs
    from kantoku.v1 import common_pb2, image_pb2

    if shot_size not in SHOT_SIZES:
        raise invalid(f"--shot-size: {shot_size!r} is not one of {', '.join(SHOT_SIZES)}")
    cast = [image_pb2.CharacterSpec(name=c.partition(":")[0], description=c.partition(":")[2])
            for c in character or []]
    try:
        time_enum = image_pb2.TimeOfDay.Value(f"TIME_OF_DAY_{time_of_day.upper()}")
    except ValueError:
        raise invalid(f"--time-of-day: {time_of_day!r} is not dawn, day, golden_hour, dusk or "
                      "night") from None
    request = image_pb2.GenerateImageRequest(
        prompt=prompt, width_px=width, height_px=height, seed=seed, steps=steps, model_id=model,
        shot=image_pb2.ShotSpec(shot_size=image_pb2.ShotSize.Value(
            f"SHOT_SIZE_{shot_size.upper()}"), characters=cast, location=location,
            time_of_day=time_enum, caption=prompt))
    rights = common_pb2.RightsInfo(rights_holder=reference_holder, license=reference_license)
    request.references.extend(reference_inputs(reference or [], reference_weight, rights))

    async def run() -> None:
        with _progress() as progress:
            task = progress.add_task("generating", total=None)
            async with client_for(server, timeout_s=3600) as client:
                result = await generate_image(client, request, _progress_updater(progress, task))
        sidecar = save_result(result.image, result, out)
        params = result.provenance.parameters
        console.print(f"wrote {out} ({params['width_px']:.0f}x{params['height_px']:.0f}, "
                      f"{result.provenance.model.model_id}, "
                      f"sha256 {result.image.sha256[:12]}) and {sidecar}")

    asyncio.run(run())


@app.command()
def video(
    out: Annotated[Path, typer.Option("-o", "--out", help="MP4 file to write.")],
    duration: Annotated[float, typer.Option(help="Seconds.")],
    image_path: Annotated[Path | None, typer.Option("--image", help="Keyframe PNG.")] = None,
    prompt: str = "",
    camera: Annotated[str, typer.Option(help=", ".join(CAMERA_MOVES))] = "static",
    fps: Annotated[float, typer.Option(help="Frames per second (0: model default).")] = 30.0,
    seed: int = 0,
    model: Annotated[str, typer.Option(help="Registry id (default: animatic).")] = "",
    server: ServerOpt = None,
) -> None:
    """Generate a clip: OUT.mp4 and OUT.mp4.json (provenance)."""
    from kantoku.services._core.client import client_for, save_result
    from kantoku.services.video.client import generate_video, keyframe_inputs
    from kantoku.v1 import video_pb2

    if camera not in CAMERA_MOVES:
        raise invalid(f"--camera: {camera!r} is not one of {', '.join(CAMERA_MOVES)}")
    request = video_pb2.GenerateVideoRequest(
        prompt=prompt, duration_s=duration, fps=fps, seed=seed, model_id=model,
        camera_move=video_pb2.CameraMove.Value(f"CAMERA_MOVE_{camera.upper()}"))
    if image_path is not None:
        keyframe, layers = keyframe_inputs(image_path)
        request.keyframe.CopyFrom(keyframe)
        request.layers.extend(layers)

    async def run() -> None:
        with _progress() as progress:
            task = progress.add_task("generating", total=None)
            async with client_for(server, timeout_s=3600) as client:
                result = await generate_video(client, request, _progress_updater(progress, task))
        sidecar = save_result(result.video, result, out)
        console.print(f"wrote {out} ({result.frame_count} frames at {result.fps:g} fps, "
                      f"{result.provenance.model.model_id}) and {sidecar}")

    asyncio.run(run())


@app.command()
def serve(
    services: Annotated[list[str], typer.Argument(
        help="tts, asr, motion, image, video (gRPC); or llm alone: the embedded LLM's "
        "OpenAI-compatible HTTP server.")],
    standalone: Annotated[bool, typer.Option(help="Plain grpc.aio server (no Ray).")] = False,
    port: Annotated[int | None, typer.Option(
        help="Port; 0 picks a free one. Default: 50051 (gRPC), 8080 (llm).")] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    verbose: Annotated[bool, typer.Option(help="llm: the server's own logs, per request.")
                       ] = False,
) -> None:
    """Run services on a standalone gRPC server, or the embedded LLM, until Ctrl-C."""
    from kantoku.services._core.server import ServiceBinding, serve_forever
    from kantoku.services.catalog import get_service

    if "llm" in services:
        if len(services) > 1:
            raise invalid("llm is an HTTP server of its own: run `kantoku serve llm`, and the "
                          "gRPC services apart (`kantoku serve tts motion --standalone`)",
                          reason="SERVE_MIXED")
        _serve_llm(host, 8080 if port is None else port, verbose)
        return
    if not standalone:
        raise invalid("pass --standalone, or use `kantoku up` to host every service on Ray Serve",
                      reason="HOSTING_REQUIRED")
    specs = [get_service(name) for name in services]
    with _progress() as progress:
        progress.add_task(f"loading {', '.join(services)}", total=None)
        bindings = [ServiceBinding(s.build(), s.add_function(), s.full_name) for s in specs]
    port = 50051 if port is None else port
    asyncio.run(serve_forever(bindings, host, port, lambda running: console.print(
        f"serving {', '.join(services)} on {host}:{running.port} (Ctrl-C stops)")))


def _serve_llm(host: str, port: int, verbose: bool) -> None:
    from kantoku.services.llm.hosting import foreground_server

    server = foreground_server(host, port, verbose)
    try:
        with _progress() as progress:
            task = progress.add_task("starting the embedded LLM", total=None)
            endpoint = server.start(lambda step: progress.update(task, description=step))
        console.print(f"OPENAI_BASE_URL={endpoint.base_url}", highlight=False, markup=False)
        console.print(f"KANTOKU_LLM_MODEL={endpoint.model}", highlight=False, markup=False)
        if server.api_key:
            errors.print("clients send KANTOKU_AUTH_TOKEN's value as OPENAI_API_KEY")
        errors.print(f"serving {endpoint.model} (logs: {server.log_path}; Ctrl-C stops)",
                     highlight=False, markup=False)
        server.wait()
    finally:
        server.stop()


def studio_url(record: dict[str, Any]) -> str:
    """Where the studio of a `kantoku up` stack answers: Serve's HTTP proxy, on the host
    clients reach its gRPC ingress at."""
    host = record["grpc_address"].rpartition(":")[0]
    return f"http://{host}:{record['http_port']}/"


@app.command()
def up(
    grpc_port: Annotated[int, typer.Option(help="Serve gRPC ingress port.")] = 9000,
    gpus: Annotated[float | None, typer.Option(help="GPUs Ray may use; default: detect.")] = None,
    host: Annotated[str, typer.Option(
        help="Interface the ingress listens on; wider than 127.0.0.1 needs KANTOKU_AUTH_TOKEN."
    )] = "127.0.0.1",
    studio_port: Annotated[int, typer.Option(
        help="HTTP port of Serve's proxy, where the studio answers.")] = 8000,
    studio: Annotated[bool, typer.Option(
        help="Deploy the studio (page and HTTP API) beside the services.")] = True,
    address: Annotated[str | None, typer.Option(
        help="Join the Ray cluster at this GCS HOST:PORT instead of starting one; run it on a "
             "node of that cluster. Replicas go where their resources are.")] = None,
    start_llm: Annotated[bool | None, typer.Option(
        "--llm/--no-llm", help="Start the embedded LLM; default: unless OPENAI_BASE_URL is set."
    )] = None,
) -> None:
    """Start a local Ray cluster (or join the running one, or the one at --address) with every
    service on Ray Serve's gRPC ingress, the studio on its HTTP proxy, and the embedded LLM on
    127.0.0.1 unless OPENAI_BASE_URL names another."""
    from kantoku.services import local_stack as stack
    from kantoku.services.catalog import SERVICES

    def deploy_studio(record: dict[str, Any]) -> list[str]:
        from kantoku.agents.studio.serve import APPLICATION, deploy_studio

        progress.update(task, description="deploying the studio")
        deploy_studio(record["grpc_address"], studio_url(record))
        return [APPLICATION]

    with _progress() as progress:
        task = progress.add_task("starting", total=None)
        record = stack.up(grpc_port, gpus, list(SERVICES),
                          lambda step: progress.update(task, description=step), host,
                          llm=start_llm, http_port=studio_port,
                          http_apps=deploy_studio if studio else None, address=address)
    llm = record.get("llm")
    served = f"; LLM {llm['model']} at {llm['base_url']}" if llm else ""
    page = f"; studio {studio_url(record)}" if record.get("http_apps") else ""
    console.print(f"kantoku is up: gRPC {record['grpc_address']} "
                  f"({', '.join(record['services'])}){page}{served}; `kantoku down` stops it")


@app.command()
def status() -> None:
    """Show the local stack's services, their state and the nodes their replicas run on."""
    from kantoku.services import local_stack as stack

    record = stack.status()
    table = Table("service", "status", "address", "replicas on")
    http_apps = record.get("http_apps", [])
    replicas = record.get("replicas", {})
    for name, state in record["applications"].items():
        table.add_row(name, state,
                      studio_url(record) if name in http_apps else record["grpc_address"],
                      ", ".join(replicas.get(name, [])))
    if llm := record.get("llm"):
        table.add_row("llm", "answering" if llm["answers"] else "not answering", llm["base_url"],
                      "")
    console.print(table)


@app.command()
def down() -> None:
    """Stop the local stack: kantoku's applications, the LLM server `kantoku up` started, and Ray
    only if `kantoku up` started it."""
    from kantoku.services import local_stack as stack

    stack.down(lambda step: errors.print(step))
    console.print("kantoku is down")


@models_app.command("list")
def models_list(kind: Annotated[str | None, typer.Option(help="tts, motion, ...")] = None) -> None:
    """Every registered model with its license, holder and weights."""
    from kantoku.services._core.registry import ModelRegistry

    table = Table(Column("id", no_wrap=True), "kind", "license", "commercial", "rights holder",
                  "weights (sha256)")
    for entry in ModelRegistry().list(kind):
        weights = ", ".join(f"{w.path} ({w.sha256[:12]})" for w in entry.weights) or "none"
        table.add_row(entry.id, entry.kind, entry.license, "yes" if entry.commercial_use else "no",
                      entry.rights_holder, weights)
    console.print(table)


@models_app.command("add")
def models_add(
    model_id: Annotated[str, typer.Argument(help="Id to register it under.")],
    path: Annotated[Path, typer.Option(
        help="diffusers pipeline directory, LoRA file, or IP-Adapter directory.")],
    kind: Annotated[str, typer.Option(help="image, video, adapter (LoRA) or ip_adapter.")],
    license_id: Annotated[str, typer.Option("--license", help="SPDX id, e.g. Apache-2.0.")],
    commercial: Annotated[bool, typer.Option("--commercial/--no-commercial")] = False,
    holder: Annotated[str, typer.Option(help="Rights holder.")] = "unknown",
    training_data: Annotated[str, typer.Option(help="Training-data statement.")] = "not stated",
    ip_adapter: Annotated[str | None, typer.Option(
        help="Image models: registered ip_adapter id that reads reference images.")] = None,
) -> None:
    """Register a local model; every weights file is hashed, pickle checkpoints are refused."""
    from kantoku.services._core.registry import add_user_model

    if kind not in ("image", "video", "adapter", "ip_adapter"):
        raise invalid(f"--kind: {kind!r} is not image, video, adapter or ip_adapter")
    with _progress() as progress:
        progress.add_task(f"hashing {path}", total=None)
        entry = add_user_model(model_id, path, kind, license_id, commercial, holder,
                               training_data, ip_adapter=ip_adapter)
    if kind == "ip_adapter":
        console.print(f"registered {entry.id} ({len(entry.weights)} weights files, "
                      f"{entry.license}); use it with `kantoku models add MODEL --kind image "
                      f"--ip-adapter {entry.id} ...` or `ip_adapter: {entry.id}` in the model's "
                      "entry in $KANTOKU_HOME/models.yaml")
        return
    if kind == "adapter":  # a LoRA is loaded by the image model a request names it for
        console.print(f"registered {entry.id} ({entry.family}, {len(entry.weights)} weights "
                      f"files, {entry.license}); name it as a request's adapters[].adapter_id "
                      "for an image model that takes LoRA adapters")
        return
    variable = f"KANTOKU_{kind.upper()}_MODELS"
    ids = list(dict.fromkeys([*_served_models(variable), entry.id]))
    served = shlex.quote(json.dumps(ids, separators=(",", ":")))
    console.print(f"registered {entry.id} ({entry.family}, {len(entry.weights)} weights files, "
                  f"{entry.license}); serve it with {variable}={served}", markup=False)


def _served_models(variable: str) -> list[str]:
    """The ids `variable` (KANTOKU_IMAGE_MODELS or KANTOKU_VIDEO_MODELS) serves now."""
    from pydantic import ValidationError

    from kantoku.services.image.settings import ImageSettings
    from kantoku.services.video.settings import VideoSettings

    kind = ImageSettings if variable == "KANTOKU_IMAGE_MODELS" else VideoSettings
    try:
        return list(kind().models)
    except ValidationError:  # the variable is unusable now; the hint replaces it
        return list(kind.model_fields["models"].default)


@app.command()
def demo(out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("out/demo")
         ) -> None:
    """Speech + motion demo on real gRPC servers: writes WAVs, timings, motion and a picture."""
    from kantoku.agents.avatar.demo import run_demo

    asyncio.run(run_demo(out, console, _progress))


PlannerOpt = Annotated[str, typer.Option(
    "--planner", help="heuristic or llm (default: llm when OPENAI_BASE_URL/KANTOKU_LLM_MODEL "
    "are set, else heuristic)")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Approve the plan without asking.")]


def _planner_choice(planner: str) -> str:
    from kantoku.planner.planning.llm import llm_configured

    if planner == "auto":
        return "llm" if llm_configured() else "heuristic"
    if planner not in ("heuristic", "llm"):
        raise invalid(f"--planner: {planner!r} is not heuristic or llm")
    return planner


def _reviewer() -> Any:
    """Ask at a terminal; without one (batch, CI) the job pauses at review until resumed."""
    from kantoku.agents.mv.review import console_reviewer

    return console_reviewer(errors, typer.confirm) if sys.stdin.isatty() else None


def _finish_job(coro: Any) -> None:
    _print_outcome(*asyncio.run(coro))


def _print_outcome(outcome: Any, view: Any) -> None:
    from kantoku.agents.mv.review import print_outcome

    print_outcome(outcome, view, console)
    if outcome.paused:
        sys.exit(3)


@app.command()
def mv(
    brief: Annotated[Path, typer.Argument(help="Brief file (YAML or JSON).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    song: Annotated[Path | None, typer.Option(help="Song (WAV, FLAC, MP3, OGG).")] = None,
    lyrics: Annotated[Path | None, typer.Option(help="Lyrics (LRC or plain text).")] = None,
    planner: PlannerOpt = "auto",
    aspect: Annotated[str | None, typer.Option(help="9:16, 16:9 or 1:1 (default: the brief's)")
                      ] = None,
    resolution: Annotated[str | None, typer.Option(
        help="480p, 720p or 1080p: the short side (default: the brief's)")] = None,
    loudness: Annotated[float, typer.Option(
        help="Integrated loudness of the soundtrack in LUFS, -30 to -5; true peaks stay at or "
        "under -1 dBTP")] = -14.0,
    lyrics_mode: Annotated[str, typer.Option(
        "--lyrics-mode", help="burn: lyrics drawn into the picture; soft: a subtitle track in "
        "video.mp4 that players show with captions on")] = "burn",
    yes: YesOpt = False,
    server: ServerOpt = None,
) -> None:
    """Make a video from a brief (and a song with lyrics): video.mp4, plan, timeline,
    storyboard and rights record."""
    from kantoku.agents.mv.run import Delivery, start_mv

    overrides = {k: v for k, v in (("aspect", aspect), ("resolution", resolution)) if v}
    _finish_job(start_mv(brief, out, song=song, lyrics=lyrics, planner=_planner_choice(planner),
                         yes=yes, server=server, console=errors, reviewer=_reviewer(),
                         overrides=overrides, delivery=Delivery(loudness, lyrics_mode)))


@app.command()
def resume(
    job_id: Annotated[str, typer.Argument(help="The job_id from OUT/job.json.")],
    yes: YesOpt = False,
    server: ServerOpt = None,
) -> None:
    """Finish a job after a crash, a kill or a review pause; finished steps are not redone."""
    from kantoku.agents.mv.run import resume_mv

    _finish_job(resume_mv(job_id, yes=yes, server=server, console=errors, reviewer=_reviewer()))


@app.command()
def edit(
    out: Annotated[Path, typer.Argument(help="A finished job's output folder.")],
    timeline: Annotated[Path, typer.Option(
        "--timeline", "-t", help="The edited timeline: .otio, or .xml/.fcpxml/.aaf/.edl "
        "from an editor.")],
    yes: YesOpt = False,
    server: ServerOpt = None,
) -> None:
    """Re-render only what an edited timeline changed; the previous version is kept in
    OUT/versions/."""
    from kantoku.agents.mv.edit import edit_mv

    result = asyncio.run(edit_mv(out, timeline, yes=yes, server=server, console=errors,
                                 ask=typer.confirm if sys.stdin.isatty() else None))
    if result is not None:
        _print_outcome(*result)


@app.command()
def studio(
    host: Annotated[str, typer.Option(
        help="Interface to listen on; wider than 127.0.0.1 needs KANTOKU_AUTH_TOKEN.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8000,
    server: ServerOpt = None,
) -> None:
    """The studio's HTTP API: start jobs from briefs, review and edit their plans, approve,
    follow their events and download their files (routes under /v1, /openapi.json)."""
    from kantoku.agents.studio.app import serve

    serve(host, port, server)


@app.command()
def avatar(
    host: Annotated[str, typer.Option(
        help="Interface to listen on; wider than 127.0.0.1 needs KANTOKU_AUTH_TOKEN.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8010,
    persona: Annotated[Path | None, typer.Option(
        "--persona", help="A persona file (YAML); default: the ones in personas/.")] = None,
    server: ServerOpt = None,
) -> None:
    """The virtual human: talk to a character in the browser (speech in, voice and face out),
    interrupt it any time. WebSocket protocol: docs/avatar-protocol.md."""
    from kantoku.agents.avatar.server import serve
    from kantoku.planner.planning.endpoint import llm_configured, llm_settings

    settings = llm_settings()
    if llm_configured(settings):
        console.print(f"LLM: {escape(settings.base_url or 'OpenAI')} "
                      f"({escape(settings.model or 'its only model')})", highlight=False)
    else:
        errors.print("[yellow]LLM: the embedded SmolLM2-135M, which chats in English only; "
                     "for Japanese replies set OPENAI_BASE_URL (and KANTOKU_LLM_MODEL) to an "
                     "OpenAI-compatible endpoint[/yellow]", highlight=False)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    console.print(f"avatar: http://{shown}:{port}/ (Ctrl-C stops)", highlight=False)
    serve(host, port, server, persona)


@app.command("plan")
def plan_command(
    brief: Annotated[Path, typer.Argument(help="Brief file (YAML or JSON).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="plan.json to write.")] = None,
    song: Annotated[Path | None, typer.Option(help="Song (WAV, FLAC, MP3, OGG).")] = None,
    lyrics: Annotated[Path | None, typer.Option(help="Lyrics (LRC or plain text).")] = None,
    planner: PlannerOpt = "auto",
) -> None:
    """Plan only: print the shot plan (and write it with --out); nothing is rendered."""
    from kantoku.agents.mv.progress import planning_progress
    from kantoku.agents.mv.review import dumps, plan_table
    from kantoku.agents.mv.run import plan_document
    from kantoku.planner.planning.plan import Plan

    with _progress() as progress:
        document, summary = asyncio.run(plan_document(
            brief, _planner_choice(planner), song, lyrics, planning_progress(progress)))
    console.print(plan_table(Plan.model_validate(document)))
    console.print(escape(summary))
    if out:
        write_text_atomic(out, dumps(document))
        console.print(f"wrote {out}")


@app.command("export")
def export_command(
    job_dir: Annotated[Path, typer.Argument(help="A finished job's output folder.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="fcp7, fcpx, aaf, edl or kdenlive.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="File to write (default: JOB_DIR/export/timeline.EXT).")] = None,
) -> None:
    """Write the job's timeline as a project file for an editor (through the OTIO adapters)."""
    from kantoku.planner.finish.export import FORMATS, export_timeline

    written = export_timeline(job_dir, fmt, out)
    console.print(f"wrote {', '.join(str(p) for p in written)} (opens in "
                  f"{FORMATS[fmt].editors})")


rights_app = typer.Typer(help="Rights records.", no_args_is_help=True)
app.add_typer(rights_app, name="rights")


@rights_app.command("verify")
def rights_verify(
    path: Annotated[Path, typer.Argument(help="A job's output folder or one file.")],
    trust: Annotated[Path | None, typer.Option(
        "--trust", help="PEM chain of the CA that signed the job (default: this "
        "installation's CA, if it has one).")] = None,
) -> None:
    """Check the job's signed record, the ledger's hash chain and every C2PA manifest; non-zero
    exit when anything fails."""
    from kantoku.planner.rights.verify import read_trust, verify_path

    result = verify_path(path, read_trust(trust) if trust else None)
    for note in result.notes:
        console.print(escape(note), highlight=False)
    for problem in result.problems:
        errors.print(f"[red]FAIL[/red] {escape(problem)}", highlight=False)
    if result.problems:
        raise KantokuError(f"{path}: {len(result.problems)} problem(s) in "
                           f"{len(result.checked)} file(s)", "VERIFY_FAILED",
                           Category.RIGHTS_DENIED)
    console.print(f"OK: {len(result.checked)} file(s) verified in {escape(str(path))} (signed "
                  "record, ledger chain and C2PA manifests)")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        try:
            app()
        except OSError as exc:  # a full disk while writing outputs: say so, not a traceback
            from kantoku.services._core.settings import core_settings

            raise from_os_error(exc, candidates=[Path.cwd(), core_settings().home_dir]) \
                or exc from None
        except ValidationError as exc:  # a value given on the command line broke a model's rule
            raise invalid(f"{describe_errors(exc)}; check the value you passed",
                          reason="ARGUMENT_INVALID") from None
    except KantokuError as err:
        errors.print(f"[red]error:[/red] {escape(err.message)}", highlight=False)
        sys.exit(err.category.exit_code)
    except KeyboardInterrupt:
        errors.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
