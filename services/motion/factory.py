"""Builds the motion servicer."""

from __future__ import annotations

from kantoku.services._core.assets import AssetStore
from kantoku.services._core.registry import ModelRegistry
from kantoku.services._core.settings import core_settings
from kantoku.services.motion.backends.rules import RuleMotionBackend
from kantoku.services.motion.servicer import MotionServicer


def build_servicer() -> MotionServicer:
    store = AssetStore(core_settings().assets_dir)
    return MotionServicer(RuleMotionBackend(ModelRegistry()), store)
