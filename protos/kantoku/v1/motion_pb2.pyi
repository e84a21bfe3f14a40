from kantoku.v1 import common_pb2 as _common_pb2
from kantoku.v1 import tts_pb2 as _tts_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GestureType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GESTURE_TYPE_UNSPECIFIED: _ClassVar[GestureType]
    GESTURE_TYPE_BLINK: _ClassVar[GestureType]
    GESTURE_TYPE_HEAD_NOD: _ClassVar[GestureType]
GESTURE_TYPE_UNSPECIFIED: GestureType
GESTURE_TYPE_BLINK: GestureType
GESTURE_TYPE_HEAD_NOD: GestureType

class AnimateSpeechRequest(_message.Message):
    __slots__ = ("phonemes", "audio", "fps", "seed", "inputs")
    PHONEMES_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    phonemes: PhonemeTrack
    audio: _common_pb2.AssetRef
    fps: float
    seed: int
    inputs: _containers.RepeatedCompositeFieldContainer[_common_pb2.AssetRef]
    def __init__(self, phonemes: _Optional[_Union[PhonemeTrack, _Mapping]] = ..., audio: _Optional[_Union[_common_pb2.AssetRef, _Mapping]] = ..., fps: _Optional[float] = ..., seed: _Optional[int] = ..., inputs: _Optional[_Iterable[_Union[_common_pb2.AssetRef, _Mapping]]] = ...) -> None: ...

class PhonemeTrack(_message.Message):
    __slots__ = ("language_code", "phonemes", "words", "duration_s")
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    PHONEMES_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    language_code: str
    phonemes: _containers.RepeatedCompositeFieldContainer[_tts_pb2.PhonemeTiming]
    words: _containers.RepeatedCompositeFieldContainer[_tts_pb2.WordTiming]
    duration_s: float
    def __init__(self, language_code: _Optional[str] = ..., phonemes: _Optional[_Iterable[_Union[_tts_pb2.PhonemeTiming, _Mapping]]] = ..., words: _Optional[_Iterable[_Union[_tts_pb2.WordTiming, _Mapping]]] = ..., duration_s: _Optional[float] = ...) -> None: ...

class VisemeTrack(_message.Message):
    __slots__ = ("fps", "viseme_names", "frames")
    FPS_FIELD_NUMBER: _ClassVar[int]
    VISEME_NAMES_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    fps: float
    viseme_names: _containers.RepeatedScalarFieldContainer[str]
    frames: _containers.RepeatedCompositeFieldContainer[VisemeFrame]
    def __init__(self, fps: _Optional[float] = ..., viseme_names: _Optional[_Iterable[str]] = ..., frames: _Optional[_Iterable[_Union[VisemeFrame, _Mapping]]] = ...) -> None: ...

class VisemeFrame(_message.Message):
    __slots__ = ("time_s", "weights")
    TIME_S_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    time_s: float
    weights: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, time_s: _Optional[float] = ..., weights: _Optional[_Iterable[float]] = ...) -> None: ...

class GestureKeyframe(_message.Message):
    __slots__ = ("type", "start_s", "end_s", "intensity", "cue")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    INTENSITY_FIELD_NUMBER: _ClassVar[int]
    CUE_FIELD_NUMBER: _ClassVar[int]
    type: GestureType
    start_s: float
    end_s: float
    intensity: float
    cue: str
    def __init__(self, type: _Optional[_Union[GestureType, str]] = ..., start_s: _Optional[float] = ..., end_s: _Optional[float] = ..., intensity: _Optional[float] = ..., cue: _Optional[str] = ...) -> None: ...

class GestureTrack(_message.Message):
    __slots__ = ("keyframes",)
    KEYFRAMES_FIELD_NUMBER: _ClassVar[int]
    keyframes: _containers.RepeatedCompositeFieldContainer[GestureKeyframe]
    def __init__(self, keyframes: _Optional[_Iterable[_Union[GestureKeyframe, _Mapping]]] = ...) -> None: ...

class AnimateSpeechResponse(_message.Message):
    __slots__ = ("visemes", "gestures", "provenance")
    VISEMES_FIELD_NUMBER: _ClassVar[int]
    GESTURES_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    visemes: VisemeTrack
    gestures: GestureTrack
    provenance: _common_pb2.ProvenanceRecord
    def __init__(self, visemes: _Optional[_Union[VisemeTrack, _Mapping]] = ..., gestures: _Optional[_Union[GestureTrack, _Mapping]] = ..., provenance: _Optional[_Union[_common_pb2.ProvenanceRecord, _Mapping]] = ...) -> None: ...
