"""Generated sound events: the one source of test and demo audio.

Eight classes a person can tell apart by ear, each a function ``(duration s, rate Hz, rng) ->
float32 (samples,)`` peaking near 0.5, with labels and plain-word captions. Everything is
seeded: the same ``seed`` gives the same samples.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SoundClass:
    """A generated sound class: its generator, labels and captions."""

    name: str
    labels: tuple[str, ...]
    captions: tuple[str, ...]
    generate: Callable[[float, int, np.random.Generator], np.ndarray]


def _t(duration: float, rate: int) -> np.ndarray:
    return np.arange(int(round(duration * rate))) / rate


def _normalise(x: np.ndarray, peak: float = 0.5) -> np.ndarray:
    m = np.max(np.abs(x))
    return (x * (peak / m) if m > 0 else x).astype(np.float32)


def tone(duration: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A steady sine tone (300-900 Hz) with a soft second harmonic."""
    t = _t(duration, rate)
    f = rng.uniform(300, 900)
    return _normalise(np.sin(2 * np.pi * f * t) + 0.2 * np.sin(4 * np.pi * f * t))


def alarm(duration: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A beeping alarm: a 2-3 kHz square-ish tone gated on and off 4 times a second."""
    t = _t(duration, rate)
    f = rng.uniform(2000, 3000)
    gate = (np.sin(2 * np.pi * 4 * t + rng.uniform(0, np.pi)) > 0).astype(float)
    return _normalise(np.tanh(3 * np.sin(2 * np.pi * f * t)) * gate)


def chirp(duration: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Rising chirps: 0.5 s sweeps from 200 Hz to 4 kHz, repeated."""
    t = _t(duration, rate)
    period = rng.uniform(0.4, 0.7)
    phase_t = np.mod(t, period)
    k = np.log(4000 / 200) / period
    phase = 2 * np.pi * 200 * (np.exp(k * phase_t) - 1) / k
    return _normalise(np.sin(phase) * (phase_t < period * 0.9))


def ticking(duration: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A ticking clock: short decaying clicks every 0.5 s."""
    n = int(round(duration * rate))
    x = np.zeros(n)
    click = rng.standard_normal(int(0.004 * rate)) * np.exp(-np.linspace(0, 8, int(0.004 * rate)))
    start = int(rng.uniform(0, 0.5) * rate)
    for i in range(start, n - len(click), int(0.5 * rate)):
        x[i:i + len(click)] += click
    return _normalise(x)


def hum(duration: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A low engine hum: 40-70 Hz harmonics with a slow wobble."""
    t = _t(duration, rate)
    f = rng.uniform(40, 70) * (1 + 0.03 * np.sin(2 * np.pi * 0.5 * t))
    phase = 2 * np.pi * np.cumsum(f) / rate
    return _normalise(sum(np.sin(h * phase) / h for h in range(1, 6)))


def rain(duration: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Rain-like noise: white noise smoothed by a one-pole filter, with random droplets."""
    n = int(round(duration * rate))
    noise = rng.standard_normal(n)
    smooth = np.empty(n)
    acc = 0.0
    a = 0.6
    for i in range(0, n, 4096):  # vectorised one-pole filter, block by block
        block = noise[i:i + 4096]
        powers = a ** np.arange(1, len(block) + 1)
        y = (1 - a) * np.convolve(block, a ** np.arange(len(block)))[: len(block)] + acc * powers
        smooth[i:i + len(block)] = y
        acc = y[-1]
    drops = (rng.random(n) < 30 / rate) * rng.uniform(2, 5, n)
    return _normalise(smooth + np.convolve(drops, np.exp(-np.linspace(0, 6, 64)), mode="same") * 0.3)


def bird(duration: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Bird-like warbles: 3-5 kHz tones frequency-modulated at 20-30 Hz, in short phrases."""
    t = _t(duration, rate)
    fc = rng.uniform(3000, 5000)
    fm = rng.uniform(20, 30)
    phase = 2 * np.pi * fc * t + (600 / fm) * np.sin(2 * np.pi * fm * t)
    env = np.clip(np.sin(2 * np.pi * rng.uniform(0.8, 1.5) * t + rng.uniform(0, 6)), 0, None) ** 2
    return _normalise(np.sin(phase) * env)


def knock(duration: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Knocking: groups of three low thumps (150-250 Hz decaying bursts)."""
    n = int(round(duration * rate))
    x = np.zeros(n)
    f = rng.uniform(150, 250)
    length = int(0.08 * rate)
    tt = np.arange(length) / rate
    thump = np.sin(2 * np.pi * f * tt) * np.exp(-tt * 60)
    pos = int(rng.uniform(0, 0.3) * rate)
    while pos + 3 * int(0.18 * rate) + length < n:
        for k in range(3):
            i = pos + k * int(0.18 * rate)
            x[i:i + length] += thump
        pos += int(1.2 * rate)
    if not x.any():
        x[: min(n, length)] += thump[: min(n, length)]
    return _normalise(x)


CLASSES: dict[str, SoundClass] = {
    c.name: c
    for c in (
        SoundClass("tone", ("Tone", "Sine wave"), ("A steady tone hums at one pitch.",
                   "A pure electronic tone plays without changing."), tone),
        SoundClass("alarm", ("Alarm", "Beep"), ("An alarm beeps again and again.",
                   "A high electronic beeping repeats quickly."), alarm),
        SoundClass("chirp", ("Chirp", "Sweep"), ("Tones sweep upward over and over.",
                   "A rising whistle repeats in short bursts."), chirp),
        SoundClass("ticking", ("Tick", "Clock"), ("A clock ticks steadily.",
                   "Short clicks tick twice every second."), ticking),
        SoundClass("hum", ("Engine", "Hum"), ("A low engine hums and wobbles.",
                   "A deep motor drones in the background."), hum),
        SoundClass("rain", ("Rain", "Water"), ("Rain falls steadily with a few drops.",
                   "A soft hiss of rain with droplets."), rain),
        SoundClass("bird", ("Bird", "Bird vocalization"), ("A bird warbles in short phrases.",
                   "High chirping bird song comes and goes."), bird),
        SoundClass("knock", ("Knock", "Door"), ("Someone knocks three times on a door.",
                   "Knocking on wood in groups of three."), knock),
    )
}


def generate(name: str, duration: float, rate: int = 16000, seed: int = 0, channels: int = 1) -> np.ndarray:
    """A clip of class ``name``: ``(samples,)`` for mono, ``(channels, samples)`` otherwise.

    Extra channels are the same event at slightly different gains, as a stereo recording is.
    """
    rng = np.random.default_rng(seed)
    x = CLASSES[name].generate(duration, rate, rng)
    if channels == 1:
        return x
    gains = np.linspace(1.0, 0.7, channels, dtype=np.float32)
    return (gains[:, None] * x[None, :]).astype(np.float32)


def write_clip(path, name: str, duration: float, rate: int = 16000, seed: int = 0,
               channels: int = 1, subtype: str = "PCM_16") -> np.ndarray:
    """Generate a clip and write it with soundfile (format from the extension). Returns the data."""
    import soundfile as sf
    from pathlib import Path

    x = generate(name, duration, rate, seed, channels)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(os.fsencode(path), x.T if x.ndim == 2 else x, rate, subtype=subtype)
    return x
