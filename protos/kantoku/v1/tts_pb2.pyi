from kantoku.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AudioEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIO_ENCODING_UNSPECIFIED: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_LINEAR16: _ClassVar[AudioEncoding]
AUDIO_ENCODING_UNSPECIFIED: AudioEncoding
AUDIO_ENCODING_LINEAR16: AudioEncoding

class SynthesizeSpeechRequest(_message.Message):
    __slots__ = ("text", "voice_id", "language_code", "encoding", "speaking_rate")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VOICE_ID_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SPEAKING_RATE_FIELD_NUMBER: _ClassVar[int]
    text: str
    voice_id: str
    language_code: str
    encoding: AudioEncoding
    speaking_rate: float
    def __init__(self, text: _Optional[str] = ..., voice_id: _Optional[str] = ..., language_code: _Optional[str] = ..., encoding: _Optional[_Union[AudioEncoding, str]] = ..., speaking_rate: _Optional[float] = ...) -> None: ...

class SynthesizeSpeechResponse(_message.Message):
    __slots__ = ("header", "chunk", "provenance")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    header: SpeechHeader
    chunk: AudioChunk
    provenance: _common_pb2.ProvenanceRecord
    def __init__(self, header: _Optional[_Union[SpeechHeader, _Mapping]] = ..., chunk: _Optional[_Union[AudioChunk, _Mapping]] = ..., provenance: _Optional[_Union[_common_pb2.ProvenanceRecord, _Mapping]] = ...) -> None: ...

class SpeechHeader(_message.Message):
    __slots__ = ("voice_id", "language_code", "encoding", "sample_rate_hz", "channels", "model_id")
    VOICE_ID_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    voice_id: str
    language_code: str
    encoding: AudioEncoding
    sample_rate_hz: int
    channels: int
    model_id: str
    def __init__(self, voice_id: _Optional[str] = ..., language_code: _Optional[str] = ..., encoding: _Optional[_Union[AudioEncoding, str]] = ..., sample_rate_hz: _Optional[int] = ..., channels: _Optional[int] = ..., model_id: _Optional[str] = ...) -> None: ...

class AudioChunk(_message.Message):
    __slots__ = ("audio", "start_s", "duration_s", "phonemes", "words", "text")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    START_S_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    PHONEMES_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    start_s: float
    duration_s: float
    phonemes: _containers.RepeatedCompositeFieldContainer[PhonemeTiming]
    words: _containers.RepeatedCompositeFieldContainer[WordTiming]
    text: str
    def __init__(self, audio: _Optional[bytes] = ..., start_s: _Optional[float] = ..., duration_s: _Optional[float] = ..., phonemes: _Optional[_Iterable[_Union[PhonemeTiming, _Mapping]]] = ..., words: _Optional[_Iterable[_Union[WordTiming, _Mapping]]] = ..., text: _Optional[str] = ...) -> None: ...

class PhonemeTiming(_message.Message):
    __slots__ = ("phoneme", "start_s", "end_s")
    PHONEME_FIELD_NUMBER: _ClassVar[int]
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    phoneme: str
    start_s: float
    end_s: float
    def __init__(self, phoneme: _Optional[str] = ..., start_s: _Optional[float] = ..., end_s: _Optional[float] = ...) -> None: ...

class WordTiming(_message.Message):
    __slots__ = ("word", "start_s", "end_s")
    WORD_FIELD_NUMBER: _ClassVar[int]
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    word: str
    start_s: float
    end_s: float
    def __init__(self, word: _Optional[str] = ..., start_s: _Optional[float] = ..., end_s: _Optional[float] = ...) -> None: ...

class ListVoicesRequest(_message.Message):
    __slots__ = ("language_code",)
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    language_code: str
    def __init__(self, language_code: _Optional[str] = ...) -> None: ...

class Voice(_message.Message):
    __slots__ = ("voice_id", "language_codes", "sample_rate_hz", "model")
    VOICE_ID_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODES_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    voice_id: str
    language_codes: _containers.RepeatedScalarFieldContainer[str]
    sample_rate_hz: int
    model: _common_pb2.ModelCard
    def __init__(self, voice_id: _Optional[str] = ..., language_codes: _Optional[_Iterable[str]] = ..., sample_rate_hz: _Optional[int] = ..., model: _Optional[_Union[_common_pb2.ModelCard, _Mapping]] = ...) -> None: ...

class ListVoicesResponse(_message.Message):
    __slots__ = ("voices",)
    VOICES_FIELD_NUMBER: _ClassVar[int]
    voices: _containers.RepeatedCompositeFieldContainer[Voice]
    def __init__(self, voices: _Optional[_Iterable[_Union[Voice, _Mapping]]] = ...) -> None: ...
