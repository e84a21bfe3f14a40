"""Model registry: what each model, voice and adapter is, who holds it and under which license.

The shipped `models.yaml` lists the embedded models; `$KANTOKU_HOME/models.yaml` holds additions.
"""

from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from kantoku.services._core.assets import sha256_file
from kantoku.services._core.errors import internal, invalid, not_found
from kantoku.services._core.files import read_text_file
from kantoku.services._core.settings import CoreSettings, core_settings
from kantoku.v1 import common_pb2

#: Largest $KANTOKU_HOME/models.yaml read (checked before reading).
MAX_REGISTRY_BYTES = 1 << 20

#: What a model, voice or adapter id may be: safe in a path, a URL, a shell and a log line.
MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MODEL_ID_RULE = ("a letter or digit, then up to 63 letters, digits, '.', '_' or '-' (no '/', "
                 "spaces, newlines or shell characters)")


def check_model_id(value: str) -> str:
    """`value` when it is a model id (see MODEL_ID_PATTERN); ValueError naming the rule if not."""
    if not re.fullmatch(MODEL_ID_PATTERN, value):
        raise ValueError(f"{value!r} is not a model id: use {MODEL_ID_RULE}")
    return value


#: A registry id, wherever one enters (models.yaml, `kantoku models add`, briefs, settings).
ModelId = Annotated[str, AfterValidator(check_model_id)]

ModelKind = Literal["tts", "asr", "motion", "image", "video", "llm", "adapter", "ip_adapter"]


class WeightsEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)


class ModelEntry(BaseModel):
    """One registry row."""

    model_config = ConfigDict(extra="forbid")
    id: ModelId
    kind: ModelKind
    version: str
    family: str
    source: str
    license: str
    commercial_use: bool
    rights_holder: str
    training_data: str
    #: Every training sample was given with the holder's explicit opt-in (or there is no
    #: training data at all); `rights_policy.opt_in_training_data_only` requires it.
    training_data_opt_in: bool = False
    attribution: str = ""
    language_codes: list[str] = Field(default_factory=list)
    weights: list[WeightsEntry] = Field(default_factory=list)
    path: str | None = None  # model directory for user-registered models
    #: Image models: registry id of the IP-Adapter (kind "ip_adapter") that reads reference images.
    ip_adapter: ModelId | None = None
    #: The model's output comes from weights learned from sampled data (a diffusion model, a
    #: neural voice, a LoRA). False for procedural renderers and rule sets (previz, animatic, the
    #: viseme rules): C2PA then labels their output ``algorithmicMedia``, not
    #: ``trainedAlgorithmicMedia``. Stated, not derived from ``weights``: a weights list says which
    #: files were hashed, and a hosted model may list none and still be trained. Defaults to true,
    #: so an entry that does not say is never labelled as free of generative AI.
    learned_weights: bool = True

    def to_card(self) -> common_pb2.ModelCard:
        return common_pb2.ModelCard(
            model_id=self.id,
            version=self.version,
            kind=self.kind,
            source=self.source,
            language_codes=self.language_codes,
            weights=[common_pb2.WeightsFile(path=w.path, sha256=w.sha256, size_bytes=w.size_bytes)
                     for w in self.weights],
            rights=common_pb2.RightsInfo(
                license=self.license,
                rights_holder=self.rights_holder,
                commercial_use=self.commercial_use,
                training_data=self.training_data,
                attribution=self.attribution,
            ),
        )


class RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[ModelEntry]


def _load_file(text: str, origin: str) -> list[ModelEntry]:
    try:
        data = yaml.safe_load(text) or {"models": []}
        return RegistryFile.model_validate(data).models
    except yaml.YAMLError as exc:
        raise invalid(f"{origin}: not valid YAML ({' '.join(str(exc).split())}); fix the file",
                      reason="REGISTRY_INVALID") from None
    except RecursionError:
        raise invalid(f"{origin}: nested too deeply to be a model registry; fix the file",
                      reason="REGISTRY_INVALID") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise invalid(f"{origin}: {where}: {message}; fix the file",
                      reason="REGISTRY_INVALID") from None


class ModelRegistry:
    """Shipped entries plus the user's additions (user entries may not shadow shipped ones)."""

    def __init__(self, settings: CoreSettings | None = None) -> None:
        settings = settings or core_settings()
        self.settings = settings
        shipped_text = resources.files("kantoku.services._core").joinpath("models.yaml").read_text()
        self._entries: dict[str, ModelEntry] = {}
        for entry in _load_file(shipped_text, "models.yaml (shipped)"):
            self._entries[entry.id] = entry
        self.user_file = settings.home_dir / "models.yaml"
        if self.user_file.exists():
            text = read_text_file(self.user_file, "the model registry", MAX_REGISTRY_BYTES,
                                  "REGISTRY")
            for entry in _load_file(text, str(self.user_file)):
                if entry.id in self._entries:
                    raise invalid(f"{self.user_file}: model id {entry.id!r} is already shipped; "
                                  "choose another id", reason="REGISTRY_DUPLICATE")
                self._entries[entry.id] = entry

    def reloaded(self) -> ModelRegistry:
        """A fresh read, so models added while a server runs are seen."""
        return ModelRegistry(self.settings)

    def list(self, kind: str | None = None) -> list[ModelEntry]:
        return [e for e in self._entries.values() if kind is None or e.kind == kind]

    def get(self, model_id: str, kind: str | None = None) -> ModelEntry:
        entry = self._entries.get(model_id)
        if entry is None or (kind and entry.kind != kind):
            known = ", ".join(sorted(e.id for e in self.list(kind)))
            raise not_found(f"unknown {kind or 'model'} {model_id!r}; known: {known}",
                            reason="MODEL_NOT_FOUND", model_id=model_id)
        return entry


class WeightsHasher:
    """sha256 of weights files, cached by (path, size, mtime) under $KANTOKU_HOME/cache."""

    def __init__(self, settings: CoreSettings | None = None) -> None:
        settings = settings or core_settings()
        self.cache_file = settings.home_dir / "cache" / "weights-sha256.json"

    def sha256(self, path: Path) -> str:
        stat = path.stat()
        key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        cache = self._read()
        if key not in cache:
            cache[key] = sha256_file(path)
            self._write(cache)
        return cache[key]

    def verify(self, entry: ModelEntry, files: dict[str, Path]) -> list[common_pb2.WeightsFile]:
        """Hash the files actually loaded; refuse to serve when they differ from the registry."""
        expected = {w.path: w for w in entry.weights}
        checked = []
        for name, path in files.items():
            digest = self.sha256(path)
            want = expected.get(name)
            if want is not None and want.sha256 != digest:
                raise internal(f"weights file {path} of {entry.id} has sha256 {digest}, but the "
                               f"registry lists {want.sha256}; reinstall it or update the registry",
                               reason="WEIGHTS_MISMATCH", model_id=entry.id)
            checked.append(common_pb2.WeightsFile(path=name, sha256=digest,
                                                  size_bytes=path.stat().st_size))
        return checked

    def _read(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.cache_file.read_text()))
        except (OSError, ValueError):
            return {}

    def _write(self, cache: dict[str, str]) -> None:
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1))
        tmp.replace(self.cache_file)


def add_user_model(model_id: str, path: Path, kind: str, license_id: str, commercial_use: bool,
                   rights_holder: str, training_data: str = "not stated",
                   settings: CoreSettings | None = None,
                   ip_adapter: str | None = None) -> ModelEntry:
    """Register a local diffusers model directory, LoRA file or IP-Adapter directory in
    $KANTOKU_HOME/models.yaml. `ip_adapter` links an image model to a registered IP-Adapter.

    Every weights file is hashed now; pickle checkpoints are refused.
    """
    from kantoku.services._core.diffusers_loading import (
        ip_adapter_weights_name,
        pipeline_class_name,
        weights_files,
    )

    try:
        check_model_id(model_id)
    except ValueError as exc:
        raise invalid(f"ID: {exc}", reason="MODEL_ID_INVALID") from None
    settings = settings or core_settings()
    registry = ModelRegistry(settings)
    if model_id in {e.id for e in registry.list()}:
        raise invalid(f"model id {model_id!r} is already registered; choose another id",
                      reason="REGISTRY_DUPLICATE")
    path = path.expanduser().resolve()
    if not path.exists():
        raise not_found(f"--path: {path} does not exist", reason="MODEL_DIR_INVALID")
    if ip_adapter is not None:
        if kind != "image":
            raise invalid(f"--ip-adapter: only image models take one, not {kind} models",
                          reason="IP_ADAPTER_UNSUPPORTED")
        registry.get(ip_adapter, kind="ip_adapter")
    if path.is_file():  # a single LoRA file
        if path.suffix != ".safetensors":
            raise invalid(f"--path: {path.name} is not .safetensors; pickle checkpoints are "
                          "refused", reason="PICKLE_REFUSED")
        files, family, root = {path.name: path}, "lora", path.parent
    else:
        files, root = weights_files(path), path
        family = pipeline_class_name(path) if (path / "model_index.json").exists() else "lora"
    if kind in ("image", "video") and not (path.is_dir() and (path / "model_index.json").exists()):
        raise invalid(f"--path: {path} has no model_index.json; pass a diffusers pipeline "
                      "directory (save_pretrained)", reason="MODEL_DIR_INVALID")
    if kind == "ip_adapter":
        ip_adapter_weights_name(path)  # refuses anything but adapter file + image_encoder/
        family = "ip_adapter"
    hasher = WeightsHasher(settings)
    entry = ModelEntry.model_validate(dict(
        id=model_id, kind=kind, version="local", family=family, source=f"local:{root}",
        license=license_id, commercial_use=commercial_use, rights_holder=rights_holder,
        training_data=training_data, path=str(path), ip_adapter=ip_adapter,
        weights=[WeightsEntry(path=name, sha256=hasher.sha256(p), size_bytes=p.stat().st_size)
                 for name, p in files.items()],
    ))
    document: dict[str, list] = {"models": []}
    if registry.user_file.exists():
        document = yaml.safe_load(registry.user_file.read_text()) or {"models": []}
    document["models"].append(entry.model_dump(exclude_none=True))
    registry.user_file.parent.mkdir(parents=True, exist_ok=True)
    registry.user_file.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return entry
