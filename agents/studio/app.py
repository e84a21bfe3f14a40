"""`kantoku studio`: the HTTP API over jobs. A brief (and a song) in; the plan to review (with
its storyboard previews and the song's timeline), edit and approve; a finished job's shots
regenerated; the job's events as Server-Sent Events; its files out.

Routes are under `/v1`; `/openapi.json` describes them (models in `views.py`). When
KANTOKU_AUTH_TOKEN is set every route but `/healthz` and the page needs the token (`auth.py`).

The page (`GET /`, `/static/*`, no token needed) is the studio in a browser: a brief or a chat
in, the plan to review and edit, live progress, the video and its files out.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sse_starlette import EventSourceResponse

from kantoku.agents.studio.auth import TOKEN_COOKIE, BodyLimit, require_token, token_matches
from kantoku.agents.studio.chat_routes import chat_router
from kantoku.agents.studio.errors import ApiError, request_json, request_model, status_of
from kantoku.agents.studio.jobs import (
    JobManager,
    JobStateError,
    PlanRefused,
    StudioJob,
)
from kantoku.agents.studio.timeline import timeline_document
from kantoku.agents.studio.uploads import (
    MAX_FILES,
    MAX_REQUEST_BYTES,
    NewJob,
    brief_without_uploads,
    read_job_form,
)
from kantoku.agents.studio.views import (
    CreateJob,
    ErrorView,
    JobView,
    PlanView,
    Regenerate,
    SessionRequest,
    TimelineView,
    job_view,
)
from kantoku.planner.planning.plan import Plan
from kantoku.services._core.errors import KantokuError
from kantoku.services._core.settings import core_settings

API = "/v1"
#: The page's files (index.html, its JS modules and CSS).
STATIC = Path(__file__).with_name("static")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


# -- the app ---------------------------------------------------------------------------------


def create_app(server: str | None = None, root: Path | None = None, *,
               start_llm: bool = False) -> FastAPI:
    """The studio's API; jobs use the services at `server` (else the local stack, else an
    embedded server per job) and live under `root` (default `$KANTOKU_HOME/studio`). With
    `start_llm` the chat's embedded LLM (when no endpoint is configured) starts with the app."""
    manager = JobManager(root or core_settings().home_dir / "studio", server)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        warming = asyncio.create_task(manager.warm_up(), name="studio warm-up")
        await manager.restore()
        yield
        await manager.close()
        await warming  # a thread cannot be stopped; it ends in seconds

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
                            status_code=status_of(exc))

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

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/fonts/noto-sans-jp.otf", include_in_schema=False)
    async def page_font() -> FileResponse:
        """The videos' Noto Sans JP, for browsers on machines without a Japanese font."""
        from kantoku.services._core.fonts import cjk_font_path

        return FileResponse(cjk_font_path(), media_type="font/otf",
                            headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.post(f"{API}/session", status_code=204, response_class=Response,
              responses={400: {"model": ErrorView}, 401: {"model": ErrorView}})
    async def sign_in(request: Request) -> Response:
        """Trade the token for an HttpOnly cookie that every /v1 route accepts (for pages)."""
        body = await request_model(request, SessionRequest, field="token")
        token = core_settings().token
        if token and not token_matches(body.token, token):
            raise ApiError(401, "token: not this studio's KANTOKU_AUTH_TOKEN", "UNAUTHENTICATED",
                           field="token")
        response = Response(status_code=204)
        response.set_cookie(TOKEN_COOKIE, body.token.strip(), httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path=API)
        return response

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
            "references": {"type": "array", "items": {"type": "string", "format": "binary"},
                           "description": "characters' reference pictures (PNG, JPEG, WebP), "
                           "each named as its character's reference.path names it"},
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
        if kind == "multipart/form-data":
            form = await request.form(max_files=MAX_FILES, max_fields=10)
            uploads = manager.uploads(job_id)
            try:
                new = await read_job_form(form, uploads)
            except BaseException:
                shutil.rmtree(uploads, ignore_errors=True)  # nothing is kept of a refused job
                raise
            finally:
                await form.close()
        elif kind == "application/json":
            body = await request_model(request, CreateJob)
            new = NewJob(brief_without_uploads(body.brief), body.planner)
        else:
            raise ApiError(415, "send application/json or multipart/form-data",
                           "CONTENT_TYPE_UNSUPPORTED")
        if new.song is None and new.brief.duration_s is None:
            raise ApiError(400, "brief: duration_s: required when there is no song",
                           "DURATION_MISSING", field="brief")
        job = manager.start(job_id, new.brief, planner=new.planner, song=new.song,
                            lyrics=new.lyrics, song_document=new.song_document)
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
        return PlanView.model_validate(manager.edit_plan(job, await request_json(request)))

    @router.patch("/jobs/{job_id}/shots/{shot_id}", response_model=PlanView, responses=refusal,
                  openapi_extra={"requestBody": {"required": True, "content": {
                      "application/json": {"schema": {"type": "object",
                                                      "description": "Shot fields to change"}}}}})
    async def patch_shot(job_id: str, shot_id: str, request: Request) -> PlanView:
        """Change some of one shot's fields (while the job awaits review). A new `end_s`
        (`start_s`) moves the cut shared with the next (previous) shot; it snaps to the nearest
        beat unless `?snap=false`."""
        job = job_or_404(job_id)
        snap = _flag(request, "snap", default=True)
        result = manager.edit_shot(job, shot_id, await request_json(request), snap=snap)
        if result is None:
            raise ApiError(404, f"{job_id}: the plan has no shot {shot_id}", "SHOT_NOT_FOUND",
                           shot=shot_id)
        return PlanView.model_validate(result)

    @router.get("/jobs/{job_id}/timeline", response_model=TimelineView)
    async def timeline(job_id: str) -> TimelineView:
        """The song's duration, beats, downbeats, sections, lyric lines and waveform peaks, for
        the timeline strip (no song: empty lists, waveform null)."""
        job = job_or_404(job_id)
        document = await asyncio.to_thread(timeline_document, job.state, job.plan,
                                           manager.waveforms)
        return TimelineView.model_validate(document)

    @router.get("/jobs/{job_id}/shots/{shot_id}/preview", response_class=FileResponse,
                responses={200: {"content": {"image/png": {}}}})
    async def preview(job_id: str, shot_id: str) -> FileResponse:
        """The shot's storyboard preview (previz keyframe) for the current plan."""
        job = job_or_404(job_id)
        if job.plan is None:
            raise ApiError(404, f"{job_id}: no plan yet (the job is {job.status})",
                           "PREVIEW_NOT_READY", shot=shot_id)
        path = manager.previews.paths(job).get(shot_id)
        if path is None:
            raise ApiError(404, f"{job_id}: the plan has no shot {shot_id}", "SHOT_NOT_FOUND",
                           shot=shot_id)
        if not path.is_file():
            raise ApiError(404, f"{job_id}: the preview of {shot_id} is not drawn yet; it comes "
                           "as a `preview` event", "PREVIEW_NOT_READY", shot=shot_id)
        return FileResponse(path, media_type="image/png",
                            headers={"Cache-Control": "private, max-age=86400"})

    @router.post("/jobs/{job_id}/shots/{shot_id}:regenerate", status_code=202,
                 response_model=JobView,
                 responses={400: {"model": ErrorView}, 409: {"model": ErrorView}},
                 openapi_extra={"requestBody": {"required": False, "content": {
                     "application/json": {"schema": Regenerate.model_json_schema()}}}})
    async def regenerate(job_id: str, shot_id: str, request: Request) -> JobView:
        """Render one shot of a done job again (a new seed, or the given seed and image_prompt)
        as the job's next version: the earlier outputs move to versions/vN, the answer is the
        new job (a new id, same folder); only that shot and the assembly render again."""
        job = job_or_404(job_id)
        body = await request_model(request, Regenerate, optional=True)
        new = manager.regenerate(job, shot_id, seed=body.seed,
                                       image_prompt=body.image_prompt)
        if new is None:
            raise ApiError(404, f"{job_id}: the plan has no shot {shot_id}", "SHOT_NOT_FOUND",
                           shot=shot_id)
        return job_view(new)

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


def _flag(request: Request, name: str, *, default: bool) -> bool:
    """A true/false query parameter."""
    value = request.query_params.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ApiError(400, f"{name}: {value!r} is not true or false", "REQUEST_INVALID", field=name)


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
