"""Parity harness for the model zoo (NOT run in CI; see CONTRIBUTING.md "Zoo parity harness").

Two steps, two interpreters:

1. ``upstream`` (run with the upstream's own virtual environment, e.g. /work/scratch/venv): builds
   the upstream network from its repository at a pinned commit (``--src``: the folder that holds
   its ``models/`` package), fills every tensor with the golden weight recipe
   (:func:`lasskit.miniature.recipe_tensor`; the conv-STFT kernels are left as the upstream code
   builds them), saves that state as a Lightning-layout checkpoint (``ss_model.*``), runs the
   upstream inference path ``ss_model({"mixture": m, "condition": c})["waveform"]`` in eval mode
   on 10 s and 23 s inputs (:mod:`lasskit.models.golden`) at the network's rate, and writes

   - ``--out``/``<model>_<seconds>s.npy``: the full outputs (stay in the scratch folder),
   - ``--out``/``<model>.ckpt``: the checkpoint,
   - ``tests/data/zoo_<model>_golden.npz``: strided outputs, statistics, input digests,
   - ``tests/data/zoo_<model>_state_dict.tsv``: every key, shape and dtype of the upstream network.

2. ``compare`` (run with lasskit's venv): loads ``<model>.ckpt`` through lasskit's model class
   (strict loading, STFT kernels checked against the DFT formula), separates the same inputs at the
   network's rate and prints the max abs difference against the full upstream outputs (<= 1e-5
   passes).

Example (AudioSep-DP 16 kHz)::

    git -C /work/.mirror/apple-yinhan+TQ-SED/repo archive --prefix=tqsed/ HEAD LASS_codes/models \\
        | tar x -C /work/scratch
    /work/scratch/venv/bin/python parity/zoo_parity.py upstream audiosep-dp-16k \\
        --src /work/scratch/tqsed/LASS_codes --out /work/scratch/out
    .venv/bin/python parity/zoo_parity.py compare audiosep-dp-16k --out /work/scratch/out
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lasskit.models.golden import digest, parity_condition, parity_mixture, summary  # noqa: E402

SECONDS = (10.0, 23.0)
UPSTREAM = {  # model -> (module in --src, constructor keywords, network rate)
    "audiosep": ("models.resunet", {}, 32000),
    "audiosep-dp-16k": ("models.resunet", {"dprnn": True, "dprnn_layers": 6, "dprnn_hidden": 256}, 16000),
    "audiosep-dp-32k": ("models.resunet_32k", {"dprnn": True, "dprnn_layers": 6, "dprnn_hidden": 256}, 32000),
}
KERNELS = ("base.stft.", "base.istft.")


def upstream(model: str, src: Path, out: Path) -> None:
    import torch

    from lasskit.miniature import recipe_tensor

    module_name, kwargs, rate = UPSTREAM[model]
    sys.path.insert(0, str(src))
    module = importlib.import_module(module_name)
    net = module.ResUNet30(input_channels=1, output_channels=1, condition_size=512, **kwargs)
    state = net.state_dict()
    filled = {k: (v if k.startswith(KERNELS) else recipe_tensor(k, tuple(v.shape))) for k, v in state.items()}
    net.load_state_dict(filled, strict=True)
    net.eval()
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {f"ss_model.{k}": v for k, v in filled.items()}}, out / f"{model}.ckpt")
    data = ROOT / "tests" / "data"
    lines = ["key\tshape\tdtype"] + [
        f"{k}\t{'x'.join(str(d) for d in v.shape) or 'scalar'}\t{str(v.dtype).removeprefix('torch.')}"
        for k, v in state.items()]
    (data / f"zoo_{model}_state_dict.tsv").write_text("\n".join(lines) + "\n")
    golden = {"rate": np.array(rate), "condition_sha256": np.array(digest(parity_condition()))}
    condition = torch.from_numpy(parity_condition())
    for seconds in SECONDS:
        mixture = parity_mixture(seconds, rate)
        start = time.perf_counter()
        with torch.no_grad():
            wave = net({"mixture": torch.from_numpy(mixture), "condition": condition})["waveform"].numpy()
        print(f"{model} {seconds:g} s: upstream forward {time.perf_counter() - start:.1f} s, torch {torch.__version__}")
        np.save(out / f"{model}_{seconds:g}s.npy", wave)
        s = summary(wave)
        tag = f"{seconds:g}s"
        golden[f"strided_{tag}"] = s["strided"]
        golden[f"stats_{tag}"] = s["stats"]
        golden[f"mixture_sha256_{tag}"] = np.array(digest(mixture))
    np.savez_compressed(data / f"zoo_{model}_golden.npz", **golden)


def compare(model: str, out: Path) -> float:
    import torch

    from lasskit.models.registry import resolve

    cls, _ = resolve(model)

    class Fixed:
        def embed(self, queries):
            return torch.from_numpy(parity_condition()).expand(len(queries), -1)

    sep = cls(checkpoint=str(out / f"{model}.ckpt"), text_encoder=Fixed())
    worst = 0.0
    condition = torch.from_numpy(parity_condition())
    for seconds in SECONDS:
        mixture = torch.from_numpy(parity_mixture(seconds, sep.network_rate))[:, 0]
        start = time.perf_counter()
        ours = sep.separate_embedded(mixture, condition).numpy()
        took = time.perf_counter() - start
        theirs = np.load(out / f"{model}_{seconds:g}s.npy")[:, 0]
        diff = float(np.abs(ours - theirs).max())
        worst = max(worst, diff)
        print(f"{model} {seconds:g} s: lasskit forward {took:.1f} s, max abs diff {diff:.3g} "
              f"(peak {float(np.abs(theirs).max()):.3g})")
    print(f"{model}: {'PASS' if worst <= 1e-5 else 'FAIL'} (max abs diff {worst:.3g}, tolerance 1e-5)")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("upstream", "compare"))
    parser.add_argument("model", choices=sorted(UPSTREAM))
    parser.add_argument("--src", type=Path, help="upstream folder holding models/ (upstream step)")
    parser.add_argument("--out", type=Path, default=Path("/work/scratch/out"))
    args = parser.parse_args()
    if args.step == "upstream":
        upstream(args.model, args.src, args.out)
    else:
        sys.exit(0 if compare(args.model, args.out) <= 1e-5 else 1)


if __name__ == "__main__":
    main()
