"""`kantoku avatar`: the virtual human's web app. The page (`GET /`, `/static/*`), the personas
(`GET /v1/personas`), a sign-in that trades the token for a cookie (`POST /v1/session`), and
the conversation itself (`WS /v1/avatar`, protocol in docs/avatar-protocol.md).

Services: `--server`, else the local stack, else an embedded gRPC server with the speech
services (tts, motion, asr) started with the app. The LLM: the configured endpoint, else the
embedded one, started once with the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, ValidationError

from kantoku.agents.avatar.persona import PERSONAS_DIR, Persona, load_personas
from kantoku.agents.avatar.protocol import CLOSE_POLICY, ProtocolError
from kantoku.agents.avatar.session import AvatarHost, AvatarSession
from kantoku.agents.llm_chat import ChatModels
from kantoku.agents.services import product_services
from kantoku.agents.web_auth import TOKEN_COOKIE, given_token, token_matches
from kantoku.planner.planning.brief import describe_errors
from kantoku.planner.rights.ledger import Ledger, open_ledger
from kantoku.services._core.assets import AssetStore
from kantoku.services._core.client import ServiceClient
from kantoku.services._core.errors import invalid
from kantoku.services._core.settings import core_settings

log = logging.getLogger(__name__)

API = "/v1"
STATIC = Path(__file__).with_name("static")
PAGE = "avatar.html"
#: A frame over this is refused by the server before the session sees it (1 s at 48 kHz is
#: 96 kB; the session's own limit names the field).
WS_MAX_BYTES = 256 * 1024
_PLACEHOLDER = """<!doctype html><meta charset="utf-8"><title>kantoku avatar</title>
<p>kantoku avatar: the page is not installed. Clients speak the WebSocket protocol at
<code>/v1/avatar</code> (docs/avatar-protocol.md).</p>"""


class SessionRequest(BaseModel):
    token: str = Field(min_length=1, max_length=4096, description="KANTOKU_AUTH_TOKEN")


def create_app(server: str | None = None, persona_file: Path | None = None, *,
               personas_dir: Path = PERSONAS_DIR, ledger: Ledger | None = None,
               warm_llm: bool = False) -> FastAPI:
    """The avatar's app; services start with it (lifespan) and stop with it, and so does the
    embedded LLM when it is the one (at once with `warm_llm`, else with the first session)."""
    personas = load_personas(personas_dir, persona_file)
    if not personas:
        raise invalid(f"{personas_dir}: no persona files (*.yaml); pass --persona FILE",
                      reason="PERSONA_NOT_FOUND")
    default = _default_persona(personas, persona_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(
                product_services(server, ["tts", "motion", "asr"], timeout_s=60))
            models = ChatModels()
            stack.push_async_callback(models.close)
            if warm_llm:
                warming = asyncio.create_task(_warm_up(models), name="avatar LLM warm-up")
                stack.push_async_callback(_cancelled, warming)
            spoken = await _speakable(client, personas)
            if default not in spoken:
                raise invalid(f"persona {default}: {personas[default].voice_id} is not a voice "
                              "of the TTS service; see `kantoku voices`",
                              reason="PERSONA_INVALID")
            settings = core_settings()
            # The configured ledger unless one was given; connecting may wait for Postgres.
            host_ledger: Ledger = ledger or await asyncio.to_thread(open_ledger)
            if ledger is None:
                stack.callback(host_ledger.close)
            app.state.host = AvatarHost(client, spoken, default, models, host_ledger,
                                        AssetStore(settings.assets_dir))
            yield
            for session in list(app.state.host.sessions):
                await session.socket.close(1001)

    app = FastAPI(title="kantoku avatar", version="1", lifespan=lifespan, docs_url=None,
                  redoc_url=None)
    router = APIRouter(prefix=API)

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> dict[str, Any]:
        host: AvatarHost | None = getattr(request.app.state, "host", None)
        return {"status": "ok", "sessions": len(host.sessions) if host else 0}

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        if (STATIC / PAGE).is_file():
            return FileResponse(STATIC / PAGE, headers={"Cache-Control": "no-cache"})
        return HTMLResponse(_PLACEHOLDER)

    @app.get("/fonts/noto-sans-jp.otf", include_in_schema=False)
    async def page_font() -> FileResponse:
        """Noto Sans JP, for browsers on machines without a Japanese font."""
        from kantoku.services._core.fonts import cjk_font_path

        return FileResponse(cjk_font_path(), media_type="font/otf",
                            headers={"Cache-Control": "public, max-age=86400"})

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @router.get("/personas")
    async def list_personas(request: Request) -> list[dict[str, object]]:
        return [p.summary() for p in request.app.state.host.personas.values()]

    @router.get("/personas/{persona_id}")
    async def get_persona(request: Request, persona_id: str) -> JSONResponse:
        persona = request.app.state.host.personas.get(persona_id)
        if persona is None:
            return JSONResponse({"detail": f"{persona_id}: no such persona", "reason":
                                 "PERSONA_NOT_FOUND"}, status_code=404)
        return JSONResponse(persona.summary())

    @router.post("/session", status_code=204, response_class=Response)
    async def sign_in(request: Request) -> Response:
        """Trade the token for an HttpOnly cookie the WebSocket accepts (for the page)."""
        try:
            body = SessionRequest.model_validate(await request.json())
        except (ValueError, ValidationError) as exc:
            detail = describe_errors(exc) if isinstance(exc, ValidationError) else \
                "the body is not JSON"
            return JSONResponse({"detail": detail, "reason": "REQUEST_INVALID",
                                 "field": "token"}, status_code=400)
        token = core_settings().token
        if token and not token_matches(body.token, token):
            return JSONResponse({"detail": "token: not this server's KANTOKU_AUTH_TOKEN",
                                 "reason": "UNAUTHENTICATED", "field": "token"},
                                status_code=401)
        response = Response(status_code=204)
        response.set_cookie(TOKEN_COOKIE, body.token.strip(), httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path=API)
        return response

    @router.websocket("/avatar")
    async def avatar(socket: WebSocket) -> None:
        token = core_settings().token
        await socket.accept()  # accepted first, so the client hears why it is closed
        if token and not token_matches(given_token(socket.headers, socket.cookies,
                                                   socket.query_params), token):
            await socket.send_json(ProtocolError(
                "UNAUTHENTICATED", "a token is required: sign in with POST /v1/session, or "
                "send `Authorization: Bearer <KANTOKU_AUTH_TOKEN>` or ?token=", "token",
                fatal=True).event())
            await socket.close(CLOSE_POLICY, "UNAUTHENTICATED")
            return
        await AvatarSession(socket.app.state.host, socket).run()

    app.include_router(router)
    return app


async def _warm_up(models: ChatModels) -> None:
    """Start the embedded LLM now (when it is the one), so the first visitor does not wait."""
    try:
        await models.endpoint()
    except Exception:  # noqa: BLE001 - the first session reports it, to the person who asked
        log.warning("the LLM could not be started ahead of the first session", exc_info=True)


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _speakable(client: ServiceClient, personas: dict[str, Persona]) -> dict[str, Persona]:
    """The personas whose voice the TTS service has, in their language; the others are left
    out with a warning (a stack may serve fewer voices than the registry lists)."""
    voices = {v.voice_id: {c.split("-")[0] for c in v.language_codes}
              for v in (await client.list_voices()).voices}
    kept = {}
    for persona in personas.values():
        if persona.language in voices.get(persona.voice_id, set()):
            kept[persona.id] = persona
        else:
            log.warning("persona %s left out: voice_id %s is not a %s voice of the TTS service "
                        "(it has %s)", persona.id, persona.voice_id, persona.language,
                        ", ".join(sorted(voices)))
    return kept


def _default_persona(personas: dict[str, Persona], persona_file: Path | None) -> str:
    """The --persona file's, else the first that speaks what the LLM speaks (the embedded
    model: English), else the first."""
    if persona_file is not None:
        return next(p.id for p in reversed(personas.values()))
    from kantoku.planner.planning.endpoint import llm_configured

    if not llm_configured():
        english = [p.id for p in personas.values() if p.language == "en"]
        if english:
            return english[0]
    return next(iter(personas))


def serve(host: str, port: int, server: str | None, persona_file: Path | None) -> None:
    """`kantoku avatar`: run the app with uvicorn until Ctrl-C.

    Raises:
        KantokuError: AVATAR_UNPROTECTED for a host wider than loopback without
            KANTOKU_AUTH_TOKEN.
    """
    import uvicorn

    from kantoku.services.hosting import LOOPBACK

    if host not in LOOPBACK and not core_settings().token:
        raise invalid(f"--host: {host} lets other machines talk to the avatar and run its "
                      "models; set KANTOKU_AUTH_TOKEN first (clients send it) or keep --host "
                      "127.0.0.1", reason="AVATAR_UNPROTECTED", host=host)
    uvicorn.run(create_app(server, persona_file, warm_llm=True), host=host, port=port,
                log_level="info", ws_max_size=WS_MAX_BYTES, timeout_graceful_shutdown=5)
