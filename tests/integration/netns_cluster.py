"""A Ray cluster of several hosts on one machine: each host is a Linux network namespace with its
own address on a private bridge (`ip netns` + veth, root only), running `ray start` there.

The namespaces share the filesystem, so KANTOKU_HOME (asset store, ledger, checkpoints) is
shared the way a ReadWriteMany volume is on a real cluster. Each Ray node gets its own temp dir:
Ray's Unix sockets live there, and two nodes sharing one race for the same socket names.
Everything is torn down on exit, also when the test fails: the processes in each namespace,
then the namespaces (their veth pairs go with them) and the bridge.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
#: The project's private range for these hosts: 10.213.N.0/24, N picked per run.
SUBNET = "10.213"
GCS_PORT = 6379


def missing() -> str | None:
    """Why a cluster of namespaces cannot be built here, or None when it can."""
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "building network namespaces (`ip netns`, veth, a bridge) needs root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    return None


@dataclass
class Host:
    """One machine of the cluster: a namespace, its address, and its Ray temp dir."""

    role: str
    netns: str
    ip: str
    veth: str
    temp_dir: Path
    ray_args: list[str] = field(default_factory=list)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


class NetnsCluster:
    """Hosts `head`, plus the workers named, on a bridge; the root namespace reaches them all."""

    def __init__(self, workers: Sequence[str], root: Path) -> None:
        tag = secrets.token_hex(2)
        self.prefix = f"kt{tag}"  # interface names stay under Linux's 15 characters
        self.net = f"{SUBNET}.{int(tag, 16) % 250 + 2}"
        self.bridge = f"{self.prefix}br"
        self.gateway = f"{self.net}.1"
        # Short: Ray's socket paths under it must fit a Unix socket name (107 bytes).
        self.root = Path(f"/tmp/{self.prefix}")
        self.home = root
        roles = ["head", *workers]
        self.hosts = {role: Host(role, f"{self.prefix}-{role}", f"{self.net}.{10 + i}",
                                 f"{self.prefix}v{i}", self.root / role)
                      for i, role in enumerate(roles)}

    @property
    def head(self) -> Host:
        return self.hosts["head"]

    @property
    def gcs_address(self) -> str:
        return f"{self.head.ip}:{GCS_PORT}"

    # -- the network ---------------------------------------------------------------------

    def create(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for host in self.hosts.values():
            _ip("netns", "add", host.netns)
            _ip("link", "add", host.veth, "type", "veth", "peer", "name", "eth0",
                "netns", host.netns)
            _ip("link", "set", host.veth, "master", self.bridge, "up")
            _ip("-n", host.netns, "addr", "add", f"{host.ip}/24", "dev", "eth0")
            _ip("-n", host.netns, "link", "set", "eth0", "up")
            _ip("-n", host.netns, "link", "set", "lo", "up")
            _ip("-n", host.netns, "route", "add", "default", "via", self.gateway)
            host.temp_dir.mkdir(parents=True, exist_ok=True)

    def pids(self, host: Host) -> list[int]:
        listed = _ip("netns", "pids", host.netns, check=False).stdout.split()
        return [int(pid) for pid in listed]

    def kill(self, host: Host, wait_s: float = 10.0) -> None:
        """kill -9 every process in the host's namespace, as a machine losing power would."""
        deadline = time.monotonic() + wait_s
        while (pids := self.pids(host)) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)

    def close(self) -> None:
        """Every process, namespace, veth and the bridge of this cluster; never raises."""
        for host in self.hosts.values():
            self.kill(host)
        for host in self.hosts.values():
            _ip("netns", "delete", host.netns, check=False)
            _ip("link", "delete", host.veth, check=False)  # gone with its namespace, normally
        _ip("link", "delete", self.bridge, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    # -- running things on a host --------------------------------------------------------

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items()
                if k not in ("RAY_ADDRESS", "KANTOKU_AUTH_TOKEN", "OPENAI_BASE_URL")}
        # HOME of its own: a token file in the user's ~/.ray (`ray get-auth-token --generate`)
        # makes the head's GCS demand the token from workers that do not send it.
        return {**base, "HOME": str(self.root), "KANTOKU_HOME": str(self.home),
                "RAY_USAGE_STATS_ENABLED": "0", **(extra or {})}

    def command(self, host: Host, *args: str) -> list[str]:
        return ["ip", "netns", "exec", host.netns, *args]

    def run(self, host: Host, *args: str, env: Mapping[str, str] | None = None,
            timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(host, *args), env=self.env(env), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def popen(self, host: Host, *args: str, env: Mapping[str, str] | None = None,
              log: Path) -> subprocess.Popen:
        with open(log, "w") as out:
            return subprocess.Popen(self.command(host, *args), env=self.env(env), stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def start_ray(self, host: Host, num_cpus: int, num_gpus: int = 0,
                  resources: Mapping[str, float] | None = None) -> None:
        """`ray start` on `host`: the head for role "head", else a worker joining it."""
        if not host.ray_args:
            args = [f"--node-ip-address={host.ip}", f"--num-cpus={num_cpus}",
                    f"--num-gpus={num_gpus}", "--object-store-memory=100000000",
                    "--disable-usage-stats", f"--temp-dir={host.temp_dir}"]
            if resources:
                args.append(f"--resources={json.dumps(dict(resources))}")
            if host is self.head:
                args += ["--head", f"--port={GCS_PORT}", "--include-dashboard=false"]
            else:
                args.append(f"--address={self.gcs_address}")
            host.ray_args = args
        self.restart_ray(host)

    def start_workers(self, hosts: Sequence[Host], num_cpus: int, num_gpus: int = 0,
                      resources: Mapping[str, float] | None = None) -> None:
        """`start_ray` on several workers at once (each takes seconds)."""
        with ThreadPoolExecutor(len(hosts)) as pool:
            for started in [pool.submit(self.start_ray, host, num_cpus, num_gpus, resources)
                            for host in hosts]:
                started.result()

    def restart_ray(self, host: Host) -> None:
        """`ray start` again on a host whose processes were killed, with its first arguments.
        A worker that cannot reach the head's GCS in time (a busy machine) is tried again."""
        for attempt in range(3):
            started = self.run(host, str(BIN / "ray"), "start", *host.ray_args, timeout=120)
            if started.returncode == 0:
                return
            self.kill(host)  # whatever the failed start left running
            time.sleep(2 + 3 * attempt)
        raise RuntimeError(f"ray start on {host.role} failed 3 times:\n{started.stderr[-2000:]}")

    def alive_nodes(self) -> set[str]:
        """The IP addresses of the nodes the head's GCS counts as alive."""
        script = ("import json, logging, ray; "
                  f"ray.init(address='{self.gcs_address}', logging_level=logging.ERROR); "
                  "print(json.dumps([n['NodeManagerAddress'] for n in ray.nodes() "
                  "if n['Alive']]))")
        done = self.run(self.head, sys.executable, "-c", script, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-2000:])
        return set(json.loads(done.stdout.strip().splitlines()[-1]))


@contextlib.contextmanager
def netns_cluster(workers: Sequence[str], home: Path) -> Iterator[NetnsCluster]:
    """A network of namespaces (head + `workers`), torn down whatever happens inside."""
    cluster = NetnsCluster(workers, home)
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.close()
