"""The studio's test fixtures, one of each per module: the image and video services on a
standalone server (the studio's briefs have no dialogue), a studio on them, and a client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture(scope="module")
def services() -> Iterator[str]:
    from tests.integration.test_jobs import standalone_services

    with standalone_services("image", "video") as address:
        yield address


@pytest.fixture(scope="module")
def studio(services: str) -> Iterator[str]:
    from tests.integration.test_studio_api import running_studio

    with running_studio(services) as url:
        yield url


@pytest.fixture
def api(studio: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=studio, timeout=60) as client:
        yield client
