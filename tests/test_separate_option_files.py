"""An option naming a file or folder (a CLAP file, a tokenizer folder, a member's checkpoint) is
recorded by content: replaced in place at the same path, the outputs are made again, not kept
stale (options were recorded only as text)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from lasskit import audio, soundgen
from lasskit.separation.model import option_files
from lasskit.splits import write_split_csv

GAIN_MODEL = """
import torch

from lasskit.models.base import SeparationModel


class FileGain(SeparationModel):
    name = "file-gain"

    def __init__(self, checkpoint=None, device="cpu", gain_file=None):
        super().__init__(checkpoint, device)
        with open(gain_file, encoding="utf-8") as fh:
            self.gain = float(fh.read())

    def separate(self, mixtures, queries):
        return mixtures * self.gain
"""


def test_option_files_hash_files_and_folders(tmp_path):
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "vocab.json").write_text("{}")
    (tmp_path / "w.pt").write_bytes(b"abc")
    found = option_files({"tokenizer": str(tmp_path / "tok"), "clap_checkpoint": str(tmp_path / "w.pt"),
                          "negative": "a dog", "channels": 4, "missing": str(tmp_path / "nope")})["option_files"]
    assert set(found) == {"tokenizer", "clap_checkpoint"}
    assert found["clap_checkpoint"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    before = found["tokenizer"]
    (tmp_path / "tok" / "merges.txt").write_text("#version: 0.2\n")
    assert option_files({"tokenizer": str(tmp_path / "tok")})["option_files"]["tokenizer"] != before
    assert option_files({"negative": "a dog"}) == {}  # no path: the settings stay as older records have them


def test_a_file_option_replaced_in_place_remakes_the_outputs(tmp_path, run_cli):
    ws = tmp_path / "ws"
    split = ws / "data" / "splits" / "mini"
    audio.write(split / "mixture" / "a.wav", soundgen.generate("bird", 0.3, 16000, seed=1).astype(np.float32),
                16000, "float")
    write_split_csv(split, pd.DataFrame([{"mixture": "a.wav", "query": "a bird"}]))
    (tmp_path / "gain.py").write_text(GAIN_MODEL)
    gain = tmp_path / "gain.txt"
    gain.write_text("0.5")
    args = ("-w", ws, "separate", "--split", "mini", "--model", f"{tmp_path / 'gain.py'}:FileGain",
            "-o", f"gain_file={gain}", "--device", "cpu")
    code, out, err = run_cli(*args)
    assert code == 0, err
    out_wav = ws / "exp" / "file-gain" / "mini" / "a.wav"
    first = audio.load(out_wav)
    gain.write_text("0.25")  # same path, other content
    code, out, err = run_cli(*args)
    assert code == 0, err
    np.testing.assert_allclose(audio.load(out_wav), first / 2, atol=1e-7)
    record = json.loads((out_wav.parent / "separate.json").read_text())
    assert "option_files" in json.dumps(record)
