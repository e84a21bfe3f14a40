"""The motion service's client side: a take's timings in, the tracks' document out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from kantoku.services._core.errors import invalid
from kantoku.v1 import common_pb2, motion_pb2, tts_pb2


def load_timings(path: Path) -> tuple[motion_pb2.PhonemeTrack, list[common_pb2.AssetRef]]:
    """Read an `OUT.wav.json` written by `kantoku tts`; errors name the file and the field."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise invalid(f"{path}: no such file; pass the .wav.json that `kantoku tts` wrote",
                      reason="FILE_NOT_FOUND") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid(f"{path}: not valid JSON ({exc}); pass the .wav.json that `kantoku tts` "
                      "wrote", reason="TIMINGS_INVALID") from None
    if not isinstance(document, dict) or not isinstance(document.get("phonemes"), list):
        raise invalid(f"{path}: field 'phonemes' is missing; pass the .wav.json that "
                      "`kantoku tts` wrote", reason="TIMINGS_INVALID")
    try:
        track = motion_pb2.PhonemeTrack(
            language_code=str(document.get("language_code", "")),
            duration_s=float(document.get("duration_s", 0.0)),
            phonemes=[tts_pb2.PhonemeTiming(phoneme=str(p["phoneme"]), start_s=float(p["start_s"]),
                                            end_s=float(p["end_s"])) for p in document["phonemes"]],
            words=[tts_pb2.WordTiming(word=str(w["word"]), start_s=float(w["start_s"]),
                                      end_s=float(w["end_s"])) for w in document.get("words", [])],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise invalid(f"{path}: a phoneme or word entry is malformed ({exc!r}); each needs "
                      "start_s and end_s", reason="TIMINGS_INVALID") from None
    inputs = []
    output = (document.get("provenance") or {}).get("output")
    if isinstance(output, dict):
        inputs.append(json_format.ParseDict(output, common_pb2.AssetRef(),
                                            ignore_unknown_fields=True))
    return track, inputs


def motion_document(response: motion_pb2.AnimateSpeechResponse) -> dict[str, Any]:
    """What `OUT.motion.json` holds: the tracks and the provenance record."""
    return json_format.MessageToDict(response, preserving_proto_field_name=True)
