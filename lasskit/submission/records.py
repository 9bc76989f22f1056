"""What ``package`` verifies about the outputs before zipping them: each split's outputs are the
ones its ``separate.json`` run made (``provenance.json`` records, unchanged since), the two evaluation
splits and the scored val_synth outputs were made with one set of settings (one system), and
``summary.json``'s scores were computed on exactly the val_synth outputs now on disk."""

from __future__ import annotations

import json
from pathlib import Path

from lasskit.errors import UsageError
from lasskit.submission.rules import AUDIO_SPLITS, VALIDATION_SPLIT


def read_json(path: Path, fix: str) -> dict:
    if not path.is_file():
        raise UsageError(f"{path}: not found; {fix}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable JSON ({exc}); {fix}")
    if not isinstance(data, dict):
        raise UsageError(f"{path}: must hold a JSON object; {fix}")
    return data


def check_outputs_recorded(out: Path, names: list[str], sep: dict, fix: str, inputs: dict | None = None) -> None:
    """Every row's output is the one ``separate.json`` describes: recorded in ``provenance.json``
    with the one settings id of ``made_with`` and unchanged on disk since (size and mtime); with
    ``inputs``, also made from the split's mixtures and queries as they are now
    (:func:`check_inputs_current`)."""
    import os

    from lasskit.provenance import LEDGER_FILE, Ledger

    made_with = sep.get("made_with")
    if not isinstance(made_with, list) or len(made_with) != 1 or not isinstance(made_with[0], dict):
        raise UsageError(f"{out / 'separate.json'}: does not name the one set of settings that made the outputs "
                         f"(made_with); {fix} (it rewrites separate.json)")
    sid = made_with[0].get("settings_id")
    if sep.get("count") != len(names) or made_with[0].get("outputs") != len(names):
        raise UsageError(f"{out / 'separate.json'}: describes {sep.get('count')} outputs, the split has {len(names)} "
                         f"mixtures; {fix}")
    if not (out / LEDGER_FILE).is_file():
        raise UsageError(f"{out / LEDGER_FILE}: not found, so nothing says what made the outputs; {fix}")
    ledger = Ledger(out)
    wrong: list[str] = []
    for name in names:
        rec = ledger.get(name)
        try:
            st = os.stat(out / name)
        except OSError:
            st = None
        if rec is None or rec.settings != sid or st is None or (st.st_size, st.st_mtime_ns) != (rec.size, rec.mtime_ns):
            wrong.append(name)
    if wrong:
        raise UsageError(f"{out / wrong[0]}: not the output the run in separate.json made (missing, made with other "
                         f"settings, or changed since){f' (and {len(wrong) - 1} more)' if len(wrong) > 1 else ''}; "
                         f"{fix}")
    if inputs is not None:
        check_inputs_current(out, ledger, names, inputs, fix)


def check_inputs_current(out: Path, ledger, names: list[str], inputs: dict, fix: str) -> None:
    """Every output was made from the mixture file and the query the split holds now (the
    record's mixture digest and query digest), not from an earlier version of the split.

    ``inputs``: ``{"mixtures": [path per name], "queries": [text per name] or None, "csv": path}``.
    Digests come from the run's ``digests.json`` (a ``stat`` per file) and are hashed otherwise;
    nothing is written."""
    from lasskit.provenance import DIGEST_CACHE_FILE, DigestCache, text_digest

    cache = DigestCache(out / DIGEST_CACHE_FILE)
    other_mixture, other_query = [], []
    queries = inputs.get("queries")
    for i, (name, mixture) in enumerate(zip(names, inputs["mixtures"])):
        rec = ledger.get(name)
        said = (rec.extra or {}).get("query")
        if queries is not None and said is not None and said != text_digest(queries[i]):
            other_query.append(name)
        try:
            if cache.digest(mixture) != rec.input:
                other_mixture.append(name)
        except OSError:
            other_mixture.append(name)

    def more(found: list) -> str:
        return f" (and {len(found) - 1} more)" if len(found) > 1 else ""

    if other_mixture:
        first = other_mixture[0]
        mixture = inputs["mixtures"][names.index(first)]
        raise UsageError(f"{out / first}: separated from another version of {mixture}{more(other_mixture)} "
                         f"(the split changed since); {fix}")
    if other_query:
        raise UsageError(f"{out / other_query[0]}: separated with another query than {inputs['csv']} now gives"
                         f"{more(other_query)} (the split changed since); {fix}")


def settings_difference(mine: dict, theirs: dict) -> str:
    """The settings two ``made_with`` entries differ in, e.g. "options {'gain': 0.9} against {}"."""
    keys = sorted((set(mine) | set(theirs)) - {"outputs", "settings_id"})
    return ", ".join(f"{k} {mine.get(k)!r} against {theirs.get(k)!r}" for k in keys
                     if mine.get(k) != theirs.get(k)) or "settings ids differ"


def check_one_system(workspace, model: str, runs: dict) -> None:
    """The package is one system: both evaluation splits were separated with the same settings
    (model, options, checkpoint, chunking), and the val_synth outputs whose scores the metadata
    reports were made with those settings too, unchanged since."""
    first = AUDIO_SPLITS[0]
    made = runs[first]["separate"]["made_with"][0]
    for split in AUDIO_SPLITS[1:]:
        theirs = runs[split]["separate"]["made_with"][0]
        if theirs.get("settings_id") != made.get("settings_id"):
            raise UsageError(f"{runs[split]['dir'] / 'separate.json'}: made with other settings than {first}'s "
                             f"({settings_difference(theirs, made)}); the package describes one system: run "
                             f"`lasskit separate --model {model} --split {split} --overwrite` with {first}'s "
                             "--checkpoint and --option values")
    val = workspace.output_dir(model, VALIDATION_SPLIT)
    fix = (f"run `lasskit separate --model {model} --split {VALIDATION_SPLIT} --overwrite` with {first}'s "
           f"--checkpoint and --option values, then `lasskit score --model {model} --split {VALIDATION_SPLIT}`")
    sep = read_json(val / "separate.json", fix)
    mine = sep.get("made_with")
    if not isinstance(mine, list) or len(mine) != 1 or not isinstance(mine[0], dict):
        raise UsageError(f"{val / 'separate.json'}: does not name the one set of settings that made the scored "
                         f"outputs (made_with); {fix}")
    if mine[0].get("settings_id") != made.get("settings_id"):
        raise UsageError(f"{val / 'separate.json'}: made with other settings than {first}'s "
                         f"({settings_difference(mine[0], made)}), so the scores are not the packaged system's; "
                         f"{fix}")
    import os

    from lasskit.audio import AUDIO_EXTENSIONS
    from lasskit.provenance import LEDGER_FILE, Ledger

    if not (val / LEDGER_FILE).is_file():
        raise UsageError(f"{val / LEDGER_FILE}: not found, so nothing says what made the scored outputs; {fix}")
    ledger = Ledger(val)
    with os.scandir(val) as entries:  # the files score matched (as check_scores_tied lists them)
        scored = sorted(e.name for e in entries if os.path.splitext(e.name)[1].lower() in AUDIO_EXTENSIONS
                        and not e.name.startswith(".") and e.is_file())
    wrong = []
    for name in scored:
        rec, st = ledger.get(name), os.stat(val / name)
        if rec is None or rec.settings != made.get("settings_id") or (st.st_size, st.st_mtime_ns) != (rec.size, rec.mtime_ns):
            wrong.append(name)
    if wrong:
        raise UsageError(f"{val / wrong[0]}: not the output the run in separate.json made (missing, made with other "
                         f"settings, or changed since){f' (and {len(wrong) - 1} more)' if len(wrong) > 1 else ''}; "
                         f"{fix}")


def check_scores_tied(path: Path, summary: dict, fix: str) -> None:
    """The scores were computed on exactly the outputs now beside them (``estimates.digest``)."""
    import os

    from lasskit.audio import AUDIO_EXTENSIONS
    from lasskit.provenance import files_digest

    scored = summary.get("estimates")
    if not isinstance(scored, dict) or not isinstance(scored.get("digest"), str):
        raise UsageError(f"{path}: does not say which outputs were scored (written by an older lasskit or by hand); "
                         f"{fix}")
    folder = path.parent
    with os.scandir(folder) as entries:  # the files score would match: audio at the top level
        names = [e.name for e in entries if os.path.splitext(e.name)[1].lower() in AUDIO_EXTENSIONS
                 and not e.name.startswith(".") and e.is_file()]
    if len(names) != scored.get("count") or files_digest(folder, names) != scored["digest"]:
        raise UsageError(f"{path}: the scores were computed on other outputs than the {len(names)} now in {folder} "
                         f"(re-separated or changed since); {fix}")
