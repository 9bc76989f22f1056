"""separate (issue 22): the query is an input of every output (a changed caption remakes it, and
score refuses an estimate made from another query); the summary names the model, not the folder;
outputs of rows a smaller split no longer has are removed."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lasskit.errors import UsageError
from lasskit.provenance import Ledger, text_digest
from lasskit.scoring import score_estimates
from lasskit.separation import separate_split
from lasskit.splits import write_split_csv
from test_separate import make_split


def _requery(split_dir, row: int, query: str) -> None:
    frame = pd.read_csv(split_dir / "mixtures.csv", dtype=str, keep_default_na=False)
    frame.loc[row, "query"] = query
    write_split_csv(split_dir, frame)


def test_a_changed_query_remakes_its_output(tmp_path):
    ws = tmp_path / "ws"
    split = make_split(ws)
    first = separate_split(split, "passthrough", workspace=ws, jobs=0)
    assert first.written == 5
    again = separate_split(split, "passthrough", workspace=ws, jobs=0)
    assert again.written == 0 and again.skipped == 5
    _requery(split, 2, "a corrected caption")
    third = separate_split(split, "passthrough", workspace=ws, jobs=0)
    assert third.written == 1 and third.skipped == 4 and dict(third.reasons) == {"query changed": 1}
    ledger = Ledger(ws / "exp" / "passthrough" / "synth")
    assert ledger.get("synth_0002.wav").extra["query"] == text_digest("a corrected caption")


def test_score_refuses_an_estimate_made_from_another_query(tmp_path):
    ws = tmp_path / "ws"
    split = make_split(ws)
    separate_split(split, "passthrough", workspace=ws, jobs=0)
    out = ws / "exp" / "passthrough" / "synth"
    score_estimates(split, out)  # accepted while the queries are those separated with
    _requery(split, 0, "another sound entirely")
    with pytest.raises(UsageError, match=r"synth_0000.wav: separated with another query than split synth now gives"):
        score_estimates(split, out)


def test_the_summary_names_the_model_not_the_folder(tmp_path, run_cli):
    ws = tmp_path / "ws"
    make_split(ws)
    code, out, err = run_cli("-w", ws, "separate", "--split", "synth", "--model", "oracle", "--name", "passthrough",
                             "--jobs", "0")
    assert code == 0, err
    assert "with oracle into exp/passthrough" in out and "with passthrough" not in out
    record = json.loads((ws / "exp" / "passthrough" / "synth" / "separate.json").read_text())
    assert record["model"] == "passthrough" and record["model_name"] == "oracle"


def test_outputs_of_rows_a_smaller_split_no_longer_has_are_removed(tmp_path, run_cli):
    ws = tmp_path / "ws"
    split = make_split(ws)
    separate_split(split, "passthrough", workspace=ws, jobs=0)
    out = ws / "exp" / "passthrough" / "synth"
    (out / "mine.wav").write_bytes(b"not made by separate")  # no record: left alone
    frame = pd.read_csv(split / "mixtures.csv", dtype=str, keep_default_na=False)
    write_split_csv(split, frame.iloc[:3])  # as mix --overwrite with a smaller --num leaves it
    code, text, err = run_cli("-w", ws, "separate", "--split", "synth", "--jobs", "0")
    assert code == 0, err
    assert "removed 2 output(s) of rows no longer in split synth (synth_0003.wav, synth_0004.wav)" in text
    assert sorted(p.name for p in out.glob("*.wav")) == ["mine.wav", "synth_0000.wav", "synth_0001.wav",
                                                         "synth_0002.wav"]
    record = json.loads((out / "separate.json").read_text())
    assert record["complete"] and record["count"] == 3 and record["removed_rows"] == 2


# -- outside check (Q2): a setting the model does not use is refused, not recorded ------------------
@pytest.mark.parametrize("args, message", [
    (["--model", "passthrough", "--option", "gain=2"], "model passthrough takes no option gain (its options: none)"),
    (["--model", "oracle", "--option", "seed=3"], "model oracle takes no option seed (its options: none)"),
    (["--model", "passthrough", "--checkpoint", "WEIGHTS"], "passthrough has no weights: drop --checkpoint"),
    (["--model", "oracle", "--checkpoint", "WEIGHTS"], "oracle has no weights: drop --checkpoint"),
    (["--model", "ensemble", "-o", "members=passthrough,oracle", "-o", "m1_checkpoint=WEIGHTS"],
     "passthrough has no weights: drop -o m1_checkpoint"),  # the member's option, not the command's
])
def test_options_and_checkpoints_the_builtin_models_ignore_are_refused(tmp_path, run_cli, args, message):
    """They were accepted, ignored, and written into separate.json as what made the outputs."""
    ws = tmp_path / "ws"
    split = make_split(ws)
    weights = tmp_path / "weights.ckpt"
    weights.write_bytes(b"not used")
    args = [str(weights) if a == "WEIGHTS" else a.replace("WEIGHTS", str(weights)) for a in args]
    code, _, err = run_cli("-w", ws, "separate", "--split", split, *args)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (ws / "exp").exists()
