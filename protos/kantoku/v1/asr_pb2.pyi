from kantoku.v1 import common_pb2 as _common_pb2
from kantoku.v1 import tts_pb2 as _tts_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RecognizeSpeechRequest(_message.Message):
    __slots__ = ("audio", "audio_asset", "sample_rate_hz", "language_code", "word_timings")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    AUDIO_ASSET_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    WORD_TIMINGS_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    audio_asset: _common_pb2.AssetRef
    sample_rate_hz: int
    language_code: str
    word_timings: bool
    def __init__(self, audio: _Optional[bytes] = ..., audio_asset: _Optional[_Union[_common_pb2.AssetRef, _Mapping]] = ..., sample_rate_hz: _Optional[int] = ..., language_code: _Optional[str] = ..., word_timings: _Optional[bool] = ...) -> None: ...

class RecognizeSpeechResponse(_message.Message):
    __slots__ = ("transcript", "language_code", "language_probability", "duration_s", "words", "provenance")
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    transcript: str
    language_code: str
    language_probability: float
    duration_s: float
    words: _containers.RepeatedCompositeFieldContainer[_tts_pb2.WordTiming]
    provenance: _common_pb2.ProvenanceRecord
    def __init__(self, transcript: _Optional[str] = ..., language_code: _Optional[str] = ..., language_probability: _Optional[float] = ..., duration_s: _Optional[float] = ..., words: _Optional[_Iterable[_Union[_tts_pb2.WordTiming, _Mapping]]] = ..., provenance: _Optional[_Union[_common_pb2.ProvenanceRecord, _Mapping]] = ...) -> None: ...
