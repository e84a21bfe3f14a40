"""WAV encoding shared by servers and clients, so both produce the same bytes (same sha256)."""

from __future__ import annotations

import io
import wave

import numpy as np

from kantoku.services._core.errors import invalid


def pcm16_wav_bytes(pcm: bytes, sample_rate_hz: int, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(sample_rate_hz)
        out.writeframes(pcm)
    return buffer.getvalue()


def float_to_pcm16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")


def read_wav_mono(data: bytes, name: str = "audio") -> tuple[np.ndarray, int]:
    """Float samples in [-1, 1] and the rate of a 16-bit PCM WAV; clear error when it is not one."""
    try:
        with wave.open(io.BytesIO(data), "rb") as src:
            rate, width, channels = src.getframerate(), src.getsampwidth(), src.getnchannels()
            frames = src.readframes(src.getnframes())
    except (wave.Error, EOFError) as exc:
        raise invalid(f"{name} is not a readable WAV file ({exc}); pass 16-bit PCM WAV",
                      reason="AUDIO_INVALID") from None
    if width != 2:
        raise invalid(f"{name} is {8 * width}-bit; pass 16-bit PCM WAV", reason="AUDIO_INVALID")
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples, rate
