from kantoku.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CameraMove(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAMERA_MOVE_UNSPECIFIED: _ClassVar[CameraMove]
    CAMERA_MOVE_STATIC: _ClassVar[CameraMove]
    CAMERA_MOVE_PAN_LEFT: _ClassVar[CameraMove]
    CAMERA_MOVE_PAN_RIGHT: _ClassVar[CameraMove]
    CAMERA_MOVE_TILT_UP: _ClassVar[CameraMove]
    CAMERA_MOVE_TILT_DOWN: _ClassVar[CameraMove]
    CAMERA_MOVE_DOLLY_IN: _ClassVar[CameraMove]
    CAMERA_MOVE_DOLLY_OUT: _ClassVar[CameraMove]
    CAMERA_MOVE_ZOOM_IN: _ClassVar[CameraMove]
    CAMERA_MOVE_ZOOM_OUT: _ClassVar[CameraMove]
    CAMERA_MOVE_TRUCK_LEFT: _ClassVar[CameraMove]
    CAMERA_MOVE_TRUCK_RIGHT: _ClassVar[CameraMove]
CAMERA_MOVE_UNSPECIFIED: CameraMove
CAMERA_MOVE_STATIC: CameraMove
CAMERA_MOVE_PAN_LEFT: CameraMove
CAMERA_MOVE_PAN_RIGHT: CameraMove
CAMERA_MOVE_TILT_UP: CameraMove
CAMERA_MOVE_TILT_DOWN: CameraMove
CAMERA_MOVE_DOLLY_IN: CameraMove
CAMERA_MOVE_DOLLY_OUT: CameraMove
CAMERA_MOVE_ZOOM_IN: CameraMove
CAMERA_MOVE_ZOOM_OUT: CameraMove
CAMERA_MOVE_TRUCK_LEFT: CameraMove
CAMERA_MOVE_TRUCK_RIGHT: CameraMove

class GenerateVideoRequest(_message.Message):
    __slots__ = ("keyframe", "layers", "prompt", "negative_prompt", "camera_move", "duration_s", "fps", "width_px", "height_px", "seed", "steps", "guidance_scale", "model_id")
    KEYFRAME_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    CAMERA_MOVE_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_PX_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_PX_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    keyframe: _common_pb2.AssetRef
    layers: _containers.RepeatedCompositeFieldContainer[_common_pb2.ImageLayer]
    prompt: str
    negative_prompt: str
    camera_move: CameraMove
    duration_s: float
    fps: float
    width_px: int
    height_px: int
    seed: int
    steps: int
    guidance_scale: float
    model_id: str
    def __init__(self, keyframe: _Optional[_Union[_common_pb2.AssetRef, _Mapping]] = ..., layers: _Optional[_Iterable[_Union[_common_pb2.ImageLayer, _Mapping]]] = ..., prompt: _Optional[str] = ..., negative_prompt: _Optional[str] = ..., camera_move: _Optional[_Union[CameraMove, str]] = ..., duration_s: _Optional[float] = ..., fps: _Optional[float] = ..., width_px: _Optional[int] = ..., height_px: _Optional[int] = ..., seed: _Optional[int] = ..., steps: _Optional[int] = ..., guidance_scale: _Optional[float] = ..., model_id: _Optional[str] = ...) -> None: ...

class VideoResult(_message.Message):
    __slots__ = ("video", "frame_count", "duration_s", "fps", "provenance")
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    video: _common_pb2.AssetRef
    frame_count: int
    duration_s: float
    fps: float
    provenance: _common_pb2.ProvenanceRecord
    def __init__(self, video: _Optional[_Union[_common_pb2.AssetRef, _Mapping]] = ..., frame_count: _Optional[int] = ..., duration_s: _Optional[float] = ..., fps: _Optional[float] = ..., provenance: _Optional[_Union[_common_pb2.ProvenanceRecord, _Mapping]] = ...) -> None: ...

class GenerateVideoResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _common_pb2.Progress
    result: VideoResult
    def __init__(self, progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[VideoResult, _Mapping]] = ...) -> None: ...
