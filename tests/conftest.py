"""Shared fixtures: an isolated KANTOKU_HOME, voices loaded once, in-process gRPC servers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kantoku.services._core.server import free_port

# Every test process gets its own home before anything reads settings.
if "KANTOKU_TEST_HOME" not in os.environ:
    import tempfile

    os.environ["KANTOKU_TEST_HOME"] = tempfile.mkdtemp(prefix="kantoku-test-")
os.environ["KANTOKU_HOME"] = os.environ["KANTOKU_TEST_HOME"]
os.environ.pop("KANTOKU_AUTH_TOKEN", None)
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def home() -> Path:
    return Path(os.environ["KANTOKU_HOME"])


@pytest.fixture(scope="session")
def tts_backends(home: Path):  # noqa: ANN201
    from kantoku.services.tts.factory import build_backends

    return build_backends(["piper", "kokoro"])


@pytest.fixture(scope="session")
def store(home: Path):  # noqa: ANN201
    from kantoku.services._core.assets import AssetStore

    return AssetStore(home / "assets")


@pytest.fixture(scope="session")
def tts_servicer(tts_backends, store):  # noqa: ANN001, ANN201
    from kantoku.services.tts.servicer import TtsServicer

    return TtsServicer(tts_backends, store)


@pytest.fixture(scope="session")
def motion_servicer(store):  # noqa: ANN001, ANN201
    from kantoku.services._core.registry import ModelRegistry
    from kantoku.services.motion.backends.rules import RuleMotionBackend
    from kantoku.services.motion.servicer import MotionServicer

    return MotionServicer(RuleMotionBackend(ModelRegistry()), store)


async def _serve(tts_servicer, motion_servicer, token: str | None):  # noqa: ANN001, ANN202
    from kantoku.services._core.server import ServiceBinding, start_server
    from kantoku.services._core.settings import CoreSettings
    from kantoku.v1 import motion_pb2_grpc, tts_pb2_grpc

    settings = CoreSettings(auth_token=token)
    bindings = [
        ServiceBinding(tts_servicer, tts_pb2_grpc.add_TtsServiceServicer_to_server,
                       "kantoku.v1.TtsService"),
        ServiceBinding(motion_servicer, motion_pb2_grpc.add_MotionServiceServicer_to_server,
                       "kantoku.v1.MotionService"),
    ]
    return await start_server(bindings, port=0, settings=settings)


@pytest.fixture
async def server(tts_servicer, motion_servicer) -> AsyncIterator:  # noqa: ANN001
    running = await _serve(tts_servicer, motion_servicer, None)
    yield running
    await running.stop()


@pytest.fixture
async def secured_server(tts_servicer, motion_servicer) -> AsyncIterator:  # noqa: ANN001
    running = await _serve(tts_servicer, motion_servicer, "s3cret-token")
    yield running
    await running.stop()


@pytest.fixture
async def client(server) -> AsyncIterator:  # noqa: ANN001
    from kantoku.services._core.client import ServiceClient

    async with ServiceClient(server.address, attempts=1) as c:
        yield c


@pytest.fixture
def port() -> Iterator[int]:
    yield free_port()


@pytest.fixture(scope="session")
def image_servicer(store):  # noqa: ANN001, ANN201
    from kantoku.services._core.registry import ModelRegistry
    from kantoku.services.image.backends.previz import PrevizBackend
    from kantoku.services.image.servicer import ImageServicer

    registry = ModelRegistry()
    return ImageServicer({"previz-v1": PrevizBackend(registry)}, store, registry)


@pytest.fixture(scope="session")
def video_servicer(store):  # noqa: ANN001, ANN201
    from kantoku.services._core.registry import ModelRegistry
    from kantoku.services.video.backends.animatic import AnimaticBackend
    from kantoku.services.video.servicer import VideoServicer

    return VideoServicer({"animatic-v1": AnimaticBackend(ModelRegistry())}, store)


@pytest.fixture
async def visual_client(image_servicer, video_servicer) -> AsyncIterator:  # noqa: ANN001
    from kantoku.services._core.client import ServiceClient
    from kantoku.services._core.server import ServiceBinding, start_server
    from kantoku.v1 import image_pb2_grpc, video_pb2_grpc

    running = await start_server([
        ServiceBinding(image_servicer, image_pb2_grpc.add_ImageServiceServicer_to_server,
                       "kantoku.v1.ImageService"),
        ServiceBinding(video_servicer, video_pb2_grpc.add_VideoServiceServicer_to_server,
                       "kantoku.v1.VideoService"),
    ], port=0)
    async with ServiceClient(running.address, attempts=1) as c:
        yield c
    await running.stop()


def blob_count(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file())


def make_song(path: Path, seconds: float) -> Path:
    """The example song (`examples/make_song.py`) at `seconds`, written as a WAV to `path`."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "examples" / "make_song.py"
    spec = importlib.util.spec_from_file_location("make_song", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_wav(path, module.synthesize(seconds))
    return path


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL server for the test run, started on first use; its URL.

    pgserver embeds a PostgreSQL 16 build and listens on a Unix socket in its data folder only
    (no TCP port). As root it runs the server as the system user `pgserver` (it creates that
    user with `useradd` the first time and opens read/traverse permissions on the data
    folder's parents), since postgres refuses to run as root.
    """
    pgserver = pytest.importorskip("pgserver", reason="pip install -e '.[dev]' (pgserver)")
    pytest.importorskip("psycopg", reason="pip install -e '.[postgres]'")
    database = pgserver.get_server(tmp_path_factory.mktemp("postgres") / "data",
                                   cleanup_mode="delete")
    try:
        yield database.get_uri()
    finally:
        database.cleanup()  # pg_ctl stop, then the data folder is removed


def postgres_schema(url: str) -> str:
    """`url` with a new, empty schema first on its search path: a test's own tables."""
    import uuid

    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
