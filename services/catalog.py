"""Every service kantoku hosts, described once for both standalone and Ray Serve hosting."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kantoku.services._core.errors import invalid
from kantoku.services._core.settings import DeploymentSettings


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    full_name: str
    #: "module:function" of the generated add_XServicer_to_server.
    add_to_server: str
    #: "module:function" that builds the servicer (loads the models).
    factory: str
    #: "module:Class" of the DeploymentSettings subclass.
    settings: str

    def load(self, ref: str) -> Any:
        module, _, attr = ref.partition(":")
        return getattr(importlib.import_module(module), attr)

    def build(self) -> Any:
        return self.load(self.factory)()

    def add_function(self) -> Callable[[Any, Any], None]:
        return self.load(self.add_to_server)

    def deployment_settings(self) -> DeploymentSettings:
        return self.load(self.settings)()

    @property
    def servicer_function_path(self) -> str:
        """Dotted path Ray Serve's gRPC proxy imports."""
        return self.add_to_server.replace(":", ".")


SERVICES: dict[str, ServiceSpec] = {
    "tts": ServiceSpec(
        "tts", "kantoku.v1.TtsService",
        "kantoku.v1.tts_pb2_grpc:add_TtsServiceServicer_to_server",
        "kantoku.services.tts.factory:build_servicer",
        "kantoku.services.tts.settings:TtsSettings",
    ),
    "motion": ServiceSpec(
        "motion", "kantoku.v1.MotionService",
        "kantoku.v1.motion_pb2_grpc:add_MotionServiceServicer_to_server",
        "kantoku.services.motion.factory:build_servicer",
        "kantoku.services.motion.settings:MotionSettings",
    ),
    "asr": ServiceSpec(
        "asr", "kantoku.v1.AsrService",
        "kantoku.v1.asr_pb2_grpc:add_AsrServiceServicer_to_server",
        "kantoku.services.asr.factory:build_servicer",
        "kantoku.services.asr.settings:AsrSettings",
    ),
    "image": ServiceSpec(
        "image", "kantoku.v1.ImageService",
        "kantoku.v1.image_pb2_grpc:add_ImageServiceServicer_to_server",
        "kantoku.services.image.factory:build_servicer",
        "kantoku.services.image.settings:ImageSettings",
    ),
    "video": ServiceSpec(
        "video", "kantoku.v1.VideoService",
        "kantoku.v1.video_pb2_grpc:add_VideoServiceServicer_to_server",
        "kantoku.services.video.factory:build_servicer",
        "kantoku.services.video.settings:VideoSettings",
    ),
}


def get_service(name: str) -> ServiceSpec:
    if name not in SERVICES:
        raise invalid(f"unknown service {name!r}; choose one of {', '.join(SERVICES)}",
                      reason="SERVICE_UNKNOWN")
    return SERVICES[name]
