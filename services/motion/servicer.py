"""MotionService: proto <-> domain only."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from google.protobuf import json_format

from kantoku.services._core.assets import AssetStore
from kantoku.services._core.audio import read_wav_mono
from kantoku.services._core.errors import invalid
from kantoku.services._core.provenance import StepRecorder
from kantoku.services._core.rpc import rpc
from kantoku.services.motion.backend import (
    VISEMES,
    Gesture,
    MotionBackend,
    MotionTracks,
    Span,
    SpeechTimings,
)
from kantoku.v1 import motion_pb2, motion_pb2_grpc

SERVICE_NAME = motion_pb2.DESCRIPTOR.services_by_name["MotionService"].full_name
MAX_DURATION_S = 600.0
MAX_PHONEMES = 50_000
_GESTURES = {Gesture.BLINK: motion_pb2.GESTURE_TYPE_BLINK,
             Gesture.HEAD_NOD: motion_pb2.GESTURE_TYPE_HEAD_NOD}


class MotionServicer(motion_pb2_grpc.MotionServiceServicer):
    def __init__(self, backend: MotionBackend, store: AssetStore) -> None:
        self.backend = backend
        self.store = store

    @rpc
    async def AnimateSpeech(self, request: motion_pb2.AnimateSpeechRequest,
                            grpc_context: Any = None) -> motion_pb2.AnimateSpeechResponse:
        fps = request.fps or 30.0
        if not 1.0 <= fps <= 120.0:
            raise invalid(f"fps: {fps} is outside 1..120", reason="FPS_OUT_OF_RANGE")
        source = request.WhichOneof("source")
        inputs = list(request.inputs)
        if source == "phonemes":
            timings = _timings(request.phonemes)
            parameters = {"source": "phonemes", "fps": fps, "language_code":
                          timings.language_code, "phoneme_count": len(timings.phonemes)}
            tracks = await asyncio.to_thread(self.backend.animate_timings, timings, fps,
                                             request.seed)
        elif source == "audio":
            data = self.store.read_bytes(request.audio)
            samples, rate = read_wav_mono(data, f"audio {request.audio.uri}")
            if len(samples) / rate > MAX_DURATION_S:
                raise invalid(f"audio: {len(samples) / rate:.0f} s is over the "
                              f"{MAX_DURATION_S:.0f} s limit", reason="AUDIO_TOO_LONG")
            inputs.append(request.audio)
            parameters = {"source": "audio", "fps": fps}
            tracks = await asyncio.to_thread(self.backend.animate_audio, samples, rate, fps,
                                             request.seed)
        else:
            raise invalid("source: set either phonemes (from TtsService) or audio (an AssetRef)",
                          reason="SOURCE_MISSING")

        recorder = StepRecorder("motion", SERVICE_NAME, self.backend.entry.to_card(),
                                self.backend.device, parameters, inputs, seed=request.seed)
        response = motion_pb2.AnimateSpeechResponse(visemes=_viseme_track(tracks),
                                                    gestures=_gesture_track(tracks))
        document = json_format.MessageToDict(response, preserving_proto_field_name=True)
        payload = json.dumps(document, sort_keys=True, ensure_ascii=False).encode()
        output = self.store.put_bytes(payload, "application/json")
        response.provenance.CopyFrom(recorder.finish(output))
        return response


def _timings(track: motion_pb2.PhonemeTrack) -> SpeechTimings:
    if not track.phonemes:
        raise invalid("phonemes.phonemes: empty; pass the timings from SynthesizeSpeech",
                      reason="PHONEMES_EMPTY")
    if len(track.phonemes) > MAX_PHONEMES:
        raise invalid(f"phonemes.phonemes: {len(track.phonemes)} is over the limit of "
                      f"{MAX_PHONEMES}", reason="PHONEMES_TOO_MANY")
    phonemes = [Span(p.phoneme, p.start_s, p.end_s) for p in track.phonemes]
    for index, phone in enumerate(phonemes):
        if not 0 <= phone.start_s <= phone.end_s:
            raise invalid(f"phonemes.phonemes[{index}]: start_s {phone.start_s} and end_s "
                          f"{phone.end_s} must satisfy 0 <= start_s <= end_s",
                          reason="TIMING_INVALID")
    duration = max(track.duration_s, phonemes[-1].end_s)
    if duration > MAX_DURATION_S:
        raise invalid(f"phonemes: {duration:.0f} s of speech is over the {MAX_DURATION_S:.0f} s "
                      "limit; split it", reason="SPEECH_TOO_LONG")
    words = [Span(w.word, w.start_s, w.end_s) for w in track.words]
    return SpeechTimings(track.language_code, phonemes, words, duration)


def _viseme_track(tracks: MotionTracks) -> motion_pb2.VisemeTrack:
    frames = [motion_pb2.VisemeFrame(time_s=round(float(t), 6),
                                     weights=[round(float(w), 4) for w in row])
              for t, row in zip(tracks.times_s, tracks.weights, strict=True)]
    return motion_pb2.VisemeTrack(fps=tracks.fps, viseme_names=list(VISEMES), frames=frames)


def _gesture_track(tracks: MotionTracks) -> motion_pb2.GestureTrack:
    return motion_pb2.GestureTrack(keyframes=[
        motion_pb2.GestureKeyframe(type=_GESTURES[g.gesture], start_s=round(g.start_s, 4),
                                   end_s=round(g.end_s, 4), intensity=round(g.intensity, 3),
                                   cue=g.cue)
        for g in tracks.gestures])
