from kantoku.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ShotSize(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SHOT_SIZE_UNSPECIFIED: _ClassVar[ShotSize]
    SHOT_SIZE_EXTREME_WIDE: _ClassVar[ShotSize]
    SHOT_SIZE_WIDE: _ClassVar[ShotSize]
    SHOT_SIZE_FULL: _ClassVar[ShotSize]
    SHOT_SIZE_MEDIUM: _ClassVar[ShotSize]
    SHOT_SIZE_MEDIUM_CLOSE_UP: _ClassVar[ShotSize]
    SHOT_SIZE_CLOSE_UP: _ClassVar[ShotSize]
    SHOT_SIZE_EXTREME_CLOSE_UP: _ClassVar[ShotSize]

class CameraAngle(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAMERA_ANGLE_UNSPECIFIED: _ClassVar[CameraAngle]
    CAMERA_ANGLE_EYE_LEVEL: _ClassVar[CameraAngle]
    CAMERA_ANGLE_HIGH: _ClassVar[CameraAngle]
    CAMERA_ANGLE_LOW: _ClassVar[CameraAngle]
    CAMERA_ANGLE_BIRDS_EYE: _ClassVar[CameraAngle]
    CAMERA_ANGLE_DUTCH: _ClassVar[CameraAngle]

class TimeOfDay(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_OF_DAY_UNSPECIFIED: _ClassVar[TimeOfDay]
    TIME_OF_DAY_DAWN: _ClassVar[TimeOfDay]
    TIME_OF_DAY_DAY: _ClassVar[TimeOfDay]
    TIME_OF_DAY_GOLDEN_HOUR: _ClassVar[TimeOfDay]
    TIME_OF_DAY_DUSK: _ClassVar[TimeOfDay]
    TIME_OF_DAY_NIGHT: _ClassVar[TimeOfDay]
SHOT_SIZE_UNSPECIFIED: ShotSize
SHOT_SIZE_EXTREME_WIDE: ShotSize
SHOT_SIZE_WIDE: ShotSize
SHOT_SIZE_FULL: ShotSize
SHOT_SIZE_MEDIUM: ShotSize
SHOT_SIZE_MEDIUM_CLOSE_UP: ShotSize
SHOT_SIZE_CLOSE_UP: ShotSize
SHOT_SIZE_EXTREME_CLOSE_UP: ShotSize
CAMERA_ANGLE_UNSPECIFIED: CameraAngle
CAMERA_ANGLE_EYE_LEVEL: CameraAngle
CAMERA_ANGLE_HIGH: CameraAngle
CAMERA_ANGLE_LOW: CameraAngle
CAMERA_ANGLE_BIRDS_EYE: CameraAngle
CAMERA_ANGLE_DUTCH: CameraAngle
TIME_OF_DAY_UNSPECIFIED: TimeOfDay
TIME_OF_DAY_DAWN: TimeOfDay
TIME_OF_DAY_DAY: TimeOfDay
TIME_OF_DAY_GOLDEN_HOUR: TimeOfDay
TIME_OF_DAY_DUSK: TimeOfDay
TIME_OF_DAY_NIGHT: TimeOfDay

class CharacterSpec(_message.Message):
    __slots__ = ("name", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ShotSpec(_message.Message):
    __slots__ = ("shot_size", "camera_angle", "characters", "location", "time_of_day", "mood", "caption")
    SHOT_SIZE_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ANGLE_FIELD_NUMBER: _ClassVar[int]
    CHARACTERS_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    TIME_OF_DAY_FIELD_NUMBER: _ClassVar[int]
    MOOD_FIELD_NUMBER: _ClassVar[int]
    CAPTION_FIELD_NUMBER: _ClassVar[int]
    shot_size: ShotSize
    camera_angle: CameraAngle
    characters: _containers.RepeatedCompositeFieldContainer[CharacterSpec]
    location: str
    time_of_day: TimeOfDay
    mood: str
    caption: str
    def __init__(self, shot_size: _Optional[_Union[ShotSize, str]] = ..., camera_angle: _Optional[_Union[CameraAngle, str]] = ..., characters: _Optional[_Iterable[_Union[CharacterSpec, _Mapping]]] = ..., location: _Optional[str] = ..., time_of_day: _Optional[_Union[TimeOfDay, str]] = ..., mood: _Optional[str] = ..., caption: _Optional[str] = ...) -> None: ...

class ReferenceImage(_message.Message):
    __slots__ = ("image", "character_name", "weight")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CHARACTER_NAME_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    image: _common_pb2.AssetRef
    character_name: str
    weight: float
    def __init__(self, image: _Optional[_Union[_common_pb2.AssetRef, _Mapping]] = ..., character_name: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class LoraAdapter(_message.Message):
    __slots__ = ("adapter_id", "weight")
    ADAPTER_ID_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    adapter_id: str
    weight: float
    def __init__(self, adapter_id: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class GenerateImageRequest(_message.Message):
    __slots__ = ("prompt", "negative_prompt", "width_px", "height_px", "seed", "steps", "guidance_scale", "model_id", "shot", "references", "adapters")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_PX_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_PX_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    SHOT_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    ADAPTERS_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    negative_prompt: str
    width_px: int
    height_px: int
    seed: int
    steps: int
    guidance_scale: float
    model_id: str
    shot: ShotSpec
    references: _containers.RepeatedCompositeFieldContainer[ReferenceImage]
    adapters: _containers.RepeatedCompositeFieldContainer[LoraAdapter]
    def __init__(self, prompt: _Optional[str] = ..., negative_prompt: _Optional[str] = ..., width_px: _Optional[int] = ..., height_px: _Optional[int] = ..., seed: _Optional[int] = ..., steps: _Optional[int] = ..., guidance_scale: _Optional[float] = ..., model_id: _Optional[str] = ..., shot: _Optional[_Union[ShotSpec, _Mapping]] = ..., references: _Optional[_Iterable[_Union[ReferenceImage, _Mapping]]] = ..., adapters: _Optional[_Iterable[_Union[LoraAdapter, _Mapping]]] = ...) -> None: ...

class ImageResult(_message.Message):
    __slots__ = ("image", "layers", "provenance")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    image: _common_pb2.AssetRef
    layers: _containers.RepeatedCompositeFieldContainer[_common_pb2.ImageLayer]
    provenance: _common_pb2.ProvenanceRecord
    def __init__(self, image: _Optional[_Union[_common_pb2.AssetRef, _Mapping]] = ..., layers: _Optional[_Iterable[_Union[_common_pb2.ImageLayer, _Mapping]]] = ..., provenance: _Optional[_Union[_common_pb2.ProvenanceRecord, _Mapping]] = ...) -> None: ...

class GenerateImageResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _common_pb2.Progress
    result: ImageResult
    def __init__(self, progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[ImageResult, _Mapping]] = ...) -> None: ...
