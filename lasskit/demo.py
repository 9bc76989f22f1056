"""The whole challenge workflow, offline, on generated audio: ``lasskit demo``.

:func:`run_demo` writes a miniature raw download (:mod:`lasskit.miniature`: Clotho-like,
FSD50K-like and the DCASE 2024 validation and evaluation layouts, at mixed sample rates and
channel counts), then runs in that folder as a workspace, with the same library calls the CLI
uses: ``prepare`` for each corpus, ``mix --snr -15 15`` into a small training-style split,
``separate`` with ``passthrough`` (every split) and ``oracle`` (the splits with references),
``score``, ``package`` and ``check``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lasskit.errors import UsageError, WorkError

DEMO_CONFIG = """\
# lasskit.yaml written by `lasskit demo`: a fictional team, so that `package` has what it needs.
package:
  team: Lovelace
  institute: DEMO
  index: 1
  name: Demo passthrough
  abbreviation: DemoPass
  model: passthrough
  report: report.pdf
  audio_url: https://drive.google.com/drive/folders/lasskit-demo
  system:
    separation_model: passthrough (returns the mixture)
    text_encoder: none
    training_data: [generated demo clips]
    external_data: []
    pretrained_models: []
authors:
  - firstname: Ada
    lastname: Lovelace
    email: ada.lovelace@uni-demo.ac.uk
    affiliation: University of Demo
    corresponding: true
"""

TRAIN_SPLIT = "train_mix"


@dataclass
class DemoResult:
    """What the demo made: the workspace, the score run, the package and its check."""

    root: Path
    stages: list[tuple[str, float]] = field(default_factory=list)  # (stage, seconds)
    score_run: object = None
    package: object = None
    check: object = None

    @property
    def seconds(self) -> float:
        return sum(s for _, s in self.stages)


def minimal_pdf(text: str) -> bytes:
    """A small valid one-page PDF showing ``text`` (a stand-in technical report)."""
    safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 14 Tf 72 720 Td ({safe}) Tj ET".encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


MARKER = ".lasskit-demo"
"""Written first into a demo workspace: a re-run may go on there (and nowhere else)."""

MIN_DURATION, MAX_DURATION = 0.5, 30.0
"""Range of ``--duration`` (s): shorter clips hold too little of some sounds, longer ones take long."""


def check_duration(duration: float) -> None:
    """Raise :class:`UsageError` unless MIN_DURATION <= ``duration`` <= MAX_DURATION."""
    import math

    if not (isinstance(duration, (int, float)) and math.isfinite(duration)
            and MIN_DURATION <= duration <= MAX_DURATION):
        raise UsageError(f"--duration {duration}: must be from {MIN_DURATION} to {MAX_DURATION} seconds")


def check_demo_folder(root: str | Path) -> Path:
    """The demo's folder, resolved: new, empty, or a previous demo's. Never someone else's
    lasskit.yaml: a folder holding one the demo did not write is refused, and the file left alone."""
    root = Path(root).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: is a file; pass a new folder for the demo (e.g. demo_workspace)")
    if not root.exists():
        parent = next((p for p in root.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise UsageError(f"{parent}: is a file, so {root} cannot be created; pass a new folder for the demo")
        return root
    config = root / "lasskit.yaml"
    ours = (root / MARKER).is_file() or (config.is_file() and config.read_bytes() == DEMO_CONFIG.encode("utf-8"))
    if ours:
        if config.exists() and config.read_bytes() != DEMO_CONFIG.encode("utf-8"):
            raise UsageError(f"{config}: changed since `lasskit demo` wrote it; the demo would replace it, so it "
                             "stops here (your file is left as it is): pass a new folder, or delete the file")
        return root
    if config.exists():
        raise UsageError(f"{config}: already exists and was not written by `lasskit demo`; the demo writes its "
                         "own, so pass a new folder (your file is left as it is)")
    if any(root.iterdir()):
        raise UsageError(f"{root}: not empty and not a demo workspace; pass a new folder (nothing was changed)")
    return root


def run_demo(
    root: str | Path,
    *,
    duration: float = 2.0,
    jobs: int | None = None,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Run the whole workflow in ``root`` (a new or empty folder, or a previous demo's).

    ``duration`` is the length of every generated clip in seconds. Raises :class:`WorkError`
    if a stage fails; returns a :class:`DemoResult` whose ``check`` has no problems.
    """
    from lasskit import miniature
    from lasskit.atomic import write_bytes, write_text
    from lasskit.corpora import prepare_corpus
    from lasskit.mixing import MixSpec, make_mixtures
    from lasskit.submission import build_package
    from lasskit.scoring import ScoreOptions, score_workspace
    from lasskit.separation import separate_split
    from lasskit.submission import check_submission
    from lasskit.workspace import Workspace

    root = check_demo_folder(root)
    check_duration(duration)
    root.mkdir(parents=True, exist_ok=True)
    write_text(root / MARKER, "lasskit demo workspace\n")
    result = DemoResult(root)
    total = 7

    def stage(number: int, title: str, fn: Callable[[], object]):
        log(f"[{number}/{total}] {title}")
        start = time.perf_counter()
        value = fn()
        elapsed = time.perf_counter() - start
        result.stages.append((title, elapsed))
        log(f"      done in {elapsed:.1f} s")
        return value

    raw = root / "raw"

    def write_raw():
        if not (raw / "done").is_file():
            miniature.write_clotho(raw / "clotho", per_split=3, duration=duration)
            miniature.write_fsd50k(raw / "fsd50k", dev=8, eval=4, duration=duration)
            miniature.write_dcase2024(raw / "dcase2024", clips=16, mixtures=24, real=4, synth_eval=8,
                                      duration=duration)
            write_text(root / "lasskit.yaml", DEMO_CONFIG)
            write_bytes(root / "report.pdf", minimal_pdf("lasskit demo: technical report (passthrough)"))
            write_text(raw / "done", "")

    stage(1, "writing a miniature raw download (Clotho, FSD50K, DCASE 2024 val/eval; 16-48 kHz, mono/stereo)",
          write_raw)
    ws = Workspace.open(root)

    def prepare():
        reports = [
            *prepare_corpus("clotho", raw / "clotho", ws.data_dir, jobs=jobs),
            *prepare_corpus("fsd50k", raw / "fsd50k", ws.data_dir, jobs=jobs,
                            captions=[raw / "fsd50k" / "fsd50k_captions.json"]),
            *prepare_corpus("dcase2024", raw / "dcase2024", ws.data_dir, jobs=jobs),
        ]
        for r in reports:
            log(f"      {r.name}: {r.items} {'clips' if r.kind == 'corpus' else 'mixtures'}, "
                f"{r.audio_seconds:.0f} s of audio, {len(r.failures)} failures")
            if r.failures:
                raise WorkError(f"demo: prepare {r.name} failed: {r.failures[0][1]}")
        return reports

    stage(2, "lasskit prepare clotho / fsd50k / dcase2024", prepare)

    def mix():
        spec = MixSpec(-15, 15, num=16, duration=duration, seed=0)
        report = make_mixtures(ws.split_dir(TRAIN_SPLIT), spec,
                               targets=[ws.manifest_path("fsd50k")],  # training-style: never the validation corpus
                               jobs=jobs, overwrite=True)
        log(f"      {TRAIN_SPLIT}: {report.rows} class-disjoint mixtures, SNR in [-15, 15] dB, "
            f"{report.distinct_targets} targets, {report.distinct_noises} noises")
        if report.failures:
            raise WorkError(f"demo: mix failed: {report.failures[0][1]}")
        return report

    stage(3, f"lasskit mix --snr -15 15 --num 16 --name {TRAIN_SPLIT}", mix)

    def separate():
        runs = [("passthrough", s) for s in ("val_synth", "eval_synth", "eval_real", TRAIN_SPLIT)]
        runs += [("oracle", s) for s in ("val_synth", TRAIN_SPLIT)]
        for model, split in runs:
            report = separate_split(split, model, workspace=ws, device="cpu", batch_size=8)
            log(f"      {model} on {split}: {report.written + report.skipped} outputs")
            if report.failures:
                raise WorkError(f"demo: separate {model} {split} failed: {report.failures[0][1]}")

    stage(4, "lasskit separate: passthrough on every split, oracle on the splits with references", separate)

    def score():
        run = score_workspace(ws, splits=["val_synth", TRAIN_SPLIT], models=["passthrough", "oracle"],
                              options=ScoreOptions(jobs=jobs))
        if run.errors:
            raise WorkError(f"demo: score failed: {run.errors[0][2]}")
        result.score_run = run
        return run

    stage(5, "lasskit score (val_synth and the mixed split; passthrough and oracle)", score)

    def package():
        result.package = build_package(ws, overwrite=True, jobs=jobs)
        for warning in result.package.warnings:
            log(f"      warning: {warning}")
        return result.package

    stage(6, "lasskit package (team Lovelace, institute DEMO, system 1: passthrough)", package)

    def check():
        result.check = check_submission(ws.submission_dir, ws, jobs=jobs)
        if result.check.problems:
            lines = "\n".join(result.check.lines(5))
            raise WorkError(f"demo: the package has problems:\n{lines}")
        return result.check

    stage(7, "lasskit check submission/", check)
    return result
