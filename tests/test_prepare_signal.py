"""prepare's signal notes (issue 22): clips with a large DC offset, channels in antiphase that
cancel in the mono downmix, and WAV files holding more data than their header declares."""

from __future__ import annotations

import struct

import numpy as np
import soundfile as sf

from lasskit.corpora import prepare_corpus
from lasskit.provenance import Ledger

RATE = 16000


def _noise(seconds: float, level: float, seed: int) -> np.ndarray:
    return (level * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


def _wav_declaring(path, samples: np.ndarray, declared_frames: int) -> None:
    """A 16-bit mono WAV whose data chunk size says ``declared_frames`` but which holds all ``samples``."""
    pcm = np.round(samples * 32767).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, RATE, RATE * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", declared_frames * 2) + pcm
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def _folder(tmp_path):
    src = tmp_path / "raw"
    src.mkdir()
    sf.write(src / "plain.wav", _noise(2, 0.1, 1), RATE, subtype="PCM_16")
    sf.write(src / "dc.wav", (0.1 + _noise(4, 0.005, 2)).astype(np.float32), RATE, subtype="PCM_16")
    x = _noise(2, 0.2, 3)
    sf.write(src / "antiphase.wav", np.stack([x, -x], axis=1), RATE, subtype="PCM_16")
    y = _noise(2, 0.2, 4)
    sf.write(src / "stereo.wav", np.stack([y, _noise(2, 0.2, 5)], axis=1), RATE, subtype="PCM_16")
    _wav_declaring(src / "short_header.wav", _noise(4, 0.1, 6), RATE)  # declares 1 s of 4 s
    return src


def test_prepare_counts_dc_antiphase_and_undeclared_wav_data(tmp_path):
    src = _folder(tmp_path)
    (report,) = prepare_corpus("folder", src, tmp_path / "data", jobs=1)
    notes = "\n".join(report.notes)
    assert report.items == 5
    assert "1 clip(s) with a large DC offset" in notes and "audio/dc.wav" in notes
    assert "1 clip(s) lose more than 20 dB in the mono downmix" in notes and "audio/antiphase.wav" in notes
    assert "stereo.wav" not in notes and "plain.wav" not in notes
    assert "1 WAV file(s) hold more audio than their header declares (audio/short_header.wav; 48000 frame(s)" in notes
    assert "the declared length was used" in notes
    # what was used: the declared second
    assert sf.info(tmp_path / "data" / "raw" / "audio" / "short_header.wav").frames == RATE
    # measured once, kept in the records: a re-run that reuses every output still counts them
    records = Ledger(tmp_path / "data" / "raw").records
    assert records["audio/dc.wav"].extra["dc_share"] > 0.99
    assert records["audio/antiphase.wav"].extra["downmix_loss_db"] > 60
    assert 2 < records["audio/stereo.wav"].extra["downmix_loss_db"] < 4  # independent channels: about 3 dB
    (again,) = prepare_corpus("folder", src, tmp_path / "data", jobs=1)
    assert again.skipped == 5 and not again.made
    assert [n for n in again.notes if "DC offset" in n or "downmix" in n or "header declares" in n] == \
        [n for n in report.notes if "DC offset" in n or "downmix" in n or "header declares" in n]
