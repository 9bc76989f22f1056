"""Manifests and split tables: round trip and validation naming the bad row."""

from __future__ import annotations

import pytest

from lasskit.errors import UsageError
from lasskit.manifest import ALL_COLUMNS, MANIFEST_COLUMNS, Clip, read_manifest, write_manifest
from lasskit.splits import read_split


def _clip(i: int) -> Clip:
    return Clip(f"c{i}", f"audio/c{i}.wav", 1.5, 16000, 24000, "demo", "train",
                ["A dog barks, twice.", 'He said "hi"'], ["Dog", "Bark"])


def test_manifest_round_trip_is_exact_and_rewrite_is_a_no_op(tmp_path):
    path = tmp_path / "manifest.csv"
    assert write_manifest(path, [_clip(1), _clip(2)])
    m = read_manifest(path)
    assert [c.id for c in m.clips] == ["c1", "c2"]
    assert m.clips[0].captions == ["A dog barks, twice.", 'He said "hi"'] and m.clips[0].labels == ["Dog", "Bark"]
    assert m.clips[0].num_samples == 24000 and m.clips[0].sample_rate == 16000
    assert m.audio_path(m.clips[0]) == tmp_path / "audio/c1.wav"
    assert path.read_text().splitlines()[0] == ",".join(ALL_COLUMNS)
    assert not write_manifest(path, [_clip(1), _clip(2)])  # unchanged: not rewritten


@pytest.mark.parametrize("bad, message", [
    ("c1,a.wav,x,16000,16000,d,s,[],[]", "line 2: duration"),
    ("c1,a.wav,1,16000,16000,d,s,not json,[]", "line 2: captions"),
    ("c1,a.wav,1,16000,16000,d,s,[],[1]", "line 2: labels"),
    (",a.wav,1,16000,16000,d,s,[],[]", "line 2: empty id"),
])
def test_manifest_validation_names_the_row(tmp_path, bad, message):
    path = tmp_path / "m.csv"
    path.write_text(",".join(MANIFEST_COLUMNS) + "\n" + bad + "\n")
    with pytest.raises(UsageError, match=message):
        read_manifest(path)


def test_manifest_missing_column_and_duplicate_ids(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("id,audio\nc1,a.wav\n")
    with pytest.raises(UsageError, match="lacks column"):
        read_manifest(path)
    row = "c1,a.wav,1,16000,16000,d,s,[],[]"
    path.write_text(",".join(MANIFEST_COLUMNS) + f"\n{row}\n{row}\n")
    with pytest.raises(UsageError, match="line 3: duplicate id"):
        read_manifest(path)


def test_split_validation(tmp_path):
    (tmp_path / "mixtures.csv").write_text('mixture,query\na.wav," leading space kept"\nb.wav,NA\n')
    split = read_split(tmp_path)
    assert list(split.frame["query"]) == [" leading space kept", "NA"]  # verbatim, NA is text
    assert not split.has_references
    (tmp_path / "mixtures.csv").write_text("mixture,query\na.wav,x\na.wav,y\n")
    with pytest.raises(UsageError, match="duplicate mixture"):
        read_split(tmp_path)
    (tmp_path / "mixtures.csv").write_text("mixture,query\na.wav,\n")
    with pytest.raises(UsageError, match="line 2: empty query for a.wav"):
        read_split(tmp_path)
    (tmp_path / "mixtures.csv").write_text("mixture,query\n../a.wav,q\n")
    with pytest.raises(UsageError, match="plain file name"):
        read_split(tmp_path)
