"""The studio as a Ray Serve application: the same API behind Serve's HTTP proxy, a job planned
through it on the services."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.integration.test_studio_api import BRIEF, wait_for

# A Ray cluster of its own (20 to 30 s): `make test-slow`.
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_studio_answers_through_serve_and_plans_a_job() -> None:
    import ray
    from ray import serve

    from kantoku.agents.studio.serve import APPLICATION, ROUTE_PREFIX, deploy_studio
    from kantoku.services import hosting
    from kantoku.services._core.server import free_port
    from tests.integration.test_jobs import standalone_services

    with standalone_services("image", "video") as services:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
        try:
            http_port = free_port()
            hosting.start_serve(free_port(), http_port, names=[])
            deploy_studio(services)
            assert serve.status().applications[APPLICATION].status.value == "RUNNING"
            with httpx.Client(base_url=f"http://127.0.0.1:{http_port}{ROUTE_PREFIX.rstrip('/')}",
                              timeout=30) as api:
                assert api.get("/healthz").json() == {"status": "ok"}
                created = api.post("/v1/jobs", json={"brief": BRIEF})
                assert created.status_code == 201, created.text
                job = wait_for(api, created.json()["id"], "awaiting_review")
                assert job["plan"]["shots"], job
                assert api.post(f"/v1/jobs/{job['id']}:cancel").json()["status"] == "cancelled"
        finally:
            serve.shutdown()
            ray.shutdown()
