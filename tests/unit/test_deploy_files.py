"""deploy/'s files checked without Docker or Kubernetes: the Dockerfiles with hadolint, the
entrypoint with ShellCheck, the RayService against KubeRay's CRD schema, compose.yaml against the
Compose Specification's schema, and the references between them (images, roles, volumes,
secrets, probes); GPU requests fit the worker groups."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from kantoku.services.catalog import SERVICES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKER = DEPLOY / "docker"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile.*"))
MANIFEST = DEPLOY / "kuberay" / "rayservice.yaml"
STORAGE = DEPLOY / "kuberay" / "storage.yaml"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "env.example"
DATA = ROOT / "tests" / "data"
BIN = Path(sys.executable).parent
HEALTHCHECK_IN_IMAGE = "/usr/local/bin/kantoku-healthcheck"


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a linter installed with the dev extra; skip only where its binary cannot run here."""
    tool = BIN / name
    if not tool.exists():
        pytest.fail(f"{name} is missing: install the dev extra (pip install -e '.[dev]')")
    try:
        return subprocess.run([str(tool), *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
    except OSError as error:  # e.g. no binary of it for this platform
        pytest.skip(f"{name} cannot run on this platform: {error}")


# Dockerfiles


def test_there_is_a_dockerfile_per_role() -> None:
    assert {p.suffix for p in DOCKERFILES} == {".cpu", ".gpu", ".studio"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    result = run_tool("hadolint", "--config", str(DOCKER / "hadolint.yaml"),
                      "--failure-threshold", "info", "--no-color", str(dockerfile))
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_finds_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\n")
    result = run_tool("hadolint", "--config", str(DOCKER / "hadolint.yaml"), "--no-color",
                      str(bad))
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_shellcheck_passes_on_the_entrypoint() -> None:
    result = run_tool("shellcheck", str(DOCKER / "entrypoint.sh"))
    assert result.returncode == 0, result.stdout + result.stderr


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", dockerfile.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_the_image_runs_as_a_user_with_an_entrypoint_and_a_health_check(dockerfile: Path) -> None:
    stage = dict(final_stage(dockerfile))  # the last of each instruction counts
    user = stage["USER"].split(":")[0]
    # Numeric, not root: Kubernetes' runAsNonRoot can check it only when numeric.
    assert user.isdigit() and user != "0"
    assert "kantoku-entrypoint" in stage["ENTRYPOINT"]
    assert "kantoku-healthcheck" in stage["HEALTHCHECK"]
    for word, argument in instructions(dockerfile):
        if word == "FROM":
            image = argument.split()[0]
            assert ":" in image and not image.endswith(":latest"), image


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_copied_path_exists_and_reaches_the_build_context(dockerfile: Path) -> None:
    ignored = dockerignore_patterns()
    for word, argument in instructions(dockerfile):
        if word != "COPY" or "--from=" in argument:
            continue
        sources = argument.split()[:-1]
        for source in sources:
            if source == ".":
                continue
            assert (ROOT / source).exists(), f"{dockerfile.name}: COPY {source}: no such path"
            assert not any(_ignored(source.rstrip("/"), p) for p in ignored), (
                f"{dockerfile.name}: COPY {source} is left out by .dockerignore")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_the_health_check_and_entrypoint_land_where_the_probes_call_them(
        dockerfile: Path) -> None:
    copies = [a for w, a in final_stage(dockerfile) if w == "COPY"]
    assert f"deploy/docker/healthcheck.py {HEALTHCHECK_IN_IMAGE}" in copies
    assert "deploy/docker/entrypoint.sh /usr/local/bin/kantoku-entrypoint" in copies


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str, pattern: str) -> bool:
    pattern = pattern.removeprefix("**/")
    return path == pattern or path.startswith(pattern + "/")


def test_the_build_context_leaves_out_the_heavy_and_the_secret() -> None:
    patterns = dockerignore_patterns()
    for needed in (".git", ".venv", "out", "build", "**/__pycache__", ".mypy_cache",
                   ".pytest_cache", ".ruff_cache", "tests", "deploy/.env"):
        assert needed in patterns, f".dockerignore should leave out {needed}"
    for kept in ("pyproject.toml", "README.md", "agents", "planner", "services", "protos",
                 "constraints", "deploy/docker/entrypoint.sh"):
        assert not any(_ignored(kept, p) for p in patterns), f".dockerignore drops {kept}"


def test_requirements_helper_lists_the_extras() -> None:
    sys.path.insert(0, str(DOCKER))
    try:
        from requirements import requirements  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(DOCKER))
    listed = requirements(ROOT / "pyproject.toml", ["gpu", "postgres"])
    assert "torch==2.13.0" in listed and any(r.startswith("ray[serve]") for r in listed)
    assert any(r.startswith("langgraph-checkpoint-postgres") for r in listed)
    with pytest.raises(SystemExit, match="no extra named cuda"):
        requirements(ROOT / "pyproject.toml", ["cuda"])


def entrypoint_roles() -> set[str]:
    text = (DOCKER / "entrypoint.sh").read_text(encoding="utf-8")
    return set(re.findall(r"^\s+([a-z-]+)\)", text, flags=re.MULTILINE))


# KubeRay


def rayservice() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


def strict(schema: Any) -> Any:
    """The CRD's schema as kubectl's strict field validation applies it: an object with listed
    properties takes no others (a misspelt field fails instead of being dropped)."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema and \
                not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def crd_validator() -> jsonschema.Draft7Validator:
    schema = yaml.safe_load((DATA / "kuberay-v1.7.0-rayservice-schema.yaml").read_text())
    return jsonschema.Draft7Validator(strict(schema))


def errors(validator: jsonschema.Draft7Validator, document: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
            for e in validator.iter_errors(document)]


def test_rayservice_validates_against_kuberay_crd_schema() -> None:
    manifest = rayservice()
    assert (manifest["apiVersion"], manifest["kind"]) == ("ray.io/v1", "RayService")
    assert errors(crd_validator(), manifest) == []


def test_the_crd_check_catches_a_misspelt_field_and_a_wrong_type() -> None:
    manifest = rayservice()
    cluster = manifest["spec"]["rayClusterConfig"]
    cluster["enableInTreeAutoscalling"] = cluster.pop("enableInTreeAutoscaling")
    cluster["workerGroupSpecs"][0]["maxReplicas"] = "four"
    found = errors(crd_validator(), manifest)
    assert any("enableInTreeAutoscalling" in e for e in found)
    assert any("maxReplicas" in e for e in found)


def ray_containers(manifest: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    cluster = manifest["spec"]["rayClusterConfig"]
    yield "head", cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    for group in cluster["workerGroupSpecs"]:
        yield group["groupName"], group["template"]["spec"]["containers"][0]


def probe_commands(container: dict[str, Any]) -> list[list[str]]:
    return [container[p]["exec"]["command"] for p in ("readinessProbe", "livenessProbe")
            if "exec" in container.get(p, {})]


def test_every_ray_container_brings_probes_that_work_in_the_image() -> None:
    """KubeRay injects its own probes only where a container has none; for RayService workers
    they call wget, which the images lack. Ours call the image's health check."""
    for group, container in ray_containers(rayservice()):
        assert "readinessProbe" in container and "livenessProbe" in container, group
        for command in probe_commands(container):
            assert command[0] == HEALTHCHECK_IN_IMAGE, (group, command)
            assert not {"wget", "curl"} & set(" ".join(command).split()), (group, command)
        if group != "head":
            # As KubeRay's own: a worker takes traffic once its Serve proxy answers.
            readiness = container["readinessProbe"]["exec"]["command"]
            assert "http://127.0.0.1:8000/-/healthz" in readiness and "ray" in readiness


def test_the_probes_ask_the_ray_agent_and_the_serve_proxy() -> None:
    sys.path.insert(0, str(DOCKER))
    try:
        from healthcheck import url_for  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(DOCKER))
    assert url_for("ray") == "http://127.0.0.1:52365/api/healthz"
    assert url_for("http://127.0.0.1:8000/-/healthz") == "http://127.0.0.1:8000/-/healthz"


def test_every_pod_mounts_the_shared_home_and_takes_secrets_from_the_secret() -> None:
    manifest = rayservice()
    claim = yaml.safe_load(STORAGE.read_text(encoding="utf-8"))
    assert claim["kind"] == "PersistentVolumeClaim"
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    cluster = manifest["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]["template"]["spec"]] + [
        g["template"]["spec"] for g in cluster["workerGroupSpecs"]]
    for pod in pods:
        volumes = {v["name"]: v for v in pod["volumes"]}
        container = pod["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        home = env["KANTOKU_HOME"]["value"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert volumes[mounts[home]]["persistentVolumeClaim"]["claimName"] == \
            claim["metadata"]["name"]
        for name in ("KANTOKU_AUTH_TOKEN", "KANTOKU_CHECKPOINT_URL"):
            assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "kantoku", name
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]


def test_settings_the_serve_build_reads_are_in_runtime_env_not_only_on_pods() -> None:
    manifest = rayservice()
    config = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    apps = {a["name"]: a for a in config["applications"]}
    for name in SERVICES:
        env = apps[name].get("runtime_env", {}).get("env_vars", {})
        assert f"KANTOKU_{name.upper()}_NUM_GPUS" in env, name
    names = "|".join(n.upper() for n in SERVICES)
    per_service = re.compile(rf"KANTOKU_({names})_")
    for group, container in ray_containers(manifest):
        on_pod = [e["name"] for e in container.get("env", []) if per_service.match(e["name"])]
        assert on_pod == [], f"{group}: set {on_pod} in serveConfigV2's runtime_env"


def test_autoscaling_is_on_for_the_cluster_and_the_gpu_services() -> None:
    manifest = rayservice()
    cluster = manifest["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    for group in cluster["workerGroupSpecs"]:
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], group
    config = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    apps = {a["name"]: a for a in config["applications"]}
    for name in ("image", "video"):
        scaling = json.loads(apps[name]["runtime_env"]["env_vars"][
            f"KANTOKU_{name.upper()}_AUTOSCALING"])
        assert scaling["max_replicas"] > scaling["min_replicas"] >= 1


def test_images_are_built_by_a_dockerfile_at_the_project_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    built = compose_images()
    for group, container in ray_containers(rayservice()):
        name, _, tag = container["image"].rpartition(":")
        assert container["image"] in built, f"{group}: no Dockerfile builds {container['image']}"
        assert tag == version, group
    gpu_groups = [g for g, c in ray_containers(rayservice())
                  if "nvidia.com/gpu" in c["resources"]["limits"]]
    for group, container in ray_containers(rayservice()):
        wants = "Dockerfile.gpu" if group in gpu_groups else "Dockerfile.cpu"
        assert built[container["image"]].endswith(wants), group


# GPU and CPU requests against what the worker groups offer


def replica_requests(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float, float, int, int]]:
    """(application, gpus, cpus, min replicas, max replicas) of each application, read from the
    deployments the builders make with each application's runtime_env."""
    from tests.unit.test_deploy_config import built_deployment, kuberay_serve_config

    found = []
    for app in kuberay_serve_config().applications:
        with monkeypatch.context() as patch:
            deployment = built_deployment(app, patch)
        options = deployment.ray_actor_options or {}
        scaling = deployment._deployment_config.autoscaling_config
        low, high = ((scaling.min_replicas, scaling.max_replicas) if scaling
                     else (deployment.num_replicas, deployment.num_replicas))
        found.append((app.name, float(options.get("num_gpus") or 0),
                      float(options.get("num_cpus", 1)), low, high))
    return found


def node_capacity(manifest: dict[str, Any], pods: str) -> list[list[float]]:
    """[gpus, cpus] free on each Ray node, with each worker group at `pods` (minReplicas or
    maxReplicas); Ray takes a pod's CPUs from its limits unless rayStartParams say otherwise."""
    cluster = manifest["spec"]["rayClusterConfig"]
    head = cluster["headGroupSpec"]
    nodes = [[0.0, float(head["rayStartParams"].get(
        "num-cpus", head["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"]))]]
    for group in cluster["workerGroupSpecs"]:
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        cpus = float(group["rayStartParams"].get("num-cpus", limits["cpu"]))
        gpus = float(group["rayStartParams"].get("num-gpus", limits.get("nvidia.com/gpu", 0)))
        nodes += [[gpus, cpus] for _ in range(group[pods])]
    return nodes


def place(replicas: list[tuple[str, float, float]], nodes: list[list[float]]) -> list[str]:
    """First fit, largest first; returns the replicas that find no node."""
    unplaced = []
    for name, gpus, cpus in sorted(replicas, key=lambda r: (-r[1], -r[2])):
        for node in nodes:
            if node[0] + 1e-9 >= gpus and node[1] + 1e-9 >= cpus:
                node[0] -= gpus
                node[1] -= cpus
                break
        else:
            unplaced.append(name)
    return unplaced


def test_gpu_and_cpu_requests_fit_the_worker_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = rayservice()
    requests = replica_requests(monkeypatch)
    per_pod_gpus = max(n[0] for n in node_capacity(manifest, "maxReplicas"))
    for name, gpus, _, _, _ in requests:
        assert gpus <= per_pod_gpus, f"{name}: one replica asks {gpus} GPUs; a pod has at most"
    # At the groups' minimum every application's minimum runs; at their maximum, every maximum.
    at_min = [(n, g, c) for n, g, c, low, _ in requests for _ in range(low)]
    at_max = [(n, g, c) for n, g, c, _, high in requests for _ in range(high)]
    assert place(at_min, node_capacity(manifest, "minReplicas")) == []
    assert place(at_max, node_capacity(manifest, "maxReplicas")) == []


def test_the_fit_check_sees_too_many_gpus() -> None:
    nodes = [[1.0, 8.0], [1.0, 8.0]]
    asked = [("image", 1.0, 2.0), ("video", 1.0, 2.0), ("tts", 0.25, 1.0)]
    assert place(asked, nodes) == ["tts"]


# compose


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} against `env`."""

    def value(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2) or "", match.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise AssertionError(f"compose needs {name}: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(:-|:\?)?([^}]*)\}", value, text)


def example_env(commented: bool) -> dict[str, str]:
    """deploy/env.example's settings; with `commented`, the optional ones too."""
    env = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^(# )?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match and (commented or not match.group(1)):
            env[match.group(2)] = match.group(3)
    return env


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    text = interpolate(COMPOSE.read_text(encoding="utf-8"), env or example_env(False))
    return yaml.safe_load(text)


def compose_images() -> dict[str, str]:
    """image name → the Dockerfile compose builds it from (one Dockerfile per image)."""
    images: dict[str, str] = {}
    for name, service in compose()["services"].items():
        if "build" in service:
            dockerfile = service["build"]["dockerfile"]
            assert images.setdefault(service["image"], dockerfile) == dockerfile, name
    return images


def test_compose_validates_against_the_compose_spec() -> None:
    schema = json.loads((DATA / "compose-spec.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    for commented in (False, True):
        assert errors(validator, compose(example_env(commented))) == []


def test_compose_builds_from_existing_dockerfiles_and_runs_known_roles() -> None:
    document = compose()
    roles = entrypoint_roles()
    assert {"ray-head", "ray-worker", "studio", "avatar"} <= roles
    for name, service in document["services"].items():
        if "build" not in service:
            continue
        context = (COMPOSE.parent / service["build"]["context"]).resolve()
        assert context == ROOT, name
        assert (context / service["build"]["dockerfile"]).is_file(), name
        assert service["command"][0] in roles, f"{name}: the entrypoint has no role " \
                                               f"{service['command'][0]}"
    assert {"postgres", "ray-head", "worker-cpu", "worker-gpu", "studio", "avatar"} <= set(
        document["services"])


def test_compose_references_are_defined() -> None:
    document = compose()
    services = document["services"]
    for name, service in services.items():
        for secret in service.get("secrets", []):
            assert secret in document["secrets"], (name, secret)
        for config in service.get("configs", []):
            assert config["source"] in document["configs"], (name, config)
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in document["volumes"], (name, volume)
        for other, condition in service.get("depends_on", {}).items():
            assert other in services, (name, other)
            if condition["condition"] == "service_healthy":
                has_check = "healthcheck" in services[other] or "build" in services[other]
                assert has_check, f"{name} waits for {other}, which has no health check"
    for config in document["configs"].values():
        assert (COMPOSE.parent / config["file"]).is_file()


def test_compose_shares_one_home_and_keeps_secrets_out_of_the_environment() -> None:
    services = compose()["services"]
    kantoku = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("kantoku")}
    for name, service in kantoku.items():
        env = service["environment"]
        assert f"kantoku-home:{env['KANTOKU_HOME']}" in service["volumes"], name
        assert "KANTOKU_AUTH_TOKEN" not in env, name
        assert env["KANTOKU_AUTH_TOKEN_FILE"] == "/run/secrets/kantoku_auth_token", name
    studio = services["studio"]["environment"]
    assert studio["KANTOKU_CHECKPOINT_URL"].startswith("postgresql://")
    assert "@" in studio["KANTOKU_CHECKPOINT_URL"] and ":" not in \
        studio["KANTOKU_CHECKPOINT_URL"].split("//")[1].split("@")[0], "no password in the URL"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/")


def test_every_compose_ray_node_carries_the_settings_the_serve_build_reads() -> None:
    services = compose()["services"]
    ray_nodes = {n: s for n, s in services.items() if s.get("command", [""])[0].startswith("ray-")}
    assert set(ray_nodes) == {"ray-head", "worker-cpu", "worker-gpu"}
    for name, service in ray_nodes.items():
        for service_name in ("IMAGE", "VIDEO"):
            assert f"KANTOKU_{service_name}_NUM_GPUS" in service["environment"], name


def test_compose_gpu_settings_fit_its_gpu_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """With env.example's GPU settings, image and video at their minimum share the one GPU."""
    from tests.unit.test_deploy_config import built_deployment, compose_serve_config

    env = example_env(True)
    services = compose(env)["services"]
    worker = services["worker-gpu"]
    offered = float(next(a.split("=")[1] for a in worker["command"]
                         if a.startswith("--num-gpus=")))
    devices = worker["deploy"]["resources"]["reservations"]["devices"][0]
    assert devices["count"] == offered
    asked = 0.0
    for app in compose_serve_config().applications:
        with monkeypatch.context() as patch:
            for name, value in worker["environment"].items():
                if name.startswith("KANTOKU_"):
                    patch.setenv(name, str(value))
            deployment = built_deployment(app, patch)
        scaling = deployment._deployment_config.autoscaling_config
        low = scaling.min_replicas if scaling else deployment.num_replicas
        asked += low * float(deployment.ray_actor_options.get("num_gpus") or 0)
    assert 0 < asked <= offered


def test_compose_serve_config_is_the_one_the_head_deploys() -> None:
    head = compose()["services"]["ray-head"]
    target = head["environment"]["KANTOKU_SERVE_CONFIG"]
    [config] = [c for c in head["configs"] if c["target"] == target]
    assert compose()["configs"][config["source"]]["file"] == "./serve.yaml"
    assert copy.deepcopy(head["command"])[0] == "ray-head"
