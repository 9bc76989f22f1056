"""What a training run reads: on-the-fly mixtures by sample number, and a fixed validation subset.

Training samples come from :func:`lasskit.mixing.mixture_dataset`'s planner and
:func:`lasskit.mixing.make_item`: sample ``n`` is item ``perm_e[n mod N]`` of mixing epoch
``e = n div N``, ``perm_e`` a permutation of the ``N`` items drawn from
``SeedSequence(seed, spawn_key=(3, e))``. :class:`StepBatchSampler` hands out the sample numbers
of each (step, micro-batch, rank), starting wherever the trainer stands, so a resumed run
continues exactly. The data rules are :mod:`lasskit.mixing`'s: no val/eval clip unless the run
names the split, the challenge's corpora only when named, no recording of a challenge clip.

Validation: the rows of a split (``mixtures.csv`` with ``source``), ``count`` of them, the first
of a permutation from ``SeedSequence(seed, spawn_key=(4,))``, in that fixed order; rank ``r`` of
``W`` takes rows ``r, r + W, ...``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lasskit import audio
from lasskit.errors import UsageError

def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class TrainingData:
    """The planner of the training mixtures and what it was made from."""

    planner: object  # lasskit.mixing.Planner
    targets: list[Path]
    noises: list[Path]
    splits: list[str]
    seed: int
    digests: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def per_epoch(self) -> int:
        """Mixtures per mixing epoch (one per usable target)."""
        return int(self.planner.num_rows)

    def queries(self) -> list[str]:
        """Every query a training mixture can carry (each target's captions, or its label caption), sorted."""
        out: set[str] = set()
        for target in self.planner.usable:
            if target.captions:
                out.update(target.captions)
            else:
                out.add(self.planner.query_of(target, None, 0))
        return sorted(out)

    def summary(self) -> dict:
        p = self.planner
        return {
            "targets": [str(t) for t in self.targets], "noises": [str(n) for n in self.noises],
            "splits": list(self.splits), "manifest_sha256": dict(self.digests), "skipped": dict(self.skipped),
            "target_clips": len(p.targets), "usable_targets": len(p.usable),
            "targets_without_noise": len(p.without_noise), "noise_clips": len(p.noises),
            "mixtures_per_epoch": self.per_epoch, "distinct_queries": len(self.queries()),
            "sampler_shares": p.shares() if hasattr(p, "shares") else None,
        }


def load_training_data(targets: list[str], noises: list[str], *, workspace=None, splits=(), datasets=(),
                       ontology=None, snr=(-10.0, 10.0), segment: float = 10.0, seed: int = 0,
                       jobs: int | None = None, floors: dict | None = None) -> TrainingData:
    """Resolve the manifests (names, folders or CSVs) and plan class-disjoint mixtures of ``segment`` s.

    The data rules are :mod:`lasskit.mixing`'s (as ``lasskit mix``): no clip of a val/eval split
    unless ``splits`` names it, the challenge's own corpora only when named, and no recording of
    a challenge clip (the workspace's challenge manifests are passed as ``reference``).
    """
    import inspect

    from lasskit.mixing import MixSpec, mixture_dataset, resolve_manifest
    from lasskit.mixing.planning import split_weights

    targets, weights = split_weights(targets)  # --targets wavcaps:0.5 clotho:0.25 ...: rows per corpus
    named_words = [*targets, *noises]
    words = list(targets)
    if not words:
        words = workspace.corpora() if workspace is not None else []
        if not words:
            where = f" in {workspace.data_dir}" if workspace is not None else ""
            raise UsageError(f"no prepared corpus{where}; run `lasskit prepare` first or pass --targets")
    target_paths = [resolve_manifest(w, workspace) for w in words]
    noise_paths = [resolve_manifest(w, workspace) for w in noises] if noises else list(target_paths)
    spec = MixSpec(snr_low=float(snr[0]), snr_high=float(snr[1]), duration=float(segment), seed=int(seed),
                   **(floors or {})).validate()
    extra = {}
    accepted = inspect.signature(mixture_dataset).parameters
    if "named" in accepted:
        extra["named"] = [resolve_manifest(w, workspace) for w in named_words]
    if "reference" in accepted and workspace is not None:
        from lasskit.mixing import planning

        finder = getattr(planning, "challenge_manifests", None)
        extra["reference"] = finder(workspace) if finder else []
    if "jobs" in accepted:
        extra["jobs"] = jobs
    try:
        dataset = mixture_dataset(target_paths, spec, noise_paths if noises else None, splits=list(splits),
                                  datasets=list(datasets), ontology=ontology, **extra)
    except UsageError as exc:
        raise UsageError(f"{exc} (training manifests: {', '.join(str(p) for p in target_paths)})") from None
    if weights:
        dataset.planner.set_weights({resolve_manifest(w, workspace).parent.name: v for w, v in weights.items()})
    digests = {str(p): file_sha256(p) for p in dict.fromkeys([*target_paths, *noise_paths])}
    data = TrainingData(dataset.planner, target_paths, noise_paths, list(splits), int(seed), digests)
    data.skipped = dict(getattr(dataset, "skipped", {}) or {})
    return data


def resolve_inputs(targets: list[str], noises: list[str], workspace=None) -> None:
    """Check that every named target and noise corpus exists (cheap: before any model is loaded)."""
    from lasskit.mixing import resolve_manifest
    from lasskit.mixing.planning import split_weights

    words = split_weights(targets)[0]
    if not words and workspace is not None and not workspace.corpora():  # said before weights are downloaded
        raise UsageError(f"no prepared corpus in {workspace.data_dir}; run `lasskit prepare` first or pass --targets")
    for word in [*words, *noises]:
        resolve_manifest(word, workspace)


def epoch_permutation(seed: int, epoch: int, size: int) -> np.ndarray:
    """The order of mixing epoch ``epoch``'s items: ``SeedSequence(seed, spawn_key=(3, epoch))``."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3, int(epoch))))
    return rng.permutation(size)


REDRAWS = 8
"""A sample whose drawn target or noise segment turns out silent (its active 0.1 s frame lies mostly
outside a segment that is not a multiple of 0.1 s) is replaced by the next item of its mixing epoch,
up to this many times: deterministic, so (seed, n) still decides every sample."""


@dataclass(frozen=True)
class Augmentation:
    """On-the-fly augmentation of each training sample, drawn from ``SeedSequence(seed, spawn_key=(5, n))``.

    - ``extra_noises`` (the organizers' ``max_mix_num`` - 1): 0 to this many more noises, each the
      noise of another item of the same mixing epoch whose clip may be mixed with this target
      (class-disjoint, as the first), added at an SNR drawn from ``snr`` against the target;
    - ``eq_db``: a random spectral tilt of up to +-``eq_db`` dB between 0 and 8 kHz (a linear
      filter applied to the mixture and the reference alike, so the mixture stays their sum plus noise);
    - ``gain_db``: a random gain of up to +-``gain_db`` dB on mixture and reference alike (SNR kept).
    Then, if the mixture's peak exceeds 1, mixture and reference are scaled down together.
    """

    gain_db: float = 0.0
    eq_db: float = 0.0
    extra_noises: int = 0
    snr: tuple[float, float] = (-10.0, 10.0)

    @property
    def active(self) -> bool:
        return bool(self.gain_db or self.eq_db or self.extra_noises)


def _tilt(x: np.ndarray, db: float) -> np.ndarray:
    """``x`` with a linear-in-frequency gain from -db/2 (0 Hz) to +db/2 (Nyquist), by FFT."""
    spectrum = np.fft.rfft(x.astype(np.float64))
    ramp = np.linspace(-db / 2, db / 2, len(spectrum))
    return np.fft.irfft(spectrum * 10 ** (ramp / 20), n=len(x))


class SampleDataset:
    """Map-style dataset over sample numbers: ``dataset[n] -> (mixture, reference, query)`` (torch tensors)."""

    def __init__(self, planner, seed: int, augmentation: Augmentation | None = None) -> None:
        self.planner = planner
        self.seed = int(seed)
        self.augmentation = augmentation if augmentation is not None and augmentation.active else None
        self.size = int(planner.num_rows)
        self._perms: dict[int, np.ndarray] = {}
        self.redrawn = 0  # samples replaced by the next item of their epoch (a silent segment; this process)

    def locate(self, n: int) -> tuple[int, int]:
        """(mixing epoch, item index) of sample ``n``."""
        epoch, position = divmod(int(n), self.size)
        perm = self._perms.get(epoch)
        if perm is None:
            if len(self._perms) > 4:
                self._perms.clear()
            perm = self._perms[epoch] = epoch_permutation(self.seed, epoch, self.size)
        return epoch, int(perm[position])

    def __len__(self) -> int:  # sample numbers are unbounded; this is one mixing epoch
        return self.size

    def __getitem__(self, n: int):
        import torch

        from lasskit.mixing import make_item

        from lasskit.errors import AudioError

        epoch, index = self.locate(n)
        for k in range(REDRAWS + 1):
            try:
                mixed, row = make_item(self.planner, (index + k) % self.size, epoch)
                break
            except AudioError as exc:  # a segment whose only active frame lies mostly outside it
                if "is silent" not in str(exc) or k == REDRAWS:
                    raise
                self.redrawn += 1
        mixture, source = mixed.mixture, mixed.source
        if self.augmentation is not None:
            mixture, source = self._augment(int(n), epoch, index, row, mixture, source)
        return torch.from_numpy(np.ascontiguousarray(mixture)), torch.from_numpy(
            np.ascontiguousarray(source)), row.query

    def _augment(self, n: int, epoch: int, index: int, row, mixture: np.ndarray, source: np.ndarray):
        from lasskit.errors import AudioError
        from lasskit.mixing import make_item

        aug = self.augmentation
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(5, n)))
        mix64, src64 = mixture.astype(np.float64), source.astype(np.float64)
        extra = int(rng.integers(0, aug.extra_noises + 1)) if aug.extra_noises else 0
        if extra:
            allowed = {self.planner.noises[int(i)].key for i in self.planner.valid_noises(row.target)}
            source_energy = float(np.dot(src64, src64))
            offsets = rng.permutation(self.size)
            added = 0
            for j in offsets[: 4 * extra + 4]:
                if added == extra:
                    break
                try:
                    other, other_row = make_item(self.planner, int(j), epoch)
                except AudioError:
                    continue
                if other_row.noise.key not in allowed or other_row.noise.key == row.noise.key:
                    continue
                noise = other.noise.astype(np.float64)
                energy = float(np.dot(noise, noise))
                if energy <= 0 or source_energy <= 0:
                    continue
                snr = rng.uniform(*aug.snr)
                mix64 += noise * np.sqrt(source_energy / (energy * 10 ** (snr / 10)))
                added += 1
        if aug.eq_db:
            db = rng.uniform(-aug.eq_db, aug.eq_db)
            mix64, src64 = _tilt(mix64, db), _tilt(src64, db)
        if aug.gain_db:
            g = 10 ** (rng.uniform(-aug.gain_db, aug.gain_db) / 20)
            mix64, src64 = mix64 * g, src64 * g
        peak = float(np.max(np.abs(mix64))) if len(mix64) else 0.0
        if peak > 1.0:
            mix64, src64 = mix64 / peak, src64 / peak
        return mix64.astype(np.float32), src64.astype(np.float32)


class StepBatchSampler:
    """Batches of sample numbers for one rank: micro-batch ``b`` holds ``(b * W + rank) * B + j``.

    ``start()`` (called when iteration begins) gives the first micro-batch, e.g. the trainer's
    ``global_step * accumulate`` after a resume; iteration stops after micro-batch ``total - 1``.
    ``len`` is ``total`` (the whole run), so the trainer's own batch counter lines up on resume.
    """

    def __init__(self, batch_size: int, total: int, rank: int = 0, world: int = 1, start=lambda: 0) -> None:
        self.batch_size, self.total, self.rank, self.world = int(batch_size), int(total), int(rank), int(world)
        self.start = start

    def numbers(self, micro_batch: int) -> list[int]:
        first = (micro_batch * self.world + self.rank) * self.batch_size
        return list(range(first, first + self.batch_size))

    def __iter__(self):
        for b in range(int(self.start()), self.total):
            yield self.numbers(b)

    def __len__(self) -> int:
        return self.total


# --- validation ---------------------------------------------------------------------------------

@dataclass
class ValidationRow:
    name: str
    query: str
    mixture: Path
    source: Path


def load_validation(split: str, workspace=None, count: int = 200, seed: int = 0) -> tuple[list[ValidationRow], int]:
    """The fixed validation subset of a split (name under data/splits or a folder) and the split's size."""
    from lasskit.splits import read_split

    path = Path(split)
    if not (path / "mixtures.csv").is_file() and workspace is not None:
        path = workspace.split_dir(split)
    if not (path / "mixtures.csv").is_file():
        known = workspace.splits() if workspace is not None else []
        raise UsageError(f"--val {split}: no such split" + (f" (known: {', '.join(known)})" if known else "")
                         + "; make one with `lasskit mix ... --split val --name NAME` or `lasskit prepare dcase2024`")
    table = read_split(path)
    if not table.has_references:
        raise UsageError(f"--val {split}: {table.csv_path} has no source column; validation needs references")
    frame = table.frame
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(4,)))
    order = rng.permutation(len(frame))[: int(count)]
    rows = [ValidationRow(str(frame["mixture"].iat[i]), str(frame["query"].iat[i]),
                          table.mixture_path(str(frame["mixture"].iat[i])), path / str(frame["source"].iat[i]))
            for i in order]
    return rows, len(frame)


def equal_length_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Row indices in batches of at most ``batch_size`` rows of one length each (as ``separate`` batches
    the baseline: zero-padding a row changes its estimate), in order of first appearance."""
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        groups.setdefault(int(n), []).append(i)
    out = []
    for rows in groups.values():
        out.extend(rows[k:k + batch_size] for k in range(0, len(rows), batch_size))
    return out


def row_lengths(rows: list[ValidationRow]) -> list[int]:
    """Samples per validation row (the shorter of mixture and source), from the file headers."""
    import soundfile

    out = []
    for row in rows:
        try:
            out.append(min(_frames(soundfile.info(os.fsencode(row.mixture))),  # bytes: a name not in UTF-8 opens too
                            _frames(soundfile.info(os.fsencode(row.source)))))
        except Exception as exc:  # noqa: BLE001 - libsndfile's errors carry no errno
            raise UsageError(f"{row.mixture}: cannot read this validation row ({' '.join(str(exc).split())[:120]}); "
                             "fix or remake the split") from None
    return out


def _frames(info) -> int:
    """Frames at 16 kHz (audio.load resamples other rates)."""
    if int(info.samplerate) == 16000:
        return int(info.frames)
    return int(round(info.frames * 16000 / info.samplerate))


class ValidationDataset:
    """Items ``(mixture, source, query, length)``: float32 tensors at 16 kHz of one row each."""

    def __init__(self, rows: list[ValidationRow]) -> None:
        self.rows = list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        import torch

        row = self.rows[i]
        mixture, source = audio.load(row.mixture), audio.load(row.source)
        n = min(len(mixture), len(source))
        return torch.from_numpy(mixture[:n].copy()), torch.from_numpy(source[:n].copy()), row.query, n


def pad_collate(items):
    """Zero-pad a batch of ``(mixture, source, query, length)`` to its longest row."""
    import torch

    longest = max(int(n) for *_, n in items)
    mixtures = torch.zeros(len(items), longest)
    sources = torch.zeros(len(items), longest)
    for k, (m, s, _, n) in enumerate(items):
        mixtures[k, :n], sources[k, :n] = m[:n], s[:n]
    return mixtures, sources, [q for _, _, q, _ in items], [int(n) for *_, n in items]
