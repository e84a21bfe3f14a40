"""`kantoku studio`: the HTTP API over jobs. A brief (and a song) in; the plan to review, edit
and approve; the job's events as Server-Sent Events; its files out.

Routes are under `/v1`; `/openapi.json` describes them. When KANTOKU_AUTH_TOKEN is set every
route but `/healthz` needs `Authorization: Bearer <token>` (or `?token=` for EventSource).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import yaml
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field, ValidationError
from sse_starlette import EventSourceResponse
from starlette.datastructures import UploadFile

from kantoku.agents.studio.chat_routes import chat_router
from kantoku.agents.studio.jobs import (
    JobManager,
    JobStateError,
    PlanRefused,
    StudioJob,
)
from kantoku.planner.planning.brief import MAX_BRIEF_BYTES, Brief, describe_errors, parse_brief
from kantoku.planner.planning.plan import Plan
from kantoku.services._core.errors import Category, KantokuError
from kantoku.services._core.settings import core_settings

API = "/v1"
#: Largest song upload (a few minutes of lossless audio).
MAX_SONG_BYTES = 200 << 20
MAX_LYRICS_BYTES = 1 << 20
#: Whole request: the files and the form's framing.
MAX_REQUEST_BYTES = MAX_SONG_BYTES + MAX_LYRICS_BYTES + MAX_BRIEF_BYTES + (1 << 20)
_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,5}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")

_STATUS = {Category.INVALID_REQUEST: 400, Category.NOT_FOUND: 404, Category.RIGHTS_DENIED: 403,
           Category.UNAUTHENTICATED: 401, Category.RESOURCE_EXHAUSTED: 507,
           Category.UNAVAILABLE: 503, Category.DEADLINE_EXCEEDED: 504, Category.INTERNAL: 500}


class ApiError(Exception):
    def __init__(self, status: int, detail: str, reason: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.detail, self.reason, self.extra = status, detail, reason, extra


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes is refused (413) as it arrives, with
    or without a Content-Length (chunked uploads too)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        total = 0

        async def limited() -> Any:
            nonlocal total
            message = await receive()
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > self.limit:
                    raise ApiError(413, f"the request is over the limit of {self.limit} bytes",
                                   "UPLOAD_TOO_LARGE")
            return message

        await self.app(scope, limited, send)


# -- request and response models --------------------------------------------------------------


class CreateJob(BaseModel):
    brief: dict[str, Any] = Field(description="the brief's fields (see Brief)")
    planner: Literal["heuristic", "llm"] = "heuristic"


class OutputFile(BaseModel):
    name: str
    bytes: int


class JobView(BaseModel):
    id: str
    status: str
    created: str
    title: str
    brief: Brief
    plan: Plan | None = None
    plan_version: int = 0
    policy: dict[str, Any] | None = Field(default=None, description="the policy gate's report")
    verdict: dict[str, Any] | None = Field(default=None, description="publish/monetize verdict")
    outputs: list[OutputFile] = Field(default_factory=list)
    error: dict[str, Any] | None = None
    events: int = Field(default=0, description="events so far (the last event id)")


class ShotChangeView(BaseModel):
    shot_id: str
    status: str
    fields: list[str]
    renders: list[str]


class DiffView(BaseModel):
    changes: list[ShotChangeView]
    stale: list[str] = Field(description="shots that must render again")
    render_steps: int
    summary: str


class PlanView(BaseModel):
    version: int
    plan: Plan
    diff: DiffView | None = None


class Problem(BaseModel):
    shot: str | None
    field: str | None
    rule: str


class ErrorView(BaseModel):
    detail: str
    reason: str
    problems: list[Problem] | None = None


def job_view(job: StudioJob) -> JobView:
    brief = job.brief
    report = job.report or {}
    return JobView(id=job.id, status=job.status, created=job.created, title=brief.title,
                   brief=brief, plan=Plan.model_validate(job.plan) if job.plan else None,
                   plan_version=job.plan_version, policy=job.policy,
                   verdict=report.get("verdict") if isinstance(report, dict) else None,
                   outputs=[OutputFile(**o) for o in job.outputs()], error=job.error,
                   events=len(job.events))


# -- auth ------------------------------------------------------------------------------------


def require_token(request: Request) -> None:
    token = core_settings().token
    if not token:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        given = request.query_params.get("token", "")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(401, "a bearer token is required: send `Authorization: Bearer "
                       "<KANTOKU_AUTH_TOKEN>` (or ?token= for EventSource)", "UNAUTHENTICATED")


# -- reading a new job -----------------------------------------------------------------------


def _brief_from(data: Any) -> Brief:
    brief = parse_brief(data, "brief")
    for index, character in enumerate(brief.characters):
        if character.reference is not None:
            raise ApiError(400, f"brief: characters[{index}].reference: reference images "
                           "cannot be uploaded to the studio yet; remove it",
                           "REFERENCE_UNSUPPORTED")
    return brief


def _brief_text(raw: bytes) -> Brief:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "brief: not UTF-8 text; save the brief as UTF-8 YAML or JSON",
                       "BRIEF_INVALID") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ApiError(400, f"brief: not valid YAML or JSON{where}", "BRIEF_INVALID") from None
    return _brief_from(data)


async def _read_upload(value: Any, name: str, limit: int) -> bytes:
    if isinstance(value, str):
        data = value.encode()
    elif isinstance(value, UploadFile):
        data = await value.read(limit + 1)
    else:
        raise ApiError(400, f"{name}: send a file", "UPLOAD_INVALID", field=name)
    if len(data) > limit:
        raise ApiError(413, f"{name}: over the limit of {limit} bytes", "UPLOAD_TOO_LARGE",
                       field=name)
    if not data:
        raise ApiError(400, f"{name}: the file is empty", "UPLOAD_EMPTY", field=name)
    return data


def _saved(folder: Path, name: str, data: bytes, filename: str | None) -> Path:
    suffix = Path(filename or "").suffix
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name + (suffix.lower() if _SUFFIX.match(suffix) else ""))
    path.write_bytes(data)
    return path


def _named(exc: KantokuError, path: Path, name: str) -> ApiError:
    """The error about an uploaded file, naming the form field instead of where it was saved."""
    message = exc.message.replace(str(path), name)
    if not message.startswith(name):
        message = f"{name}: {message}"
    return ApiError(_STATUS.get(exc.category, 400), message, exc.reason, field=name)


async def _check_song(song: Path, lyrics: Path | None, brief: Brief) -> dict[str, Any]:
    """The song read as the planner reads it (decoded, analysed), and the lyrics placed."""
    from kantoku.planner.music.song import analyze_song
    from kantoku.planner.music.steps import read_song

    try:
        analysis = await asyncio.to_thread(analyze_song, song)
    except KantokuError as exc:
        raise _named(exc, song, "song") from None
    try:
        return await read_song(song, lyrics, brief, analysis)
    except KantokuError as exc:
        raise _named(exc, lyrics or song, "lyrics" if lyrics else "song") from None


# -- the app ---------------------------------------------------------------------------------


def create_app(server: str | None = None, root: Path | None = None, *,
               start_llm: bool = False) -> FastAPI:
    """The studio's API; jobs use the services at `server` (else the local stack, else an
    embedded server per job) and live under `root` (default `$KANTOKU_HOME/studio`). With
    `start_llm` the chat's embedded LLM (when no endpoint is configured) starts with the app."""
    manager = JobManager(root or core_settings().home_dir / "studio", server)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await manager.restore()
        yield
        await manager.close()

    app = FastAPI(title="kantoku studio", version="1", lifespan=lifespan, openapi_url=None,
                  docs_url=None, redoc_url=None)
    app.state.jobs = manager
    app.add_middleware(BodyLimit, limit=MAX_REQUEST_BYTES)
    auth = [Depends(require_token)]
    router = APIRouter(prefix=API, dependencies=auth,
                       responses={401: {"model": ErrorView}, 404: {"model": ErrorView}})

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": exc.detail, "reason": exc.reason, **exc.extra},
                            status_code=exc.status, headers=headers)

    @app.exception_handler(KantokuError)
    async def kantoku_error(_: Request, exc: KantokuError) -> JSONResponse:
        return JSONResponse({"detail": exc.message, "reason": exc.reason},
                            status_code=_STATUS.get(exc.category, 500))

    @app.exception_handler(PlanRefused)
    async def plan_refused(_: Request, exc: PlanRefused) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "reason": "PLAN_INVALID",
                             "problems": exc.problems}, status_code=422)

    @app.exception_handler(JobStateError)
    async def wrong_state(_: Request, exc: JobStateError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "reason": "JOB_STATE"}, status_code=409)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    def job_or_404(job_id: str) -> StudioJob:
        job = manager.get(job_id)
        if job is None:
            raise ApiError(404, f"{job_id}: no such job", "JOB_NOT_FOUND", job_id=job_id)
        return job

    create_body = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": CreateJob.model_json_schema()},
        "multipart/form-data": {"schema": {"type": "object", "required": ["brief"], "properties": {
            "brief": {"type": "string", "format": "binary", "description": "YAML or JSON"},
            "song": {"type": "string", "format": "binary"},
            "lyrics": {"type": "string", "format": "binary", "description": "LRC or text"},
            "planner": {"type": "string", "enum": ["heuristic", "llm"]}}}}}}}

    @router.post("/jobs", status_code=201, response_model=JobView, openapi_extra=create_body,
                 responses={400: {"model": ErrorView}, 413: {"model": ErrorView}})
    async def create_job(request: Request) -> JobView:
        """Start a job from a brief (JSON) or a brief, song and lyrics (multipart form); it
        stops at review with its plan."""
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_REQUEST_BYTES:
            raise ApiError(413, f"the request is over the limit of {MAX_REQUEST_BYTES} bytes",
                           "UPLOAD_TOO_LARGE")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        job_id = manager.new_id()
        song = lyrics = None
        song_document = None
        if kind == "multipart/form-data":
            form = await request.form(max_files=3, max_fields=10)
            uploads = manager.uploads(job_id)
            try:
                if "brief" not in form:
                    raise ApiError(400, "brief: required (a YAML or JSON file)", "BRIEF_MISSING",
                                   field="brief")
                brief = _brief_text(await _read_upload(form["brief"], "brief", MAX_BRIEF_BYTES))
                planner = form.get("planner") or "heuristic"
                if planner not in ("heuristic", "llm"):
                    raise ApiError(400, f"planner: {planner!r} is not heuristic or llm",
                                   "PLANNER_INVALID", field="planner")
                for name, limit in (("song", MAX_SONG_BYTES), ("lyrics", MAX_LYRICS_BYTES)):
                    value = form.get(name)
                    if value is None or value == "":
                        continue
                    data = await _read_upload(value, name, limit)
                    filename = value.filename if isinstance(value, UploadFile) else None
                    path = _saved(uploads, name, data, filename)
                    song, lyrics = (path, lyrics) if name == "song" else (song, path)
                if lyrics is not None and song is None:
                    raise ApiError(400, "lyrics: send the song too; lyrics are placed on it",
                                   "SONG_MISSING", field="lyrics")
                if song is not None:
                    song_document = await _check_song(song, lyrics, brief)
            except BaseException:
                shutil.rmtree(uploads, ignore_errors=True)  # nothing is kept of a refused job
                raise
            finally:
                await form.close()
        elif kind == "application/json":
            try:
                body = CreateJob.model_validate(await request.json())
            except ValueError as exc:
                detail = describe_errors(exc) if isinstance(exc, ValidationError) else \
                    "the body is not JSON"
                raise ApiError(400, detail, "REQUEST_INVALID") from None
            brief, planner = _brief_from(body.brief), body.planner
        else:
            raise ApiError(415, "send application/json or multipart/form-data",
                           "CONTENT_TYPE_UNSUPPORTED")
        if song is None and brief.duration_s is None:
            raise ApiError(400, "brief: duration_s: required when there is no song",
                           "DURATION_MISSING", field="brief")
        job = manager.start(job_id, brief, planner=str(planner), song=song, lyrics=lyrics,
                            song_document=song_document)
        return job_view(job)

    @router.get("/jobs", response_model=list[JobView])
    async def list_jobs() -> list[JobView]:
        return [job_view(job) for job in manager.jobs.values()]

    @router.get("/jobs/{job_id}", response_model=JobView)
    async def get_job(job_id: str) -> JobView:
        return job_view(job_or_404(job_id))

    @router.get("/jobs/{job_id}/plan", response_model=PlanView)
    async def get_plan(job_id: str) -> PlanView:
        job = job_or_404(job_id)
        if job.plan is None:
            raise ApiError(404, f"{job_id}: no plan yet (the job is {job.status})",
                           "PLAN_NOT_READY")
        return PlanView(version=job.plan_version, plan=Plan.model_validate(job.plan))

    refusal: dict[int | str, dict[str, Any]] = {422: {"model": ErrorView},
                                                409: {"model": ErrorView}}

    @router.put("/jobs/{job_id}/plan", response_model=PlanView, responses=refusal)
    async def put_plan(job_id: str, request: Request) -> PlanView:
        """Replace the whole plan (while the job awaits review)."""
        job = job_or_404(job_id)
        return PlanView.model_validate(manager.edit_plan(job, await _json(request)))

    @router.patch("/jobs/{job_id}/shots/{shot_id}", response_model=PlanView, responses=refusal,
                  openapi_extra={"requestBody": {"required": True, "content": {
                      "application/json": {"schema": {"type": "object",
                                                      "description": "Shot fields to change"}}}}})
    async def patch_shot(job_id: str, shot_id: str, request: Request) -> PlanView:
        """Change some of one shot's fields (while the job awaits review)."""
        job = job_or_404(job_id)
        result = manager.edit_shot(job, shot_id, await _json(request))
        if result is None:
            raise ApiError(404, f"{job_id}: the plan has no shot {shot_id}", "SHOT_NOT_FOUND",
                           shot=shot_id)
        return PlanView.model_validate(result)

    @router.post("/jobs/{job_id}:approve", status_code=202, response_model=JobView,
                 responses={409: {"model": ErrorView}})
    async def approve(job_id: str) -> JobView:
        """Render the current plan (as edited)."""
        job = job_or_404(job_id)
        manager.approve(job)
        return job_view(job)

    @router.post("/jobs/{job_id}:resume", status_code=202, response_model=JobView,
                 responses={409: {"model": ErrorView}})
    async def resume(job_id: str) -> JobView:
        """Run an interrupted (the studio stopped) or failed job on from its last checkpoint."""
        job = job_or_404(job_id)
        manager.resume(job)
        return job_view(job)

    @router.post("/jobs/{job_id}:cancel", response_model=JobView,
                 responses={409: {"model": ErrorView}})
    async def cancel(job_id: str) -> JobView:
        job = job_or_404(job_id)
        await manager.cancel(job)
        return job_view(job)

    @router.get("/jobs/{job_id}/events")
    async def events(job_id: str, request: Request) -> EventSourceResponse:
        """The job's events as Server-Sent Events, from after `Last-Event-ID`; the stream
        ends when the job is done, failed or cancelled."""
        job = job_or_404(job_id)
        last = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        after = int(last) if last and last.isdigit() else 0

        async def stream() -> AsyncIterator[dict[str, Any]]:
            async for event in job.events_after(after):
                yield {"id": str(event["id"]), "event": event["event"],
                       "data": json.dumps(event["data"], ensure_ascii=False, default=str)}

        return EventSourceResponse(stream(), ping=15)

    @router.get("/jobs/{job_id}/files/{name}", response_class=FileResponse)
    async def job_file(job_id: str, name: str) -> FileResponse:
        """One of the job's output files; Range requests are answered (206)."""
        job = job_or_404(job_id)
        missing = ApiError(404, f"{job_id}: no output file {name!r}", "FILE_NOT_FOUND")
        if not _FILE_NAME.match(name) or ".." in name:
            raise missing
        path = job.folder / name
        if path.is_symlink() or not path.is_file() or path.resolve().parent != job.folder:
            raise missing
        return FileResponse(path, filename=name)

    app.include_router(router)
    app.include_router(chat_router(manager, start_llm=start_llm), prefix=API, dependencies=auth)
    return app


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise ApiError(400, "the body is not JSON", "REQUEST_INVALID") from None


def serve(host: str, port: int, server: str | None) -> None:
    """`kantoku studio`: run the API with uvicorn until Ctrl-C.

    Raises:
        KantokuError: STUDIO_UNPROTECTED for a host wider than loopback without
            KANTOKU_AUTH_TOKEN.
    """
    import uvicorn

    from kantoku.services._core.errors import invalid
    from kantoku.services.hosting import LOOPBACK

    if host not in LOOPBACK and not core_settings().token:
        raise invalid(f"--host: {host} lets other machines start jobs and read their files; set "
                      "KANTOKU_AUTH_TOKEN first (clients send it) or keep --host 127.0.0.1",
                      reason="STUDIO_UNPROTECTED", host=host)
    # Open event streams are closed after a few seconds; running jobs stop checkpointed.
    uvicorn.run(create_app(server=server, start_llm=True), host=host, port=port, log_level="info",
                timeout_graceful_shutdown=5)
