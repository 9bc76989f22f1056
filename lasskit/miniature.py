"""Miniature raw downloads in the real layouts, filled with :mod:`lasskit.soundgen` events.

Used by ``lasskit demo``, the test suite and the benchmarks, so that every stage can run offline
on data that looks like the real thing: Clotho v2, FSD50K and the DCASE 2024 Task 9 validation
and evaluation sets, at mixed sample rates (44.1/48/22.05/16 kHz), channel counts and bit depths.
Everything is seeded.
"""

from __future__ import annotations

import io
import json
import os
import zlib
from pathlib import Path

import numpy as np

from lasskit import soundgen

CLASS_NAMES = tuple(soundgen.CLASSES)
FORMATS = (  # (rate Hz, channels, soundfile subtype), cycled over the clips
    (44100, 2, "PCM_16"),
    (48000, 1, "PCM_24"),
    (22050, 2, "PCM_16"),
    (16000, 1, "FLOAT"),
)


AUDIBLE_PEAK = 1e-3
"""A generated clip quieter than this everywhere is regenerated longer and cut (see :func:`event`)."""


def event(name: str, duration: float, rate: int = 16000, seed: int = 0, channels: int = 1) -> np.ndarray:
    """:func:`lasskit.soundgen.generate`, but never silent: some classes (a knock every 1.2 s, a
    tick every 0.5 s) can miss a short clip entirely; then the loudest ``duration`` of a 2.5 s
    clip is taken instead (same seed, so still deterministic)."""
    x = soundgen.generate(name, duration, rate, seed=seed, channels=channels)
    if x.size == 0 or float(np.max(np.abs(x))) >= AUDIBLE_PEAK or duration >= 2.5:
        return x
    long = soundgen.generate(name, 2.5, rate, seed=seed, channels=channels)
    n = x.shape[-1]
    energy = np.cumsum(np.concatenate([[0.0], np.square(long if long.ndim == 1 else long[0], dtype=np.float64)]))
    window = energy[n:] - energy[:-n]
    start = int(np.argmax(window))
    return long[..., start:start + n]


def _write_event(path: Path, name: str, duration: float, rate: int, seed: int, channels: int = 1,
                 subtype: str = "PCM_16") -> None:
    import soundfile as sf

    x = event(name, duration, rate, seed, channels)
    buffer = io.BytesIO()
    sf.write(buffer, x.T if x.ndim == 2 else x, rate, subtype=subtype, format="WAV")
    _write_bytes(path, buffer.getvalue())


def _steady(wav: bytes) -> bytes:
    """libsndfile stamps float WAVs' ``PEAK`` chunk with the current time: zero the stamp, so the
    same seed gives the same bytes."""
    pos = 12
    while pos + 8 <= len(wav):
        chunk, size = wav[pos:pos + 4], int.from_bytes(wav[pos + 4:pos + 8], "little")
        if chunk == b"PEAK" and size >= 8:
            return wav[:pos + 12] + b"\0\0\0\0" + wav[pos + 16:]
        pos += 8 + size + (size & 1)
    return wav


def _write_bytes(path: Path, data: bytes) -> None:
    """Write a file (a WAV with a steady PEAK stamp); an OSError (a full disk) names it."""
    data = _steady(data)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def _clip(path: Path, index: int, duration: float, seed: int, fmt_offset: int = 0) -> str:
    name = CLASS_NAMES[index % len(CLASS_NAMES)]
    rate, channels, subtype = FORMATS[(index + fmt_offset) % len(FORMATS)]
    _write_event(path, name, duration, rate, seed * 1000 + index, channels, subtype)
    return name


def write_clotho(root: Path, per_split: int = 4, duration: float = 1.0, seed: int = 0,
                 corrupt: bool = False, metadata: bool = True) -> Path:
    """Clotho v2 layout: ``development/``, ``validation/``, ``evaluation/`` + captions CSVs and,
    with ``metadata``, ``clotho_metadata_<split>.csv`` (keywords ``;``-separated, ``sound_id``,
    licence). With ``corrupt``, ``development/broken.wav`` is listed in the CSVs but unreadable."""
    import csv

    root = Path(root)
    for k, split in enumerate(("development", "validation", "evaluation")):
        rows, meta = [], []
        for i in range(per_split):
            index = k * per_split + i
            file_name = f"{CLASS_NAMES[index % len(CLASS_NAMES)]} recording {index}.wav"
            name = _clip(root / split / file_name, index, duration, seed)
            caps = list(soundgen.CLASSES[name].captions)
            rows.append([file_name, *(caps * 3)[:5]])
            tags = ";".join([label.lower() for label in soundgen.CLASSES[name].labels] + ["field-recording"])
            meta.append([file_name, tags, str(300000 + index), f"https://freesound.org/s/{300000 + index}/",
                         "[0, 160000]", "lasskit", "http://creativecommons.org/licenses/by/3.0/"])
        if corrupt and split == "development":
            (root / split / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 4)
            rows.append(["broken.wav", *(["A file that cannot be read."] * 5)])
        with open(root / f"clotho_captions_{split}.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["file_name", "caption_1", "caption_2", "caption_3", "caption_4", "caption_5"])
            w.writerows(rows)
        if metadata:
            with open(root / f"clotho_metadata_{split}.csv", "w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(["file_name", "keywords", "sound_id", "sound_link", "start_end_samples",
                            "manufacturer", "license"])
                w.writerows(meta)
    return root


def write_fsd50k(root: Path, dev: int = 6, eval: int = 3, duration: float = 1.0, seed: int = 1,
                 with_captions: bool = True) -> Path:
    """FSD50K layout: ``FSD50K.dev_audio/``, ``FSD50K.eval_audio/``, ``FSD50K.ground_truth/``.

    With ``with_captions`` also writes ``fsd50k_captions.json`` in the organizers' format.
    """
    root = Path(root)
    gt = root / "FSD50K.ground_truth"
    gt.mkdir(parents=True, exist_ok=True)
    dev_rows, eval_rows, captions = [], [], []
    for i in range(dev + eval):
        fname = str(100000 + i)
        folder = "FSD50K.dev_audio" if i < dev else "FSD50K.eval_audio"
        name = _clip(root / folder / f"{fname}.wav", i + 3, duration, seed)
        labels = ",".join(label.replace(" ", "_") for label in soundgen.CLASSES[name].labels)
        mids = ",".join(f"/m/{zlib.crc32(label.encode()) % 10**6:06d}" for label in labels.split(","))
        if i < dev:
            dev_rows.append(f'{fname},"{labels}","{mids}",{"train" if i % 3 else "val"}')
        else:
            eval_rows.append(f'{fname},"{labels}","{mids}"')
        captions.append({"wav": f"{folder}/{fname}.wav", "caption": soundgen.CLASSES[name].captions[0]})
    (gt / "dev.csv").write_text("fname,labels,mids,split\n" + "\n".join(dev_rows) + "\n")
    (gt / "eval.csv").write_text("fname,labels,mids\n" + "\n".join(eval_rows) + "\n")
    vocab = sorted({label.replace(" ", "_") for c in soundgen.CLASSES.values() for label in c.labels})
    (gt / "vocabulary.csv").write_text("".join(f"{i},{v},/m/{i:06d}\n" for i, v in enumerate(vocab)))
    if with_captions:
        (root / "fsd50k_captions.json").write_text(json.dumps({"data": captions}, indent=1))
    return root


def write_dcase2024(root: Path, clips: int = 8, mixtures: int = 12, real: int = 3, synth_eval: int = 4,
                    duration: float = 1.0, seed: int = 2) -> Path:
    """DCASE 2024 Task 9 layout: validation clips + JSON + synthetic-validation CSV, and the
    synthetic and real evaluation folders with their CSVs.

    The validation clips are 16 kHz mono 16-bit like the real ones; mixtures pair clips of
    different classes (no shared tag) at integer SNRs in [-15, 15] dB; each real recording
    carries two queries (one with a leading space, as in the real file).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    items = []
    for i in range(clips):
        index = f"{700000 + i}_{seed}{i:04d}-hq"
        name = CLASS_NAMES[i % len(CLASS_NAMES)]
        _write_event(root / "lass_validation" / f"{index}.wav", name, duration, 16000, seed * 1000 + i)
        cls = soundgen.CLASSES[name]
        items.append({"Index": index, "Tags": [t.lower() for t in cls.labels],
                      "Captions": [*cls.captions, f"{cls.captions[0][:-1]} nearby."]})
    (root / "lass_validation.json").write_text(json.dumps(items, indent=4))
    lines = ["source, noise, snr, caption"]
    for m in range(mixtures):
        s = m % clips
        candidates = [j for j in range(clips) if not set(items[j]["Tags"]) & set(items[s]["Tags"])]
        n = candidates[int(rng.integers(len(candidates)))]
        caption = items[s]["Captions"][m % 3].replace('"', "'")
        lines.append(f'{items[s]["Index"]},{items[n]["Index"]},{int(rng.integers(-15, 16))},"{caption}"')
    (root / "lass_synthetic_validation.csv").write_text("\n".join(lines) + "\n")
    synth_rows = ["file_name,caption"]
    for i in range(synth_eval):
        a = event(CLASS_NAMES[i % 8], duration, 16000, seed=50 + i)
        b = event(CLASS_NAMES[(i + 3) % 8], duration, 16000, seed=60 + i)
        _write(root / "lass_evaluation_synth" / f"eval_synth_{i}.wav", (a + 0.5 * b) * 0.8)
        synth_rows.append(f'eval_synth_{i}.wav,"{soundgen.CLASSES[CLASS_NAMES[i % 8]].captions[0]}"')
    (root / "lass_synthetic_evaluation.csv").write_text("\n".join(synth_rows) + "\n")
    real_rows = ["file_name,query"]
    for r in range(real):
        a = event(CLASS_NAMES[r % 8], duration, 16000, seed=70 + r)
        b = event(CLASS_NAMES[(r + 5) % 8], duration, 16000, seed=80 + r)
        for q, cls in enumerate((CLASS_NAMES[r % 8], CLASS_NAMES[(r + 5) % 8])):
            name = f"test-real-case-{2 * r + q}.wav"
            _write(root / "lass_evaluation_real" / name, (a + b) * 0.6)
            query = soundgen.CLASSES[cls].captions[1].lower()
            real_rows.append(f'{name},"{" " + query if q else query}"')
    (root / "lass_real_evaluation.csv").write_text("\n".join(real_rows) + "\n")
    return root


def _write(path: Path, x: np.ndarray) -> None:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, x.astype(np.float32), 16000, subtype="PCM_16", format="WAV")
    _write_bytes(path, buffer.getvalue())


def byte_alphabet() -> list[str]:
    """GPT-2/RoBERTa's printable stand-ins for the 256 byte values (byte-level BPE)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in printable]
    mapping = dict(zip(printable, printable)) | {b: 256 + i for i, b in enumerate(extra)}
    return [chr(mapping[b]) for b in range(256)]


def byte_bpe_vocab(symbols: tuple[str, ...] = (), size: int | None = None) -> dict[str, int]:
    """A vocabulary laid out like roberta-base's: special tokens 0-3, the 256 byte symbols, then
    ``symbols``, filler entries up to ``size`` (roberta-base: 50265) if given, ``<mask>`` last."""
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for symbol in [*byte_alphabet(), *symbols]:
        vocab.setdefault(symbol, len(vocab))
    while size is not None and len(vocab) < size - 1:
        vocab[f"unused{len(vocab)}"] = len(vocab)
    vocab["<mask>"] = len(vocab)
    return vocab


def write_tokenizer(folder: str | os.PathLike, vocab: dict[str, int] | None = None, merges: str = "#version: 0.2\n"):
    """A miniature byte-level BPE tokenizer in roberta-base's file layout (``vocab.json``,
    ``merges.txt``): what ``lasskit models download`` fetches, for tests and benchmarks offline."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab or byte_bpe_vocab()), encoding="utf-8")
    (folder / "merges.txt").write_text(merges, encoding="utf-8")
    return folder


def recipe_tensor(key: str, shape: tuple[int, ...]):
    """One tensor of the golden vectors' weight recipe (``shared/golden/*/README``): draws from
    ``default_rng(crc32(key))`` shaped by the key's kind; ``num_batches_tracked`` is 0. Random
    weights with the real key layout, for tests and benchmarks (imports torch)."""
    import torch

    if key.endswith("num_batches_tracked"):
        return torch.tensor(0, dtype=torch.int64)
    n = np.random.default_rng(zlib.crc32(key.encode())).standard_normal(shape)
    if key.endswith("running_var"):
        v = 1 + 0.1 * np.abs(n)
    elif key.endswith(("running_mean", "bias")):
        v = 0.1 * n
    elif len(shape) >= 2:
        v = n * np.sqrt(1 / np.prod(shape[1:]))
    else:
        v = 1 + 0.1 * n
    return torch.from_numpy(v.astype(np.float32))


# --- the corpora the winners trained on: AudioCaps, WavCaps, Auto-ACD ------------------------------

def youtube_id(index: int) -> str:
    """A made-up 11-character YouTube id (``mini0000007``) for miniature AudioSet-derived corpora."""
    return f"mini{index:07d}"


def _write_flac(path: Path, name: str, duration: float, rate: int, seed: int) -> None:
    import soundfile as sf

    x = event(name, duration, rate, seed)
    buffer = io.BytesIO()
    sf.write(buffer, x, rate, subtype="PCM_16", format="FLAC")
    _write_bytes(path, buffer.getvalue())


def write_audioset_labels(root: Path, indices: list[int]) -> list[Path]:
    """AudioSet's label files for the miniature videos ``youtube_id(i)``: a segment CSV
    (``# YTID, start_seconds, end_seconds, positive_labels``) and ``class_labels_indices.csv``."""
    import csv

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    names = sorted({label for c in soundgen.CLASSES.values() for label in c.labels})
    mids = {label: f"/m/mini{k:03d}" for k, label in enumerate(names)}
    with open(root / "class_labels_indices.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "mid", "display_name"])
        w.writerows([k, mids[label], label] for k, label in enumerate(names))
    lines = ["# Segments csv created by lasskit.miniature", "# num_ytids=%d" % len(indices),
             "# YTID, start_seconds, end_seconds, positive_labels"]
    for i in indices:
        labels = soundgen.CLASSES[CLASS_NAMES[i % len(CLASS_NAMES)]].labels
        lines.append(f'{youtube_id(i)}, {30 + i}.000, {40 + i}.000, "{",".join(mids[x] for x in labels)}"')
    (root / "balanced_train_segments.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [root / "balanced_train_segments.csv", root / "class_labels_indices.csv"]


def write_audiocaps(root: Path, per_split: int = 3, missing: int = 1, duration: float = 1.0, seed: int = 5,
                    first: int = 0) -> Path:
    """AudioCaps layout: ``dataset/train.csv``, ``val.csv``, ``test.csv``
    (``audiocap_id,youtube_id,start_time,caption``; val and test with five caption rows a clip) and
    the fetched audio in ``audio/<split>/<youtube_id>_<start_time>.wav``; the last ``missing``
    clips of each split have no audio (videos that could not be fetched). Video ``i`` is
    ``youtube_id(first + i)``, its start ``30 + i`` s."""
    import csv

    root = Path(root)
    (root / "dataset").mkdir(parents=True, exist_ok=True)
    audiocap_id = 90000
    for k, split in enumerate(("train", "val", "test")):
        rows = []
        for j in range(per_split):
            i = first + k * per_split + j
            ytid, start = youtube_id(i), 30 + i
            name = CLASS_NAMES[i % len(CLASS_NAMES)]
            captions = list(soundgen.CLASSES[name].captions)
            for caption in (captions * 5)[: 1 if split == "train" else 5]:
                rows.append([audiocap_id, ytid, start, caption])
                audiocap_id += 1
            if j < per_split - missing:
                rate, channels, subtype = FORMATS[i % len(FORMATS)]
                _write_event(root / "audio" / split / f"{ytid}_{start}.wav", name, duration, rate,
                             seed * 1000 + i, channels, subtype)
        with open(root / "dataset" / f"{split}.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["audiocap_id", "youtube_id", "start_time", "caption"])
            w.writerows(rows)
    return root


def write_autoacd(root: Path, train: int = 4, test: int = 2, missing: int = 1, duration: float = 1.0, seed: int = 6,
                  first: int = 100, shared: tuple[int, ...] = ()) -> Path:
    """Auto-ACD layout: ``train.csv`` and ``test.csv`` (``youtube_id,caption``; ids
    ``<youtube id>_<start>``) and the fetched audio as ``audio/Y<youtube id>.flac``. Videos
    ``youtube_id(first + i)``, plus the videos ``shared`` (indices into :func:`youtube_id`, with
    AudioCaps' start times: the same segments as :func:`write_audiocaps`) in train.csv; the last
    ``missing`` clips of train.csv have no audio."""
    import csv

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    plan = {"train": [first + j for j in range(train)] + list(shared),
            "test": [first + train + j for j in range(test)]}
    for split, indices in plan.items():
        rows = []
        for n, i in enumerate(indices):
            name = CLASS_NAMES[i % len(CLASS_NAMES)]
            rows.append([f"{youtube_id(i)}_{30 + i}", f"{soundgen.CLASSES[name].captions[0]} (generated)"])
            if not (split == "train" and train - missing <= n < train):
                _write_flac(root / "audio" / f"Y{youtube_id(i)}.flac", name, duration, 16000, seed * 1000 + i)
        with open(root / f"{split}.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["youtube_id", "caption"])
            w.writerows(rows)
    return root


def write_wavcaps(root: Path, per_source: int = 3, duration: float = 1.0, seed: int = 7,
                  freesound_ids: tuple[str, ...] = (), blacklisted: tuple[str, ...] = ("400002",),
                  audioset: tuple[int, ...] = ()) -> Path:
    """WavCaps layout: ``json_files/<Source>/<x>_final.json`` (``{"num_captions_per_audio": 1,
    "data": [...]}`` with each source's fields), ``json_files/blacklist/blacklist_exclude_test_ac.json``
    (``{"AudioSet": [...], "FreeSound": [...]}`` naming ``blacklisted``) and the audio as 32 kHz flac
    in ``<Source>_flac/<id>.flac``. FreeSound ids are ``400000 + i`` plus ``freesound_ids`` (e.g.
    a Clotho clip's, for the overlap check); AudioSet_SL holds ``Y<youtube_id(i)>`` for ``audioset``."""
    root = Path(root)
    sources = {
        "FreeSound": ("fsd_final.json", [str(400000 + i) for i in range(per_source)] + list(freesound_ids)),
        "BBC_Sound_Effects": ("bbc_final.json", [f"{7066100 + i:08d}" for i in range(per_source)]),
        "SoundBible": ("sb_final.json", [str(2200 + i) for i in range(per_source)]),
        "AudioSet_SL": ("as_final.json", [f"Y{youtube_id(i)}.wav" for i in audioset]),
    }
    n = 0
    for source, (json_name, ids) in sources.items():
        data = []
        for clip_id in ids:
            name = CLASS_NAMES[n % len(CLASS_NAMES)]
            caption = soundgen.CLASSES[name].captions[0]
            stem = Path(clip_id).stem
            entry = {"id": clip_id, "caption": caption, "duration": duration, "audio": "wav_path"}
            if source == "FreeSound":
                entry.update(file_name=f"{name} {stem}.wav", href=f"/people/lasskit/sounds/{stem}/",
                             tags=[x.lower() for x in soundgen.CLASSES[name].labels], description=caption,
                             author="lasskit")
            elif source == "BBC_Sound_Effects":
                entry.update(description=caption, category="['Miniature']")
            elif source == "SoundBible":
                entry.update(title=name, description=caption, author="lasskit", href=f"{stem}-{name}.html")
            data.append(entry)
            _write_flac(root / f"{source}_flac" / f"{stem}.flac", name, duration, 32000, seed * 1000 + n)
            n += 1
        folder = root / "json_files" / source
        folder.mkdir(parents=True, exist_ok=True)
        (folder / json_name).write_text(json.dumps({"num_captions_per_audio": 1, "data": data}, indent=1))
    black = root / "json_files" / "blacklist"
    black.mkdir(parents=True, exist_ok=True)
    (black / "blacklist_exclude_test_ac.json").write_text(json.dumps(
        {"AudioSet": [], "FreeSound": list(blacklisted)}, indent=1))
    return root
