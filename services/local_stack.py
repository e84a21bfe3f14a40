"""The local stack behind `kantoku up|status|down`: a Ray head node with Serve's gRPC ingress,
and the embedded LLM's OpenAI-compatible server.

The ingress listens on 127.0.0.1 unless `--host` says otherwise (and a wider one needs
`KANTOKU_AUTH_TOKEN`). `down` stops only what `up` started: a Ray cluster that was already
running is joined, and left running with kantoku's applications removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kantoku.services._core.client import stack_file
from kantoku.services._core.errors import invalid, unavailable
from kantoku.services._core.server import free_port
from kantoku.services._core.settings import core_settings


def _ray_cli() -> str:
    candidate = Path(sys.executable).with_name("ray")
    return str(candidate) if candidate.exists() else (shutil.which("ray") or "ray")


def _ray_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    return env


def _quiet_ray_logs() -> None:
    for name in ("ray", "ray.serve"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _check_host(host: str, token: str | None) -> None:
    """Refuse an ingress wider than this machine unless servers require a bearer token."""
    from kantoku.services.hosting import LOOPBACK

    if host not in LOOPBACK and not token:
        raise invalid(f"--host: {host} lets other machines call every service; set "
                      "KANTOKU_AUTH_TOKEN first (clients send it too) or keep --host 127.0.0.1",
                      reason="INGRESS_UNPROTECTED", host=host)


def _running_ray() -> str | None:
    """The GCS address of the user's Ray cluster: RAY_ADDRESS, else the last `ray start`'s when
    its GCS still runs (a stale address file is not waited on); None when there is none."""
    from ray._private import services, utils

    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"]
    last = utils.read_ray_address()
    return last if last and last in services.find_gcs_addresses() else None


def _join_running_ray() -> bool:
    """Connect to a Ray cluster that is already running; False when there is none (a stale
    address file is not waited on)."""
    import ray

    if _running_ray() is None:
        return False
    ray.init(address="auto", log_to_driver=False, logging_level=logging.WARNING)
    return True


def _join_cluster(address: str) -> bool:
    """Connect to the Ray cluster whose GCS is at `address`, from one of its nodes."""
    import ray

    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError) as exc:
        raise unavailable(f"--address: no Ray cluster answers at {address} from this machine "
                          f"({str(exc).splitlines()[0]}); run `kantoku up` on a node of that "
                          "cluster, with its GCS address (`ray start --head` prints it)",
                          reason="RAY_CLUSTER_UNREACHABLE", address=address) from None
    return True


def _connect(address: str) -> None:
    """ray.init to the recorded cluster; "auto" when it is the last `ray start`'s, as a plain
    address is refused by token-authenticated clusters that "auto" finds the token for."""
    import ray
    from ray._private import utils

    target = "auto" if utils.read_ray_address() == address else address
    ray.init(address=target, log_to_driver=False, logging_level=logging.WARNING)


def up(grpc_port: int, num_gpus: float | None, services: list[str],
       on_step: Callable[[str], None], host: str = "127.0.0.1",
       llm: bool | None = None, http_port: int | None = None,
       http_apps: Callable[[dict[str, Any]], list[str]] | None = None,
       address: str | None = None) -> dict[str, Any]:
    """Start Ray (or join the one already running), Serve with gRPC ingress on `host`, and every
    service; record the address and whether kantoku started Ray, so `down` stops only that.

    `address` (a Ray cluster's GCS HOST:PORT) joins that cluster instead: Ray runs a driver only
    on a node of its cluster, so this runs on one (the head, usually). Serve then places each
    replica on whichever node has the resources its settings ask for, and runs a proxy on every
    node.

    Serve's HTTP proxy listens on `host`:`http_port` (a free port when None); `http_apps`,
    given the record so far, deploys the HTTP applications (the studio) and names them.

    The embedded LLM's server starts first, on 127.0.0.1, unless `llm` is False or (when it is
    None) OPENAI_BASE_URL names another endpoint; its pid, port and URL are recorded too.
    """
    _check_host(host, core_settings().token)
    if address and num_gpus is not None:
        raise invalid("--gpus: a cluster joined with --address has the GPUs its nodes declared "
                      "(`ray start --num-gpus`); leave --gpus out", reason="GPUS_WITH_ADDRESS")
    if llm is None:
        llm = not os.environ.get("OPENAI_BASE_URL")
    llm_record = _start_llm(on_step) if llm else None
    try:
        record = _start_ray_and_serve(grpc_port, num_gpus, services, on_step, host,
                                      http_port or free_port(), address)
        if http_apps is not None:
            record["http_apps"] = http_apps(record)
    except BaseException:
        if llm_record:
            _stop_llm(llm_record, on_step)
        raise
    record["llm"] = llm_record
    path = stack_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    return record


def _start_llm(on_step: Callable[[str], None]) -> dict[str, Any]:
    """The embedded LLM's server, detached so it outlives `kantoku up`; what stops it."""
    from kantoku.services.llm.hosting import LLMServer

    on_step("starting the embedded LLM")
    server = LLMServer(detached=True, log_path=core_settings().home_dir / "logs" / "llm.log")
    server.start(on_step)
    return server.detach()


def _stop_llm(llm: dict[str, Any], on_step: Callable[[str], None]) -> None:
    from kantoku.services.llm.hosting import stop_recorded

    on_step(f"stopping the embedded LLM (pid {llm.get('pid')})")
    if not stop_recorded(llm):
        on_step("the embedded LLM was not running")


def _start_ray_and_serve(grpc_port: int, num_gpus: float | None, services: list[str],
                         on_step: Callable[[str], None], host: str,
                         http_port: int, address: str | None = None) -> dict[str, Any]:
    import ray

    from kantoku.services import hosting

    _quiet_ray_logs()
    joined = _join_cluster(address) if address else _join_running_ray()
    if address:
        on_step(f"joined the Ray cluster at {address} (it stays up after `kantoku down`)")
    elif joined:
        on_step("joining the Ray cluster already running (it stays up after `kantoku down`)")
    else:
        on_step("starting the Ray head node")
        command = [_ray_cli(), "start", "--head", "--disable-usage-stats",
                   "--include-dashboard=false", f"--num-cpus={os.cpu_count() or 2}",
                   f"--port={free_port()}"]
        if num_gpus is not None:
            command.append(f"--num-gpus={num_gpus}")
        started = subprocess.run(command, env=_ray_env(), capture_output=True, text=True)
        if started.returncode != 0:
            raise unavailable(f"`ray start` failed: {started.stderr.strip().splitlines()[-1:]}",
                              reason="RAY_START_FAILED")
        ray.init(address="auto", log_to_driver=False, logging_level=logging.WARNING)
    shown = f"[{host}]" if ":" in host else host
    on_step(f"starting Serve (gRPC ingress on {shown}:{grpc_port})")
    hosting.start_serve(grpc_port, http_port, services, host)
    hosting.deploy(services, lambda name, seconds: on_step(f"deployed {name} in {seconds:.1f} s"))
    connect = "127.0.0.1" if host in ("0.0.0.0", "::") else shown
    return {"grpc_address": f"{connect}:{grpc_port}", "host": host, "http_port": http_port,
            "services": services, "started_ray": not joined,
            "ray_address": ray.get_runtime_context().gcs_address}


def status() -> dict[str, Any]:
    """The recorded stack, each application's status from Serve, and the nodes its running
    replicas are on."""

    from kantoku.services import hosting

    path = stack_file()
    if not path.exists():
        raise unavailable("the local stack is not running; start it with `kantoku up`",
                          reason="STACK_DOWN")
    record = json.loads(path.read_text())
    llm = record.get("llm")
    if llm:
        from kantoku.services.llm.hosting import answers

        llm["answers"] = answers(llm["base_url"], llm["model"])
    _quiet_ray_logs()
    try:
        _connect(record.get("ray_address", "auto"))
    except (ConnectionError, RuntimeError):
        raise unavailable("the local stack is recorded but Ray is not running; run "
                          "`kantoku down` then `kantoku up`", reason="STACK_DOWN") from None
    record["applications"] = hosting.application_status()
    record["replicas"] = hosting.replica_nodes()
    return record


def down(on_step: Callable[[str], None]) -> None:
    """Remove kantoku's Serve applications; stop Ray only when `kantoku up` started it.

    A Ray cluster the user started (that `up` joined) keeps running, with its own applications.
    """
    import ray

    from kantoku.services import hosting

    path = stack_file()
    record = json.loads(path.read_text()) if path.exists() else {}
    if record.get("llm"):
        _stop_llm(record["llm"], on_step)
    _quiet_ray_logs()
    address = record.get("ray_address")
    if address is None:
        on_step("kantoku up has not run here; nothing to stop")
        return
    try:
        _connect(address)
        on_step("removing kantoku's Serve applications")
        hosting.delete_applications(record.get("services", []) + record.get("http_apps", []))
        ray.shutdown()
    except (ConnectionError, RuntimeError):
        on_step("Ray was not running")
    if record.get("started_ray"):
        on_step(f"stopping the Ray head kantoku started ({address})")
        _stop_head(address)
    path.unlink(missing_ok=True)


def _stop_head(gcs_address: str, wait_s: float = 15.0) -> None:
    """End the processes of the Ray cluster at `gcs_address` (and no other): its GCS server,
    raylet and workers all name that address (or its port) on their command lines."""
    import psutil

    port = gcs_address.rpartition(":")[2]
    marks = (gcs_address, f"--gcs_server_port={port}")
    ours = []
    for process in psutil.process_iter(["cmdline"]):
        line = " ".join(process.info["cmdline"] or [])
        if process.pid != os.getpid() and any(mark in line for mark in marks):
            ours.append(process)
    for process in ours:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(ours, timeout=wait_s)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    from ray._private import utils

    if utils.read_ray_address() == gcs_address:  # as `ray stop` does, for the next `ray.init`
        Path(utils.get_ray_address_file(None)).unlink(missing_ok=True)
