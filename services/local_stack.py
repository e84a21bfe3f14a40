"""The local stack behind `kantoku up|status|down`: a Ray head node with Serve's gRPC ingress."""

from __future__ import annotations

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
from kantoku.services._core.errors import unavailable
from kantoku.services._core.server import free_port


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


def up(grpc_port: int, num_gpus: float | None, services: list[str],
       on_step: Callable[[str], None]) -> dict[str, Any]:
    """Start Ray (if needed), Serve with gRPC ingress, and every service; record the address."""
    import ray

    from kantoku.services import hosting

    on_step("starting the Ray head node")
    command = [_ray_cli(), "start", "--head", "--disable-usage-stats", "--include-dashboard=false",
               f"--num-cpus={os.cpu_count() or 2}"]
    if num_gpus is not None:
        command.append(f"--num-gpus={num_gpus}")
    started = subprocess.run(command, env=_ray_env(), capture_output=True, text=True)
    if started.returncode != 0 and "already running" not in (started.stderr + started.stdout):
        raise unavailable(f"`ray start` failed: {started.stderr.strip().splitlines()[-1:]}",
                          reason="RAY_START_FAILED")
    _quiet_ray_logs()
    ray.init(address="auto", log_to_driver=False, logging_level=logging.WARNING)
    http_port = free_port()
    on_step(f"starting Serve (gRPC ingress on 127.0.0.1:{grpc_port})")
    hosting.start_serve(grpc_port, http_port, services)
    hosting.deploy(services, lambda name, seconds: on_step(f"deployed {name} in {seconds:.1f} s"))
    record = {"grpc_address": f"127.0.0.1:{grpc_port}", "http_port": http_port,
              "services": services}
    path = stack_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    return record


def status() -> dict[str, Any]:
    """The recorded stack and each application's status from Serve."""
    import ray

    from kantoku.services import hosting

    path = stack_file()
    if not path.exists():
        raise unavailable("the local stack is not running; start it with `kantoku up`",
                          reason="STACK_DOWN")
    record = json.loads(path.read_text())
    _quiet_ray_logs()
    try:
        ray.init(address="auto", log_to_driver=False, logging_level=logging.WARNING)
    except ConnectionError:
        raise unavailable("the local stack is recorded but Ray is not running; run "
                          "`kantoku down` then `kantoku up`", reason="STACK_DOWN") from None
    record["applications"] = hosting.application_status()
    return record


def down(on_step: Callable[[str], None]) -> None:
    """Shut Serve down and stop the Ray head node."""
    import ray
    from ray import serve

    _quiet_ray_logs()
    try:
        ray.init(address="auto", log_to_driver=False, logging_level=logging.WARNING)
        on_step("shutting Serve down")
        serve.shutdown()
        ray.shutdown()
    except ConnectionError:
        on_step("Ray was not running")
    on_step("stopping Ray")
    subprocess.run([_ray_cli(), "stop", "--force"], env=_ray_env(), capture_output=True)
    stack_file().unlink(missing_ok=True)

