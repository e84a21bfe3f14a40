"""The embedded LLM as a child process: llama-cpp-python's own OpenAI-compatible server.

`LLMServer` starts ``python -m llama_cpp.server`` on 127.0.0.1 (unless told otherwise), waits
until ``GET /v1/models`` names the model, and stops it. `embedded_endpoint` is what the planner
uses: the LLM `kantoku up` started when it answers, else a private server for the duration.

Two of llama_cpp.server's defaults are changed on purpose:

- ``interrupt_requests`` is off: with it on, any new request ends the stream in progress early
  (its last chunk has no finish_reason), so one client's plan would be cut off by another's
  question. Off, requests wait their turn; a client that disconnects still stops its stream.
- ``logits_all`` is off: on, the server keeps every token's logits (n_ctx x 49152 floats, 1.6
  GB at 8192 tokens) and copies them while reading the prompt; only ``logprobs`` needs them.
- ``flash_attn`` is on: prompts are read about a sixth faster on a CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from kantoku.services._core.client import stack_file
from kantoku.services._core.errors import KantokuError, invalid, not_found, unavailable
from kantoku.services._core.registry import ModelRegistry, WeightsHasher
from kantoku.services._core.settings import CoreSettings, core_settings
from kantoku.services.llm.catalog import (
    EMBEDDED_CONTEXT,
    EMBEDDED_GGUF,
    EMBEDDED_LLM,
    embedded_model_path,
)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: How long a start may take before it is given up (loading the 98 MB GGUF takes about a second).
START_TIMEOUT_S = 60.0
#: Lines of the server's output quoted when it exits before answering.
TAIL_LINES = 6
#: The line of a Python traceback that says what went wrong.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_.]*(Error|Exception|Exit)\b.*")

#: Environment variables llama_cpp.server 0.3.36 reads besides its flags, never passed on:
#: uvicorn.run takes HOST and PORT from the environment over --host and --port, CONFIG_FILE
#: replaces every flag, and each settings field (pydantic-settings, any case) fills what the
#: flags leave out. A unit test checks this list against llama_cpp.server.settings.Settings.
SERVER_ENV = frozenset({
    "config_file", "host", "port", "ssl_keyfile", "ssl_certfile", "api_key", "interrupt_requests",
    "disable_ping_events", "root_path", "model", "model_alias", "n_gpu_layers", "split_mode",
    "main_gpu", "tensor_split", "vocab_only", "use_mmap", "use_mlock", "kv_overrides",
    "rpc_servers", "seed", "n_ctx", "n_batch", "n_ubatch", "n_threads", "n_threads_batch",
    "rope_scaling_type", "rope_freq_base", "rope_freq_scale", "yarn_ext_factor",
    "yarn_attn_factor", "yarn_beta_fast", "yarn_beta_slow", "yarn_orig_ctx", "mul_mat_q",
    "logits_all", "embedding", "offload_kqv", "flash_attn", "last_n_tokens_size", "lora_base",
    "lora_path", "numa", "chat_format", "chat_template_kwargs", "clip_model_path", "cache",
    "cache_type", "cache_size", "hf_tokenizer_config_path", "hf_pretrained_model_name_or_path",
    "hf_model_repo_id", "draft_model", "draft_model_num_pred_tokens", "type_k", "type_v",
    "verbose",
})

#: Runs llama_cpp.server as ``-m`` does, and ends it once the process that started it is gone,
#: so a planner that crashes or is killed leaves no server behind.
_WATCHED = """\
import os, runpy, sys, threading, time
parent = int(sys.argv.pop(1))
def watch():
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
sys.argv[0] = "llama_cpp.server"
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible endpoint: ``base_url`` ends in ``/v1``; ``model`` is the name to
    send; ``started_here`` says whether it lives only as long as the code that asked for it."""

    base_url: str
    model: str
    started_here: bool


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _connect_host(host: str) -> str:
    """Where a client on this machine reaches a server listening on `host`, URL-ready."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"[{target}]" if ":" in target else target


def _bind_check(host: str, port: int) -> int:
    """`port` (a free one when 0) once it is known to be free on `host`, as uvicorn binds it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise invalid(f"--port: {port} on {host} cannot be used ({exc.strerror}); pick "
                          "another, or 0 for a free one", reason="PORT_IN_USE",
                          port=str(port)) from None
        return int(sock.getsockname()[1])


def answers(base_url: str, model: str, api_key: str | None = None,
            timeout_s: float = 2.0) -> bool:
    """True when ``GET base_url/models`` answers and lists `model`."""
    request = urllib.request.Request(f"{base_url}/models")
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            listed = json.load(response).get("data", [])
    except (OSError, ValueError, AttributeError):  # refused, timed out, HTTP error, not JSON
        return False
    return any(isinstance(m, dict) and m.get("id") == model for m in listed)


class LLMServer:
    """llama-cpp-python's OpenAI-compatible server for one GGUF model, as a child process.

    Use it as a context manager (sync or async), or call `start` and `stop`. Without
    `model_path` it serves the embedded SmolLM2-135M-Instruct, its weights checked against the
    registry first.

    Args:
        model_path: a GGUF file; default: the embedded LLM's.
        model: the name clients send (the server's model alias and `/v1/models` id).
        host: the interface to listen on; anything but loopback needs `api_key`.
        port: the port; 0 picks a free one.
        n_ctx: the context size in tokens.
        n_threads: threads for generation and prompt reading; default: every CPU this process
            may use.
        api_key: the bearer token clients must send (``OPENAI_API_KEY``); passed to the server
            through its environment, not its command line.
        cache: keep the state of earlier prompts in RAM (llama_cpp's ``--cache``), so a prompt
            sharing a prefix with one before the last is not read again.
        verbose: the server's own logs (llama.cpp's loading, each request's timings).
        log_path: where the server's output goes; default: a temporary file, deleted by `stop`.
        detached: for a server that outlives this process (`kantoku up`): out of reach of the
            terminal's signals, and not watching this process.
        start_timeout_s: how long `start` waits for the first answer.
    """

    def __init__(self, model_path: Path | None = None, *, model: str = EMBEDDED_LLM,
                 host: str = "127.0.0.1", port: int = 0, n_ctx: int = EMBEDDED_CONTEXT,
                 n_threads: int | None = None, api_key: str | None = None, cache: bool = False,
                 verbose: bool = False, log_path: Path | None = None, detached: bool = False,
                 start_timeout_s: float = START_TIMEOUT_S,
                 settings: CoreSettings | None = None) -> None:
        if host not in LOOPBACK and not api_key:
            raise invalid(f"--host: {host} lets other machines use the LLM; set "
                          "KANTOKU_AUTH_TOKEN first (clients send it as OPENAI_API_KEY) or keep "
                          "--host 127.0.0.1", reason="LLM_UNPROTECTED", host=host)
        self.model_path = model_path
        self.model = model
        self.host = host
        self.port = port
        self.n_ctx = n_ctx
        self.n_threads = n_threads or _cpu_count()
        self.api_key = api_key
        self.cache = cache
        self.verbose = verbose
        self.log_path = log_path
        self.detached = detached
        self.start_timeout_s = start_timeout_s
        self.settings = settings or core_settings()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{_connect_host(self.host)}:{self.port}/v1"

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.base_url, self.model, started_here=not self.detached)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _resolved_model(self) -> Path:
        if self.model_path is None:
            path = embedded_model_path()
            entry = ModelRegistry(self.settings).get(EMBEDDED_LLM, kind="llm")
            WeightsHasher(self.settings).verify(entry, {EMBEDDED_GGUF: path})
            return path
        if not self.model_path.is_file():
            raise not_found(f"model: {self.model_path} is not a file; pass a GGUF model file",
                            reason="LLM_MODEL_NOT_FOUND")
        return self.model_path

    def command(self, model_path: Path) -> list[str]:
        """The server's command line (the interpreter running kantoku, with llama_cpp)."""
        if self.detached:
            head = [sys.executable, "-m", "llama_cpp.server"]
        else:
            head = [sys.executable, "-c", _WATCHED, str(os.getpid())]
        flags = {"model": str(model_path), "model_alias": self.model, "host": self.host,
                 "port": self.port, "n_ctx": self.n_ctx, "n_threads": self.n_threads,
                 "n_threads_batch": self.n_threads, "flash_attn": True, "logits_all": False,
                 "interrupt_requests": False, "cache": self.cache, "verbose": self.verbose}
        return head + [part for name, value in flags.items()
                       for part in (f"--{name}", str(value))]

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k.lower() not in SERVER_ENV}
        if self.api_key:
            env["API_KEY"] = self.api_key
        return env

    def launch(self) -> None:
        """Start the process and return at once; `start` and `astart` also wait for it."""
        if self._process is not None:
            raise invalid("this LLM server is already started", reason="LLM_STARTED")
        if importlib.util.find_spec("llama_cpp") is None:
            raise unavailable("llama-cpp-python is not installed; install it with "
                              "`pip install 'llama-cpp-python[server]==0.3.36'`",
                              reason="LLAMA_CPP_MISSING")
        model_path = self._resolved_model()
        self.port = _bind_check(self.host, self.port)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        else:
            self._log = tempfile.TemporaryFile(prefix="kantoku-llm-")  # noqa: SIM115 (stop closes)
        self._process = subprocess.Popen(
            self.command(model_path), stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, env=self._environment(),
            start_new_session=self.detached)

    def _check(self, started: float) -> bool:
        """True once the server answers; raises when it has exited or taken too long."""
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            raise self._exited(code, "before it answered", "LLM_START_FAILED")
        if answers(self.base_url, self.model, self.api_key, timeout_s=1.0):
            return True
        if time.monotonic() - started > self.start_timeout_s:
            tail = self.output_tail()
            self.stop()
            raise unavailable(f"the LLM server did not answer {self.base_url}/models within "
                              f"{self.start_timeout_s:.0f} s; its last output: "
                              f"{' / '.join(tail) or '(none)'}", reason="LLM_START_TIMEOUT")
        return False

    def start(self, on_step: Callable[[str], None] | None = None) -> Endpoint:
        """Launch the server and wait until it answers.

        Raises:
            KantokuError: UNAVAILABLE when it exits first (quoting its last output) or does not
                answer in time; INVALID_REQUEST when the port is taken; NOT_FOUND when the
                model file is missing.
        """
        started = time.monotonic()
        self.launch()
        try:
            while not self._check(started):
                if on_step:
                    on_step(f"loading {self.model} ({time.monotonic() - started:.1f} s)")
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        return self.endpoint

    async def astart(self, on_step: Callable[[str], None] | None = None) -> Endpoint:
        """`start` for asyncio: cancelling it stops the server."""
        started = time.monotonic()
        await asyncio.to_thread(self.launch)
        try:
            while not await asyncio.to_thread(self._check, started):
                if on_step:
                    on_step(f"loading {self.model} ({time.monotonic() - started:.1f} s)")
                await asyncio.sleep(0.1)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(self.stop))
            raise
        return self.endpoint

    def wait(self) -> None:
        """Block while the server runs (Ctrl-C ends the wait).

        Raises:
            KantokuError: UNAVAILABLE (LLM_EXITED) when it exits, quoting its last output.
        """
        if self._process is None:
            raise invalid("this LLM server is not started", reason="LLM_NOT_STARTED")
        raise self._exited(self._process.wait(), "", "LLM_EXITED")

    def _exited(self, code: int, when: str, reason: str) -> KantokuError:
        """The error for a server that has exited; forgets the process."""
        tail = self.output_tail(20)
        self._process = None
        self._close_log()
        raised = [line for line in tail if _EXCEPTION_LINE.match(line)]
        shown = raised[-1] if raised else "\n  ".join(tail[-TAIL_LINES:]) or "(no output)"
        where = f" (its log: {self.log_path})" if self.log_path else ""
        return unavailable(f"the LLM server exited (code {code}){' ' + when if when else ''}"
                           f"{where}; its last output:\n  {shown}", reason=reason,
                           exit_code=str(code), output_tail="\n".join(tail))

    def output_tail(self, lines: int = TAIL_LINES) -> list[str]:
        """The last lines the server wrote (stdout and stderr together)."""
        if self._log is None or self._log.closed:
            return []
        fd = self._log.fileno()
        size = os.fstat(fd).st_size
        chunk = os.pread(fd, min(size, 16384), max(0, size - 16384))
        text = chunk.decode("utf-8", "replace").splitlines()
        return [line.strip()[:300] for line in text if line.strip()][-lines:]

    def stop(self, timeout_s: float = 5.0) -> None:
        """End the server: SIGTERM, then SIGKILL after `timeout_s`. Stopping twice is fine."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._close_log()

    def detach(self) -> dict[str, Any]:
        """Let a detached server outlive this object; what `stop_recorded` needs to stop it."""
        import psutil

        if self._process is None:
            raise invalid("this LLM server is not started", reason="LLM_NOT_STARTED")
        record = {"pid": self._process.pid,
                  "create_time": psutil.Process(self._process.pid).create_time(),
                  "port": self.port, "base_url": self.base_url, "model": self.model,
                  "log": str(self.log_path) if self.log_path else None}
        self._process.returncode = 0  # no "still running" warning when this object goes
        self._process = None
        self._close_log()
        return record

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Endpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Endpoint:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)


def foreground_server(host: str, port: int, verbose: bool = False,
                      settings: CoreSettings | None = None) -> LLMServer:
    """The embedded LLM's server for `kantoku serve llm` (not started yet): logs in
    $KANTOKU_HOME/logs/llm-serve.log; beyond loopback, KANTOKU_AUTH_TOKEN is its API key."""
    settings = settings or core_settings()
    return LLMServer(host=host, port=port, verbose=verbose, settings=settings,
                     api_key=None if host in LOOPBACK else settings.token,
                     log_path=settings.home_dir / "logs" / "llm-serve.log")


def _recorded_process(record: dict[str, Any]) -> Any:
    """The running process `record` names (same pid and start time), or None."""
    import psutil

    try:
        process = psutil.Process(int(record["pid"]))
        if abs(process.create_time() - float(record["create_time"])) > 1.0:
            return None  # the pid now belongs to another process
        return process
    except (psutil.Error, KeyError, TypeError, ValueError):
        return None


def recorded_running(record: dict[str, Any]) -> bool:
    """True while the LLM server a stack record names is still the process it recorded."""
    return _recorded_process(record) is not None


def stop_recorded(record: dict[str, Any], timeout_s: float = 10.0) -> bool:
    """Stop the LLM server `record` (from `LLMServer.detach`) names, and no other process;
    False when it had already gone."""
    import psutil

    process = _recorded_process(record)
    if process is None:
        return False
    with contextlib.suppress(psutil.Error):
        process.terminate()
    _, alive = psutil.wait_procs([process], timeout=timeout_s)
    for survivor in alive:
        with contextlib.suppress(psutil.Error):
            survivor.kill()
    return True


def recorded_llm(settings: CoreSettings | None = None) -> dict[str, Any] | None:
    """The LLM server `kantoku up` recorded, or None."""
    path = stack_file(settings)
    try:
        llm = json.loads(path.read_text()).get("llm")
    except (OSError, ValueError, AttributeError):
        return None
    return llm if isinstance(llm, dict) and llm.get("base_url") and llm.get("model") else None


@contextlib.asynccontextmanager
async def embedded_endpoint(on_step: Callable[[str], None] | None = None,
                            settings: CoreSettings | None = None) -> AsyncIterator[Endpoint]:
    """An OpenAI-compatible endpoint serving the embedded LLM, for as long as the block runs.

    The server `kantoku up` started when it is recorded and answers; otherwise a private one
    on 127.0.0.1, started now (about a second) and stopped when the block ends.

    Args:
        on_step: told what is happening while a private server loads.
        settings: where the stack record is; default: from the environment.
    """
    recorded = recorded_llm(settings)
    if recorded is not None:
        base_url, model = str(recorded["base_url"]), str(recorded["model"])
        if await asyncio.to_thread(answers, base_url, model):
            yield Endpoint(base_url, model, started_here=False)
            return
    server = LLMServer(settings=settings)
    endpoint = await server.astart(on_step)
    try:
        yield endpoint
    finally:
        await asyncio.shield(asyncio.to_thread(server.stop))
