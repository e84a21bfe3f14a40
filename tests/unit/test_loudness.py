"""Loudness: BS.1770 figures of known signals, and normalising that meets its target."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kantoku.planner.finish.loudness import (
    RELEASE_S,
    Normaliser,
    check_target,
    integrated_lufs,
    measure,
    true_peak_dbtp,
)
from kantoku.services._core.errors import KantokuError

RATE = 48_000


def _sine(hz: float, dbfs: float, seconds: float, phase: float = 0.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    wave = 10 ** (dbfs / 20) * np.sin(2 * np.pi * hz * t + phase)
    return np.stack([wave, wave]).astype(np.float32)


def test_a_stereo_1khz_sine_reads_its_level_in_lufs_and_dbtp() -> None:
    # EBU Tech 3341: a 1 kHz sine at -23 dBFS in both channels reads -23 LUFS.
    level = measure(_sine(1000, -23, 5), RATE)
    assert level.integrated_lufs == pytest.approx(-23, abs=0.1)
    assert level.true_peak_dbtp == pytest.approx(-23, abs=0.05)


def test_the_true_peak_sees_the_peaks_between_samples() -> None:
    # EBU Tech 3341's true-peak signal: a -6 dBFS sine at a quarter of the rate, sampled 45
    # degrees off its crests, so no sample comes within 3 dB of it; a meter reads -6 +0.2/-0.4.
    audio = _sine(RATE / 4, -6, 1, phase=math.pi / 4)
    sample_peak = 20 * math.log10(float(np.abs(audio).max()))
    assert sample_peak == pytest.approx(-9.03, abs=0.05)
    assert -6.4 <= (true_peak_dbtp(audio) or -math.inf) <= -5.8


def test_silence_and_a_too_short_clip_have_no_loudness() -> None:
    assert measure(np.zeros((2, RATE), dtype=np.float32), RATE).integrated_lufs is None
    assert measure(np.zeros((2, RATE), dtype=np.float32), RATE).true_peak_dbtp is None
    assert integrated_lufs(_sine(1000, -10, 0.3), RATE) is None
    audio = np.zeros((2, RATE), dtype=np.float32)
    out, done = Normaliser(audio, RATE).normalise(-14, -1)
    assert out is audio and done.gain_db == 0


def _drums(seconds: float) -> np.ndarray:
    """A quiet pad with a sharp, loud hit every half second: peaks far above the loudness."""
    rng = np.random.default_rng(7)
    audio = _sine(220, -24, seconds)
    hit = rng.standard_normal(480).astype(np.float32) * np.exp(-np.arange(480) / 60)
    for start in range(0, audio.shape[1] - 480, RATE // 2):
        audio[:, start:start + 480] += 0.9 * hit
    return audio


@pytest.mark.parametrize("target", [-14.0, -18.0, -9.0])
def test_normalising_reaches_the_loudness_with_peaks_under_the_ceiling(target: float) -> None:
    audio = _drums(6)
    before = measure(audio, RATE)
    out, done = Normaliser(audio, RATE).normalise(target, -1.0)
    after = measure(out, RATE)
    assert after.integrated_lufs == pytest.approx(target, abs=0.2)
    assert after.true_peak_dbtp is not None and after.true_peak_dbtp <= -1.0 + 1e-3
    assert done.before == before
    assert measure(audio, RATE) == before  # the input is left as it was


def test_the_limiter_leaves_the_mix_alone_away_from_its_peaks() -> None:
    audio = _sine(220, -30, 4)
    audio[:, RATE:RATE + 48] += 0.9  # one click at 1 s
    out, done = Normaliser(audio, RATE).normalise(-20, -1.0)
    assert done.limited_db > 3
    gain = out / np.where(audio == 0, np.nan, audio)
    steady = 10 ** (done.gain_db / 20)
    far = slice(RATE + round(12 * RELEASE_S * RATE), 4 * RATE)
    assert np.nanmax(np.abs(gain[:, far] - steady)) < 1e-3 * steady  # after the release
    assert np.nanmax(np.abs(gain[:, :RATE - RATE // 10] - steady)) < 1e-3 * steady  # before


@pytest.mark.parametrize("value", [-40.0, -4.0, float("nan")])
def test_a_target_outside_the_range_is_refused_naming_the_option(value: float) -> None:
    with pytest.raises(KantokuError) as error:
        check_target(value, "--loudness")
    assert "--loudness" in str(error.value) and "-30" in str(error.value)
    assert check_target(-16, "--loudness") == -16
