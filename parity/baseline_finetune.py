"""Fine-tune parity harness for the organizers' baseline (NOT run in CI; see CONTRIBUTING.md
"Baseline fine-tune harness"): a lasskit ``last.ckpt`` is a drop-in for their LightningModule.

Three steps, two interpreters:

1. ``lasskit OUT`` (lasskit's venv): a 2-step ``train`` run of the full-size ResUNet30 with a CLAP
   file holding every ``query_encoder`` name of their module (a tiny random text tower) ->
   ``OUT/ws/exp/train/full/last.ckpt``; prints its key count against
   ``baseline_checkpoint_keys.tsv`` and its optimizer group size.
2. ``old-layout CKPT OUT`` (lasskit's venv, optional control): the same checkpoint with the
   optimizer state in lasskit's own 186-parameter group (what it wrote before), to show the failure.
3. ``organizers CKPT --src DIR`` (the organizers' environment: Python 3.10, torch 1.13.1,
   lightning 2.0.0, torchlibrosa 0.1.0, pyloudnorm; ``DIR`` holds their repository at a pinned
   commit): their ``AudioSep`` strictly loads CKPT, then ``trainer.fit(model, ckpt_path=CKPT)``
   resumes it for 2 steps with their Trainer arguments. Their real code: AudioSep
   (training_step, configure_optimizers), ResUNet30 with torchlibrosa's conv STFT, SegmentMixer,
   l1_wav, constant_warm_up. Stand-ins: ``CLAP_Encoder`` (its real build needs the CLAP weights
   and roberta-base hub files, unreachable here): a frozen module with the checkpoint's
   ``query_encoder`` key layout whose ``get_query_embed`` returns fixed unit vectors; data:
   random 1 s waveforms in their batch format; ``huggingface_hub``'s mixin when not installed.
   ``sync_batchnorm`` is on only with a GPU (torch's SyncBatchNorm refuses CPU modules).
"""
import sys
from pathlib import Path


def step_lasskit(argv):
    """Step 1 (lasskit's venv)."""
    import sys
    from pathlib import Path

    import torch
    import transformers

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_train import write_corpus  # noqa: E402

    from lasskit.miniature import write_tokenizer
    from lasskit.models.text_encoder import EMBEDDING_SIZE, build_projection
    from lasskit.training import TrainConfig, train
    from lasskit.workspace import Workspace

    out = Path(argv[0]).resolve()
    golden = [l.split("\t")[0] for l in (Path(__file__).resolve().parents[2] / "shared" / "golden" / "dcase2024_baseline" / "baseline_checkpoint_keys.tsv").read_text().splitlines()[1:]]
    ws = out / "ws"
    write_corpus(ws / "data" / "gen", train=4, held_out=1)
    tok = write_tokenizer(out / "tokenizer")
    cfg = transformers.RobertaConfig(vocab_size=261, hidden_size=32, num_hidden_layers=12, num_attention_heads=1,
                                     intermediate_size=37, max_position_embeddings=514, type_vocab_size=1,
                                     layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    torch.manual_seed(0)
    roberta = transformers.RobertaModel(cfg, add_pooling_layer=True)
    clap = {f"module.text_branch.{k}": v for k, v in roberta.state_dict().items() if k != "embeddings.position_ids"}
    clap.update({f"module.text_projection.{k}": v for k, v in build_projection(32, EMBEDDING_SIZE).state_dict().items()})
    prefix = "query_encoder.model."
    for key in golden:
        if key.startswith(prefix) and not key.startswith((prefix + "text_branch.", prefix + "text_projection.")):
            clap["module." + key[len(prefix):]] = torch.zeros(1)
    torch.save({"state_dict": clap}, out / "clap_full.pt")
    config = TrainConfig(model="dcase2024-baseline", name="full", options={"tokenizer": str(tok), "clap_checkpoint": str(out / "clap_full.pt")},
                         steps=2, batch_size=2, segment=0.5, snr=(-5.0, 5.0), warmup_steps=0, lr=1e-3, val=None, workers=0,
                         log_every=1, seed=0, overwrite=True)
    print(train(config, Workspace.open(ws))["global_step"])
    ck = torch.load(ws / "exp" / "train" / "full" / "last.ckpt", map_location="cpu", weights_only=False)
    print("keys", len(ck["state_dict"]), "== golden", set(ck["state_dict"]) == set(golden))
    g = ck["optimizer_states"][0]
    print("group", len(g["param_groups"][0]["params"]), "states", len(g["state"]), "loops" in ck, ck["global_step"])


def step_old_layout(argv):
    """Step 2 (lasskit's venv): the control."""
    import sys

    import torch

    from lasskit.models.resunet import ResUNet30
    from lasskit.training.layout import from_organizers_optimizer

    ck = torch.load(argv[0], map_location="cpu", weights_only=False)
    rows = [l.split("\t") for l in open(Path(__file__).resolve().parents[1] / "tests" / "data" / "baseline_optimizer_group.tsv").read().splitlines()[1:]]
    network = [n for n, _ in ResUNet30().named_parameters()]
    optimized = [n for _, n, f in rows if f == "1"]
    ck["optimizer_states"][0] = from_organizers_optimizer(ck["optimizer_states"][0], optimized, network)
    print(len(ck["optimizer_states"][0]["param_groups"][0]["params"]))
    torch.save(ck, argv[1])


def step_organizers(argv):
    """Step 3 (the organizers' environment)."""
    import random
    import sys
    import types
    from pathlib import Path

    import torch
    import torch.nn as nn

    sys.path.insert(0, str(Path(argv[argv.index("--src") + 1]).resolve()))
    CKPT = argv[0]
    ck = torch.load(CKPT, map_location="cpu")
    QUERY = {k[len("query_encoder."):]: v for k, v in ck["state_dict"].items() if k.startswith("query_encoder.")}


    class CLAP_Encoder(nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__()
            self.encoder_type = "CLAP"
            for name, value in QUERY.items():
                *path, leaf = name.split(".")
                module = self
                for part in path:
                    if part not in module._modules:
                        module.add_module(part, nn.Module())
                    module = module._modules[part]
                if value.is_floating_point():
                    module.register_parameter(leaf, nn.Parameter(torch.zeros_like(value), requires_grad=False))
                else:
                    module.register_buffer(leaf, torch.zeros_like(value))

        def get_query_embed(self, modality, audio=None, text=None, use_text_ratio=0.5, device=None):
            g = torch.Generator().manual_seed(len(text))
            e = torch.randn(len(text), 512, generator=g)
            return e / e.norm(dim=1, keepdim=True)


    stub = types.ModuleType("models.clap_encoder")
    stub.CLAP_Encoder = CLAP_Encoder
    sys.modules["models.clap_encoder"] = stub
    try:
        import huggingface_hub  # noqa: F401 - their mixin, when installed
    except ImportError:
        hub = types.ModuleType("huggingface_hub")
        hub.PyTorchModelHubMixin = type("PyTorchModelHubMixin", (), {})
        sys.modules["huggingface_hub"] = hub

    import lightning.pytorch as pl  # noqa: E402
    from data.waveform_mixers import SegmentMixer  # noqa: E402
    from losses import get_loss_function  # noqa: E402
    from models.audiosep import AudioSep, get_model_class  # noqa: E402
    from optimizers.lr_schedulers import get_lr_lambda  # noqa: E402


    def build():
        torch.manual_seed(1)
        return AudioSep(ss_model=get_model_class("ResUNet30")(input_channels=1, output_channels=1, condition_size=512),
                        waveform_mixer=SegmentMixer(max_mix_num=2, lower_db=-10, higher_db=10),
                        query_encoder=CLAP_Encoder(), loss_function=get_loss_function("l1_wav"), optimizer_type="AdamW",
                        learning_rate=1e-3, lr_lambda_func=get_lr_lambda("constant_warm_up", warm_up_steps=10000,
                                                                         reduce_lr_steps=1000000), use_text_ratio=1.0)


    class Batches(torch.utils.data.Dataset):
        def __len__(self):
            return 64

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            return {"audio_text": {"text": f"sound {i % 4}", "waveform": 0.1 * torch.randn(1, 16000, generator=g)}}


    # 1. strict load
    model = build()
    model.load_state_dict(ck["state_dict"], strict=True)
    print(f"strict load: OK ({len(ck['state_dict'])} keys)")

    # 2. their optimizer's group vs the saved one
    opt = model.configure_optimizers()["optimizer"]
    names = [n for n, _ in model.ss_model.named_parameters()]
    saved = ck["optimizer_states"][0]
    print(f"their param group: {len(opt.param_groups[0]['params'])} parameters; saved: "
          f"{len(saved['param_groups'][0]['params'])}, {len(saved['state'])} AdamW states")
    bad = [i for i, st in saved["state"].items() if tuple(st["exp_avg"].shape) != tuple(dict(model.ss_model.named_parameters())[names[i]].shape)]
    print(f"states whose shape differs from their parameter at that index: {len(bad)}")

    # 3. the fine-tune path: trainer.fit(model, ckpt_path=...)
    start = int(ck["global_step"])
    seen = {}


    class Check(pl.Callback):
        def on_train_start(self, trainer, module):
            st = trainer.optimizers[0].state_dict()
            seen["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
            seen["step"] = trainer.global_step
            seen["same_states"] = all(torch.equal(st["state"][i][k], saved["state"][i][k]) for i in saved["state"]
                                      for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"))
            seen["n_states"] = len(st["state"])
            seen["same_weights"] = all(torch.equal(p, ck["state_dict"]["ss_model." + n]) for n, p in module.ss_model.named_parameters())


    random.seed(0)
    model = build()
    strategy = argv[3] if len(argv) > 3 else "ddp_find_unused_parameters_true"
    trainer = pl.Trainer(accelerator="cpu", devices=1, strategy=strategy, precision="32-true", logger=None,
                         callbacks=[Check()], max_epochs=-1, max_steps=start + 2, log_every_n_steps=1,
                         use_distributed_sampler=True, sync_batchnorm=torch.cuda.is_available(),  # SyncBatchNorm: GPU only num_sanity_val_steps=2,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    loader = torch.utils.data.DataLoader(Batches(), batch_size=2)
    trainer.fit(model=model, train_dataloaders=loader, ckpt_path=CKPT)
    st = trainer.optimizers[0].state_dict()["state"]
    moved = max(float((p.detach() - ck["state_dict"]["ss_model." + n]).abs().max()) for n, p in model.ss_model.named_parameters())
    print(f"fit(ckpt_path=lasskit last.ckpt): resumed at step {seen['step']} (checkpoint {start}), lr {seen['lr']:g}, "
          f"restored weights identical {seen['same_weights']}, {seen['n_states']} AdamW states restored identical "
          f"{seen['same_states']}; ended at step {trainer.global_step}, AdamW step counts {sorted({float(v['step']) for v in st.values()})}, "
          f"largest weight change {moved:.3g}")


if __name__ == "__main__":
    {"lasskit": step_lasskit, "old-layout": step_old_layout, "organizers": step_organizers}[sys.argv[1]](sys.argv[2:])
