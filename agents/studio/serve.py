"""The studio as a Ray Serve application: the same FastAPI app behind Serve's HTTP proxy, so on a
cluster the studio sits beside the services (`kantoku up`, deploy/kuberay/rayservice.yaml).

One replica: a job's run and its event stream live in the process that started it (the
checkpoints, ledger and files are shared, so a replica started again finds every job).
"""

from __future__ import annotations

import os
import time
from typing import Any

#: The Serve application's name and its route (the page and /v1 sit at the root).
APPLICATION = "studio"
ROUTE_PREFIX = "/"


def build_studio(server: str | None = None) -> Any:
    """The studio deployment, bound: jobs render on the services at `server` (a gRPC address;
    None: the local stack's, as `kantoku studio` finds it)."""
    from ray import serve

    from kantoku.agents.studio.app import create_app

    environment = {k: v for k, v in os.environ.items() if k.startswith(("KANTOKU_", "OPENAI_"))}

    def studio_app() -> Any:  # built in the replica, not pickled from here
        return create_app(server=server)

    # num_cpus=0: the studio mostly waits on the services, and a CPU it held would be one a
    # service replica could not be scheduled on.
    @serve.deployment(name="studio", num_replicas=1, ray_actor_options={
        "num_cpus": 0, "runtime_env": {"env_vars": environment}})
    @serve.ingress(studio_app)
    class Studio:
        """The FastAPI app; its lifespan restores the jobs a replica finds on disk."""

    return Studio.bind()  # type: ignore[attr-defined]


def deploy_studio(server: str | None, url: str | None = None, timeout_s: float = 60.0) -> None:
    """Run the studio on Serve (Ray and Serve must be started); with `url` (where Serve's HTTP
    proxy listens), return once it answers there: the proxy can start listening after the
    application runs.

    Raises:
        KantokuError: UNAVAILABLE when the studio does not answer within `timeout_s`.
    """
    from ray import serve

    serve.run(build_studio(server), name=APPLICATION, route_prefix=ROUTE_PREFIX)
    if url is not None:
        wait_answering(f"{url.rstrip('/')}/healthz", timeout_s)


def wait_answering(url: str, timeout_s: float) -> None:
    import httpx

    from kantoku.services._core.errors import unavailable

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise unavailable(f"the studio on Serve does not answer at {url} after "
                              f"{timeout_s:.0f} s; see `ray status` and Serve's logs",
                              reason="STUDIO_UNAVAILABLE")
        time.sleep(0.25)


def app_builder(args: dict[str, str]) -> Any:
    """Serve config entry point: `import_path: kantoku.agents.studio.serve:app_builder`, with
    `args: {server: HOST:PORT}` naming the services' gRPC ingress."""
    return build_studio(args.get("server"))
