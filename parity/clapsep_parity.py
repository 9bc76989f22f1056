"""Parity harness for ``clapsep`` (NOT run in CI; see CONTRIBUTING.md "CLAPSep parity harness").

Two steps, two interpreters:

1. ``upstream`` (the authors' packages: /work/scratch/clapsep-venv): builds their Lightning module
   from their repository at a pinned commit (``--src``: the folder holding ``model/`` and
   ``experiments/``): ``laion_clap.CLAP_Module(enable_fusion=False, amodel="HTSAT-base")`` (the
   hub downloads of RoBERTa and its tokenizer are stubbed: the text tower is not on the separation
   path, and lasskit's is checked by tests/test_text_encoder.py), ``HTSAT_Decoder(**config.model)``
   and ``LightningModule(clap, decoder, use_lora=True, rank=16, nfft=1024)``; fills the LoRA copy
   ``audio_branch.*`` and ``decoder_model.*`` with the golden weight recipe
   (:func:`lasskit.miniature.recipe_tensor`; fixed tensors as their code builds them) and writes

   - ``--out``/``clapsep_clap.pt``: a CLAP-layout file (``module.audio_branch.*`` base weights,
     ``module.audio_projection.*``) whose attention biases differ from the tuned ones (recipe of
     ``clap:`` + key), so the checkpoint's override is exercised,
   - ``--out``/``clapsep_best_model.ckpt``: ``{"state_dict": ...}`` holding what the authors'
     ``on_save_checkpoint`` keeps (keys with ``lora``, ``attn.qkv.bias``, ``attn.proj.bias``,
     ``decoder_model``),
   - ``tests/data/clapsep_golden.npz`` and ``tests/data/clapsep_state_dict.tsv`` (that file's keys),

   then runs their inference path (``test_step``: torchlibrosa STFT, ``magphase``, forward hooks on
   the LoRA copy fed ``torchaudio.transforms.Resample(32000, 48000)`` of the window, decoder,
   ``wav_reconstruct``) on the 10 s and 23 s inputs of :mod:`lasskit.models.golden` at 32 kHz, cut
   by lasskit's window rule (:func:`lasskit.models.clapsep.window_spans`), with the condition
   ``normalize(concat(pos, neg))``: 10 s without a negative (zeros), 23 s with one. All of this
   twice: at the released size (files ``clapsep_*``, golden cases ``10s``, ``23s``) and for a
   width-16 miniature of the same code (:data:`MINI`; ``clapsep_mini_*``, ``mini_10s``, ``mini_23s``),
   which the default test suite can afford.

2. ``compare`` (lasskit's venv): loads both files through ``lasskit.models.clapsep.ClapSep``
   (strict), runs ``separate_embedded`` on the same inputs and prints the max abs difference of
   the whole outputs (<= 1e-5 passes).

Example::

    git -C /work/.mirror/Aisaka0v0+CLAPSep/repo archive 5404111a30701ef36301cb7c7255b38ef24f7c6d \\
        model experiments | tar x -C /work/scratch/clapsep
    /work/scratch/clapsep-venv/bin/python parity/clapsep_parity.py upstream --src /work/scratch/clapsep
    .venv/bin/python parity/clapsep_parity.py compare
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lasskit.models.golden import digest, pair_condition, parity_mixture, summary  # noqa: E402

RATE = 32000
CASES = {"10s": (10.0, None), "23s": (23.0, 10)}
"""tag -> (seconds, seed of the negative query's embedding or None for the zero vector)."""
KEEP = ("lora", "attn.qkv.bias", "attn.proj.bias", "decoder_model")
"""What the authors' (commented) ``on_save_checkpoint`` keeps: the tuned tensors."""


def conditions(tag: str) -> np.ndarray:
    """(1, 1024) float32: ``normalize(concat(positive, negative))`` of the case."""
    return pair_condition(CASES[tag][1])


def _fixed(key: str) -> bool:
    return (key.endswith(("relative_position_index", "attn_mask")) or "spectrogram_extractor." in key
            or "logmel_extractor." in key)


def _stub_hub() -> None:
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    import transformers

    def roberta(cls, *args, **kwargs):
        return cls(transformers.RobertaConfig(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1,
                                              layer_norm_eps=1e-5, pad_token_id=1))

    transformers.RobertaModel.from_pretrained = classmethod(roberta)
    for name in ("BertTokenizer", "RobertaTokenizer", "BartTokenizer"):  # laion_clap builds all three at import
        setattr(getattr(transformers, name), "from_pretrained", classmethod(lambda cls, *a, **k: None))


MINI = {"embed_dim": 16, "depths": [2, 2, 2, 2], "num_heads": [1, 2, 2, 4], "lora_rank": 4,
        "decoder": {"lan_embed_dim": 1024, "depths": [1, 1, 1, 1], "embed_dim": 16, "encoder_embed_dim": 16,
                    "num_heads": [1, 2, 2, 4], "phase": False, "spec_factor": 8, "d_attn": 64,
                    "n_masker_layer": 1, "conv": False}}
"""The miniature: the same code at width 16 (HTSAT depths 2/2/2/2, LoRA rank 4, masker 64 x 1), fast
enough for the default test suite; its golden cases are ``mini_10s`` and ``mini_23s``."""


def _tsv(path: Path, state: dict) -> None:
    lines = ["key\tshape\tdtype"] + [
        f"{k}\t{'x'.join(str(d) for d in v.shape) or 'scalar'}\t{str(v.dtype).removeprefix('torch.')}"
        for k, v in state.items()]
    path.write_text("\n".join(lines) + "\n")


def _build(src: Path, mini: bool):
    import laion_clap

    from model.CLAPSep import LightningModule
    from model.CLAPSep_decoder import HTSAT_Decoder

    config = json.loads((src / "experiments" / "CLAPSep_base" / "config.json").read_text())
    clap = laion_clap.CLAP_Module(enable_fusion=False, amodel="HTSAT-base", device="cpu")
    if not mini:
        return clap, LightningModule(clap, HTSAT_Decoder(**config["model"]), lr=config["optim"]["lr"],
                                     use_lora=config["lora"], rank=config["lora_rank"], nfft=config["nfft"])
    from laion_clap.clap_module.htsat import HTSAT_Swin_Transformer

    base = clap.model.audio_branch
    clap.model.audio_branch = HTSAT_Swin_Transformer(
        spec_size=256, patch_size=4, patch_stride=(4, 4), num_classes=base.num_classes, embed_dim=MINI["embed_dim"],
        depths=MINI["depths"], num_heads=MINI["num_heads"], window_size=8, config=base.config)
    width = MINI["embed_dim"] * 8
    import torch

    clap.model.audio_projection = torch.nn.Sequential(torch.nn.Linear(width, 512), torch.nn.ReLU(),
                                                      torch.nn.Linear(512, 512))
    return clap, LightningModule(clap, HTSAT_Decoder(**MINI["decoder"]), lr=1e-4, use_lora=True,
                                 rank=MINI["lora_rank"], nfft=config["nfft"])


def upstream(src: Path, out: Path) -> None:
    import torch

    from lasskit.miniature import recipe_tensor
    from lasskit.models.clapsep import window_spans

    _stub_hub()
    sys.path.insert(0, str(src))
    import torchaudio
    from torchlibrosa.stft import magphase

    data = ROOT / "tests" / "data"
    golden = {"rate": np.array(RATE)}
    resampler = torchaudio.transforms.Resample(RATE, 48000)
    for size in ("mini", "full"):
        clap, lm = _build(src, size == "mini")
        state = lm.state_dict()
        with torch.no_grad():
            for key, value in state.items():
                if key.startswith(("audio_branch.", "decoder_model.")) and not _fixed(key):
                    value.copy_(recipe_tensor(key, tuple(value.shape)).to(value.dtype))
        lm.eval()
        state = lm.state_dict()
        out.mkdir(parents=True, exist_ok=True)
        clap_file = {}
        for key, value in state.items():
            if key.startswith("audio_branch.") and ".lora_" not in key:
                if key.endswith(("attn.qkv.bias", "attn.proj.bias")):
                    value = recipe_tensor("clap:" + key, tuple(value.shape))
                clap_file["module." + key] = value.clone()
        for key, value in clap.model.audio_projection.state_dict().items():
            clap_file[f"module.audio_projection.{key}"] = recipe_tensor(f"audio_projection.{key}", tuple(value.shape))
        prefix = "clapsep_" if size == "full" else "clapsep_mini_"
        torch.save({"state_dict": clap_file, "epoch": 15}, out / f"{prefix}clap.pt")
        released = {k: v.clone() for k, v in state.items() if any(e in k for e in KEEP)}
        torch.save({"state_dict": released, "epoch": 149}, out / f"{prefix}best_model.ckpt")
        _tsv(data / f"{prefix}state_dict.tsv", released)
        if size == "mini":
            _tsv(data / f"{prefix}clap_state_dict.tsv", clap_file)
        for tag, (seconds, _) in CASES.items():
            mixture = parity_mixture(seconds, RATE)[:, 0]
            embed = torch.from_numpy(conditions(tag))
            x = torch.from_numpy(mixture)
            pieces = []
            start_time = time.perf_counter()
            with torch.no_grad():
                for start, end in window_spans(x.shape[-1]):
                    w = x[:, start:end]
                    real, imag = lm.stft(w)
                    mag, cos, sin = magphase(real, imag)
                    del lm.features[:]
                    lm.features.append(mag)
                    lm.audio_branch({"waveform": resampler(w)})
                    mask = lm.decoder_model(hidden_state=lm.features[-1], skip_features=lm.features[:-1],
                                            embed=embed)
                    pieces.append(lm.wav_reconstruct(mask, mag, cos, sin, length=w.shape[-1]))
                    del lm.features[:]
            wave = torch.cat(pieces, dim=-1).numpy()
            name = tag if size == "full" else f"mini_{tag}"
            print(f"clapsep {name}: upstream forward {time.perf_counter() - start_time:.1f} s "
                  f"({len(pieces)} window(s)), torch {torch.__version__}")
            np.save(out / f"clapsep_{name}.npy", wave)
            s = summary(wave)
            golden[f"strided_{name}"] = s["strided"]
            golden[f"stats_{name}"] = s["stats"]
            golden[f"mixture_sha256_{name}"] = np.array(digest(mixture))
            golden[f"condition_sha256_{name}"] = np.array(digest(conditions(tag)))
    np.savez_compressed(data / "clapsep_golden.npz", **golden)


def compare(out: Path) -> float:
    import torch

    from lasskit.models.clapsep import ClapSep

    class NoText:
        def embed(self, queries):
            raise AssertionError("the harness gives conditions, not queries")

    worst = 0.0
    for size in ("mini", "full"):
        prefix = "clapsep_" if size == "full" else "clapsep_mini_"
        start = time.perf_counter()
        sep = ClapSep(checkpoint=str(out / f"{prefix}best_model.ckpt"), clap_checkpoint=str(out / f"{prefix}clap.pt"),
                      text_encoder=NoText())
        print(f"clapsep {size}: loaded in {time.perf_counter() - start:.1f} s")
        for tag, (seconds, _) in CASES.items():
            name = tag if size == "full" else f"mini_{tag}"
            mixture = torch.from_numpy(parity_mixture(seconds, RATE)[:, 0])
            start = time.perf_counter()
            ours = sep.separate_embedded(mixture, torch.from_numpy(conditions(tag))).numpy()
            took = time.perf_counter() - start
            theirs = np.load(out / f"clapsep_{name}.npy")
            diff = float(np.abs(ours - theirs).max())
            worst = max(worst, diff)
            print(f"clapsep {name}: lasskit forward {took:.1f} s ({sep.windows_run} window(s)), max abs diff "
                  f"{diff:.3g} (peak {float(np.abs(theirs).max()):.3g})")
    print(f"clapsep: {'PASS' if worst <= 1e-5 else 'FAIL'} (max abs diff {worst:.3g}, tolerance 1e-5)")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("upstream", "compare"))
    parser.add_argument("--src", type=Path, default=Path("/work/scratch/clapsep"),
                        help="upstream folder holding model/ and experiments/ (upstream step)")
    parser.add_argument("--out", type=Path, default=Path("/work/scratch/out"))
    args = parser.parse_args()
    if args.step == "upstream":
        upstream(args.src, args.out)
    else:
        sys.exit(0 if compare(args.out) <= 1e-5 else 1)


if __name__ == "__main__":
    main()
