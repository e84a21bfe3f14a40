"""Ray Serve hosting: every service as one deployment behind Serve's gRPC ingress.

The same servicer classes run here and on the standalone grpc.aio server. Serve's gRPC proxy
runs no interceptors, so the bearer-token check happens in the deployment before each call.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from kantoku.services._core.auth import check_token
from kantoku.services._core.errors import KantokuError
from kantoku.services._core.rpc import empty_response, fail
from kantoku.services._core.settings import DeploymentSettings, core_settings
from kantoku.services.capacity import serve_capacities
from kantoku.services.catalog import SERVICES, ServiceSpec, get_service
from kantoku.v1 import common_pb2


class HostedService:
    """A Serve deployment wrapping one servicer; RPC names resolve to the servicer's methods."""

    def __init__(self, service_name: str) -> None:
        self._spec = get_service(service_name)
        self._servicer = self._spec.build()
        self._token = core_settings().token

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        method = self._capacity if name == "GetCapacity" else getattr(self._servicer, name)
        return _guarded(method, self._token) if callable(method) else method

    async def _capacity(self, request: common_pb2.GetCapacityRequest,
                        grpc_context: Any = None) -> common_pb2.GetCapacityResponse:
        """GetCapacity on Serve: this application's replicas, from Serve's controller."""
        from ray import serve

        application = serve.get_replica_context().app_name
        found = await asyncio.to_thread(serve_capacities, [application])
        return common_pb2.GetCapacityResponse(hosted=True,
                                              deployments=[c.to_proto() for c in found])

    def placement(self) -> dict[str, Any]:
        """Where this replica runs: Ray node, assigned GPU ids, process (for ops and tests)."""
        import ray

        context = ray.get_runtime_context()
        return {"node_id": context.get_node_id(), "node_ip": ray.util.get_node_ip_address(),
                "gpu_ids": [str(g) for g in ray.get_gpu_ids()], "pid": os.getpid()}

    def check_health(self) -> None:
        """Serve restarts the replica when its asset store stops being writable."""
        root = self._servicer.store.root
        if not os.access(root, os.W_OK):
            raise RuntimeError(f"{self._spec.name}: asset store {root} is not writable")


def _guarded(method: Callable[..., Any], token: str | None) -> Callable[..., Any]:
    """Check the bearer token from the call metadata before running `method`."""
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(request: Any, grpc_context: Any = None) -> Any:
            try:
                check_token(grpc_context.invocation_metadata(), token)
            except KantokuError as err:
                await fail(grpc_context, err)
                yield empty_response(method)  # carries the status through Serve's proxy
                return
            async for item in method(request, grpc_context):
                yield item

        return stream

    @functools.wraps(method)
    async def unary(request: Any, grpc_context: Any = None) -> Any:
        try:
            check_token(grpc_context.invocation_metadata(), token)
        except KantokuError as err:
            await fail(grpc_context, err)
            return empty_response(method)
        return await method(request, grpc_context)

    return unary


def _forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("KANTOKU_")}


def actor_options(settings: DeploymentSettings) -> dict[str, Any]:
    """What each replica asks Ray for: CPUs, GPUs, the GPU kind and custom resources."""
    options: dict[str, Any] = {
        "num_cpus": settings.num_cpus,
        "num_gpus": settings.num_gpus,
        "runtime_env": {"env_vars": _forwarded_env()},
    }
    if settings.accelerator_type:
        options["accelerator_type"] = settings.accelerator_type
    if settings.resources:
        options["resources"] = dict(settings.resources)
    return options


def build_application(spec: ServiceSpec) -> Any:
    from ray import serve

    from kantoku.services.routing import least_loaded

    settings = spec.deployment_settings()
    # Serve refuses a fixed replica count beside an autoscaling config.
    replicas: dict[str, Any] = (
        {"autoscaling_config": settings.autoscaling.model_dump()} if settings.autoscaling
        else {"num_replicas": settings.num_replicas})
    deployment = serve.deployment(
        name=f"{spec.name}-service",
        max_ongoing_requests=settings.ongoing_limit(),
        # Every call to the least-loaded replica (services/routing.py).
        request_router_config=least_loaded(),
        ray_actor_options=actor_options(settings),
        **replicas,
    )(HostedService)
    return deployment.bind(spec.name)


#: The interface Serve's gRPC proxy listens on, read by `bind_grpc_host` in the proxy's process.
GRPC_HOST_ENV = "KANTOKU_SERVE_GRPC_HOST"
#: Ray runs this import path in every worker it starts (the controller's and its children).
_SETUP_HOOK_ENV = "__RAY_WORKER_PROCESS_SETUP_HOOK_ENV_VAR"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def bind_grpc_host() -> None:
    """Ray worker setup hook: make Serve's gRPC proxy listen on `KANTOKU_SERVE_GRPC_HOST`.

    ray 2.60's `gRPCOptions` has no host: the proxy always adds `[::]:PORT` (every interface)
    through `ray.serve._private.default_impl.add_grpc_address`, which this replaces.
    """
    host = os.environ.get(GRPC_HOST_ENV, "")
    if not host or host in ("::", "[::]"):
        return
    from ray.serve._private import default_impl

    add = default_impl.add_grpc_address
    bracketed = f"[{host}]" if ":" in host else host

    def on_host(server: Any, address: str) -> None:
        if address.startswith("[::]:"):
            address = f"{bracketed}:{address.rpartition(':')[2]}"
        add(server, address)

    setattr(default_impl, "add_grpc_address", on_host)  # noqa: B010 (a patch of ray's module)


def start_serve(grpc_port: int, http_port: int, names: Sequence[str] = tuple(SERVICES),
                host: str = "127.0.0.1") -> None:
    """Start Serve's proxies, gRPC ingress for `names` and HTTP on `host` (Ray must be
    initialised).

    The proxies inherit the controller's environment, so its setup hook binds them to `host`.
    """
    from ray import serve
    from ray.serve.config import ControllerOptions, HTTPOptions, gRPCOptions

    specs = [get_service(n) for n in names]
    hook = f"{__name__}.{bind_grpc_host.__name__}"
    serve.start(
        http_options=HTTPOptions(host=host, port=http_port),
        grpc_options=gRPCOptions(
            port=grpc_port,
            grpc_servicer_functions=[s.servicer_function_path for s in specs],
        ),
        controller_options=ControllerOptions(runtime_env={"env_vars": {
            GRPC_HOST_ENV: host, _SETUP_HOOK_ENV: hook}}),
    )


def delete_applications(names: Sequence[str]) -> list[str]:
    """Remove the named Serve applications that exist; the rest of Serve is left running."""
    from ray import serve

    present = [name for name in names if name in serve.status().applications]
    for name in present:
        serve.delete(name)
    return present


def deploy(names: Sequence[str] = tuple(SERVICES),
           on_deployed: Callable[[str, float], None] | None = None) -> None:
    """Deploy each service as its own application, routed by the 'application' metadata."""
    from ray import serve

    for name in names:
        started = time.perf_counter()
        # A route prefix is required: the gRPC proxy does not find apps without one.
        serve.run(build_application(get_service(name)), name=name, route_prefix=f"/{name}")
        if on_deployed:
            on_deployed(name, time.perf_counter() - started)


def application_status() -> dict[str, str]:
    from ray import serve

    return {name: app.status.value for name, app in serve.status().applications.items()}


def replica_nodes() -> dict[str, list[str]]:
    """The node IP address of each running replica, per application (what `kantoku status`
    shows for a cluster). Serve's public API has no replica list: this reads the controller's
    instance details, as the dashboard and `serve status` do."""
    from ray.serve.context import _get_global_client

    client = _get_global_client()  # raises when Serve is not running
    assert client is not None
    details = client.get_serve_details()
    nodes: dict[str, list[str]] = {}
    for name, app in details.get("applications", {}).items():
        nodes[name] = sorted(replica.get("node_ip") or "?"
                             for deployment in app.get("deployments", {}).values()
                             for replica in deployment.get("replicas", [])
                             if replica.get("state") == "RUNNING")
    return nodes


def app_builder(args: dict[str, str]) -> Any:
    """Serve config entry point: `import_path: kantoku.services.hosting:app_builder` with
    `args: {service: tts}` (used by deploy/kuberay/rayservice.yaml and `serve deploy`)."""
    if "service" not in args:
        raise ValueError(f"args.service is required; one of {', '.join(SERVICES)}")
    return build_application(get_service(args["service"]))
