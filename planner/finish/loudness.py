"""Loudness of the final mix: ITU-R BS.1770 integrated loudness, true peak, normalisation.

Measuring: integrated loudness with pyloudnorm (BS.1770-4: K-weighting, 400 ms blocks with 75 %
overlap, the -70 LUFS absolute and -10 LU relative gates); true peak as the largest magnitude of
the signal oversampled 4x (`scipy.signal.resample_poly`, a polyphase windowed-sinc FIR), in dBTP.

Normalising (`Normaliser`): one gain takes the mix to the target integrated loudness; where that
would put the true peak over the ceiling, a true-peak-aware look-ahead limiter lowers the gain
around those peaks only. The reduction each sample needs is read from the 4x-oversampled peaks
on either side of it; in dB it is spread backwards over an exponential attack (`ATTACK_S`, the
look-ahead) and forwards over an exponential release (`RELEASE_S`), never below what a sample
needs. A limiter rather than a lower gain for the whole mix keeps the loudness at the target (a
lower gain would give up as many LU as the loudest peak is over the ceiling); and since limiting
lowers the loudness a little, the gain is raised by the shortfall and the limiting redone, up to
`PASSES` times. Silence, and mixes shorter than one 400 ms block, are left as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyloudnorm
from scipy.signal import resample_poly

from kantoku.services._core.errors import invalid

DEFAULT_TARGET_LUFS = -14.0
CEILING_DBTP = -1.0
#: The range `--loudness` accepts (LUFS).
MIN_TARGET_LUFS, MAX_TARGET_LUFS = -30.0, -5.0
OVERSAMPLING = 4
ATTACK_S = 0.002
RELEASE_S = 0.08
PASSES = 3
#: Loudness within this many LU of the target needs no further pass.
TOLERANCE_LU = 0.1
_CHUNK = 1 << 16
#: Input samples of context on either side of a chunk: more than resample_poly's filter reaches.
_CONTEXT = 64


@dataclass(frozen=True)
class LoudnessTarget:
    """What a finished mix is made to measure: integrated loudness and the true-peak ceiling."""

    integrated_lufs: float = DEFAULT_TARGET_LUFS
    true_peak_dbtp: float = CEILING_DBTP


#: Short-form platforms' level: -14 LUFS, peaks at most -1 dBTP.
PLATFORM_TARGET = LoudnessTarget()


@dataclass(frozen=True)
class Level:
    """A signal's integrated loudness (LUFS) and true peak (dBTP); None for silence."""

    integrated_lufs: float | None
    true_peak_dbtp: float | None

    def as_dict(self) -> dict[str, float | None]:
        """Rounded to 0.01 for the ledger."""
        return {"integrated_lufs": _rounded(self.integrated_lufs),
                "true_peak_dbtp": _rounded(self.true_peak_dbtp)}


@dataclass(frozen=True)
class Normalisation:
    """What `Normaliser.normalise` did: the level before, the gain, the most the limiter took."""

    before: Level
    gain_db: float
    limited_db: float


def check_target(lufs: float, option: str) -> float:
    """`lufs` when it is a usable loudness target, else an error naming `option`.

    Raises:
        KantokuError: INVALID_REQUEST (LOUDNESS_INVALID) outside MIN..MAX_TARGET_LUFS.
    """
    if not MIN_TARGET_LUFS <= lufs <= MAX_TARGET_LUFS:  # also refuses NaN
        raise invalid(f"{option}: {lufs:g} LUFS is not a usable loudness target; pass a value "
                      f"from {MIN_TARGET_LUFS:g} to {MAX_TARGET_LUFS:g} (short-form platforms "
                      f"play at about {DEFAULT_TARGET_LUFS:g})", reason="LOUDNESS_INVALID")
    return float(lufs)


def measure(audio: np.ndarray, rate_hz: int) -> Level:
    """Integrated loudness and true peak of (channels, samples) float audio."""
    return Level(integrated_lufs(audio, rate_hz), true_peak_dbtp(audio))


def integrated_lufs(audio: np.ndarray, rate_hz: int) -> float | None:
    """BS.1770 integrated loudness in LUFS; None when silent or shorter than one 400 ms block."""
    meter = pyloudnorm.Meter(rate_hz)
    if audio.shape[1] <= meter.block_size * rate_hz:
        return None
    lufs = float(meter.integrated_loudness(audio.T.astype(np.float64)))
    return lufs if math.isfinite(lufs) else None


def true_peak_dbtp(audio: np.ndarray) -> float | None:
    """The true peak (4x oversampled) in dBTP; None for silence."""
    return _dbtp(peak_envelope(audio))


def peak_envelope(audio: np.ndarray) -> np.ndarray:
    """Per sample, the largest 4x-oversampled magnitude of any channel within one sample of it.

    Computed in chunks, so a long song never holds its oversampled copy at once.
    """
    length = audio.shape[1]
    envelope = np.zeros(length, dtype=np.float32)
    for start in range(0, length, _CHUNK):
        end = min(length, start + _CHUNK)
        low, high = max(0, start - _CONTEXT), min(length, end + _CONTEXT)
        fine = resample_poly(audio[:, low:high], OVERSAMPLING, 1, axis=1)
        fine = np.abs(fine[:, (start - low) * OVERSAMPLING:(end - low) * OVERSAMPLING])
        envelope[start:end] = fine.max(axis=0).reshape(-1, OVERSAMPLING).max(axis=1)
    # The peaks between a sample and the one before it count for both.
    envelope[1:] = np.maximum(envelope[1:], envelope[:-1])
    return envelope


class Normaliser:
    """Measures a mix once, then normalises it (see the module docstring) to a target."""

    def __init__(self, audio: np.ndarray, rate_hz: int) -> None:
        """Measures `audio`: (channels, samples) float32, which is never modified."""
        self.audio, self.rate_hz = audio, rate_hz
        self.envelope = peak_envelope(audio)
        self.before = Level(integrated_lufs(audio, rate_hz), _dbtp(self.envelope))

    def normalise(self, target_lufs: float, ceiling_dbtp: float
                  ) -> tuple[np.ndarray, Normalisation]:
        """The audio at `target_lufs` with its true peak at most `ceiling_dbtp`.

        Returns:
            The normalised audio (float32) and what was done; the audio itself, with a gain of
            0 dB, when it is silent or too short to measure.
        """
        if self.before.integrated_lufs is None:
            return self.audio, Normalisation(self.before, 0.0, 0.0)
        gain_db = target_lufs - self.before.integrated_lufs
        for _ in range(PASSES):
            reduction_db = limiter_reduction(self.envelope * 10 ** (gain_db / 20), ceiling_dbtp,
                                             self.rate_hz)
            out = _apply(self.audio, gain_db, reduction_db)
            reached = integrated_lufs(out, self.rate_hz)
            if reached is None or abs(target_lufs - reached) <= TOLERANCE_LU:
                break
            gain_db += target_lufs - reached
        # The gain changes between a sample and its neighbours; trim what that lets through.
        peak = true_peak_dbtp(out)
        if peak is not None and peak > ceiling_dbtp:
            out *= np.float32(10 ** ((ceiling_dbtp - peak) / 20))
        return out, Normalisation(self.before, gain_db, float(reduction_db.max(initial=0.0)))


def limiter_reduction(envelope: np.ndarray, ceiling_dbtp: float, rate_hz: int) -> np.ndarray:
    """Gain reduction in dB (>= 0) per sample that keeps `envelope` under the ceiling.

    The reduction a sample needs is held back over `ATTACK_S` before it and released over
    `RELEASE_S` after it, both exponentially (in dB).
    """
    with np.errstate(divide="ignore"):
        over = 20 * np.log10(envelope.astype(np.float64)) - ceiling_dbtp
    needed = np.maximum(over, 0.0)
    if not needed.any():
        return needed
    attacked = _decaying_max(needed[::-1], ATTACK_S * rate_hz)[::-1]
    return _decaying_max(attacked, RELEASE_S * rate_hz)


def _decaying_max(values: np.ndarray, time_constant: float) -> np.ndarray:
    """`y[n] = max(values[n], y[n-1] * exp(-1 / time_constant))`, for values >= 0.

    Vectorised in the log domain: log y[n] = n*c + max over k <= n of (log values[k] - k*c),
    with c = -1 / time_constant.
    """
    decay = -1.0 / time_constant
    index = np.arange(values.shape[0], dtype=np.float64)
    logs = np.full(values.shape[0], -np.inf)
    np.log(values, out=logs, where=values > 0)
    running = np.maximum.accumulate(logs - index * decay)
    with np.errstate(invalid="ignore"):  # -inf + finite stays -inf; exp gives 0
        return np.exp(running + index * decay)


def _apply(audio: np.ndarray, gain_db: float, reduction_db: np.ndarray) -> np.ndarray:
    gain = (10 ** ((gain_db - reduction_db) / 20)).astype(np.float32)
    return (audio * gain).astype(np.float32, copy=False)


def _dbtp(envelope: np.ndarray) -> float | None:
    peak = float(envelope.max(initial=0.0))
    return 20 * math.log10(peak) if peak > 0 else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
