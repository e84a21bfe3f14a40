import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RightsInfo(_message.Message):
    __slots__ = ("license", "rights_holder", "commercial_use", "training_data", "consent", "attribution")
    LICENSE_FIELD_NUMBER: _ClassVar[int]
    RIGHTS_HOLDER_FIELD_NUMBER: _ClassVar[int]
    COMMERCIAL_USE_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DATA_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    license: str
    rights_holder: str
    commercial_use: bool
    training_data: str
    consent: bool
    attribution: str
    def __init__(self, license: _Optional[str] = ..., rights_holder: _Optional[str] = ..., commercial_use: _Optional[bool] = ..., training_data: _Optional[str] = ..., consent: _Optional[bool] = ..., attribution: _Optional[str] = ...) -> None: ...

class AssetRef(_message.Message):
    __slots__ = ("uri", "sha256", "media_type", "size_bytes", "rights")
    URI_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    RIGHTS_FIELD_NUMBER: _ClassVar[int]
    uri: str
    sha256: str
    media_type: str
    size_bytes: int
    rights: RightsInfo
    def __init__(self, uri: _Optional[str] = ..., sha256: _Optional[str] = ..., media_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., rights: _Optional[_Union[RightsInfo, _Mapping]] = ...) -> None: ...

class WeightsFile(_message.Message):
    __slots__ = ("path", "sha256", "size_bytes")
    PATH_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    path: str
    sha256: str
    size_bytes: int
    def __init__(self, path: _Optional[str] = ..., sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class ModelCard(_message.Message):
    __slots__ = ("model_id", "version", "kind", "weights", "rights", "source", "language_codes")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    RIGHTS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODES_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    version: str
    kind: str
    weights: _containers.RepeatedCompositeFieldContainer[WeightsFile]
    rights: RightsInfo
    source: str
    language_codes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model_id: _Optional[str] = ..., version: _Optional[str] = ..., kind: _Optional[str] = ..., weights: _Optional[_Iterable[_Union[WeightsFile, _Mapping]]] = ..., rights: _Optional[_Union[RightsInfo, _Mapping]] = ..., source: _Optional[str] = ..., language_codes: _Optional[_Iterable[str]] = ...) -> None: ...

class AdapterUse(_message.Message):
    __slots__ = ("adapter", "weight")
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    adapter: ModelCard
    weight: float
    def __init__(self, adapter: _Optional[_Union[ModelCard, _Mapping]] = ..., weight: _Optional[float] = ...) -> None: ...

class WorkerInfo(_message.Message):
    __slots__ = ("host", "device", "pid", "hosting", "node_ip", "node_id")
    HOST_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    HOSTING_FIELD_NUMBER: _ClassVar[int]
    NODE_IP_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    host: str
    device: str
    pid: int
    hosting: str
    node_ip: str
    node_id: str
    def __init__(self, host: _Optional[str] = ..., device: _Optional[str] = ..., pid: _Optional[int] = ..., hosting: _Optional[str] = ..., node_ip: _Optional[str] = ..., node_id: _Optional[str] = ...) -> None: ...

class ProvenanceRecord(_message.Message):
    __slots__ = ("step_id", "kind", "service", "service_version", "model", "adapters", "inputs", "parameters", "seed", "worker", "start_time", "end_time", "output")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ADAPTERS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    kind: str
    service: str
    service_version: str
    model: ModelCard
    adapters: _containers.RepeatedCompositeFieldContainer[AdapterUse]
    inputs: _containers.RepeatedCompositeFieldContainer[AssetRef]
    parameters: _struct_pb2.Struct
    seed: int
    worker: WorkerInfo
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    output: AssetRef
    def __init__(self, step_id: _Optional[str] = ..., kind: _Optional[str] = ..., service: _Optional[str] = ..., service_version: _Optional[str] = ..., model: _Optional[_Union[ModelCard, _Mapping]] = ..., adapters: _Optional[_Iterable[_Union[AdapterUse, _Mapping]]] = ..., inputs: _Optional[_Iterable[_Union[AssetRef, _Mapping]]] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., seed: _Optional[int] = ..., worker: _Optional[_Union[WorkerInfo, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., output: _Optional[_Union[AssetRef, _Mapping]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("stage", "step", "total_steps")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    step: int
    total_steps: int
    def __init__(self, stage: _Optional[str] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ...) -> None: ...

class ImageLayer(_message.Message):
    __slots__ = ("name", "image", "depth")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    name: str
    image: AssetRef
    depth: float
    def __init__(self, name: _Optional[str] = ..., image: _Optional[_Union[AssetRef, _Mapping]] = ..., depth: _Optional[float] = ...) -> None: ...

class GetCapacityRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCapacityResponse(_message.Message):
    __slots__ = ("hosted", "deployments")
    HOSTED_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    hosted: bool
    deployments: _containers.RepeatedCompositeFieldContainer[DeploymentCapacity]
    def __init__(self, hosted: _Optional[bool] = ..., deployments: _Optional[_Iterable[_Union[DeploymentCapacity, _Mapping]]] = ...) -> None: ...

class DeploymentCapacity(_message.Message):
    __slots__ = ("application", "deployment", "running_replicas", "max_ongoing_requests", "max_replicas", "target_ongoing_requests")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    RUNNING_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    MAX_ONGOING_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    TARGET_ONGOING_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    application: str
    deployment: str
    running_replicas: int
    max_ongoing_requests: int
    max_replicas: int
    target_ongoing_requests: float
    def __init__(self, application: _Optional[str] = ..., deployment: _Optional[str] = ..., running_replicas: _Optional[int] = ..., max_ongoing_requests: _Optional[int] = ..., max_replicas: _Optional[int] = ..., target_ongoing_requests: _Optional[float] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "default_model_id")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelCard]
    default_model_id: str
    def __init__(self, models: _Optional[_Iterable[_Union[ModelCard, _Mapping]]] = ..., default_model_id: _Optional[str] = ...) -> None: ...
