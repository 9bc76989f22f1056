"""Derived labels: word forms, phrases, context rules, votes, the conflict check, and the corpora
that use them (Clotho metadata, folder metadata counts, ``lasskit label``)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from lasskit import miniature, soundgen
from lasskit.corpora import prepare_corpus
from lasskit.labels import ConflictCheck, Labeler, Vocabulary, label_clips, scope
from lasskit.labels.words import phrases, stem
from lasskit.manifest import Clip, read_manifest
from lasskit.ontology import normalize_label

SHARED = Path(os.environ.get("LASSKIT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
ONTOLOGY = SHARED / "audioset" / "ontology.json"

# a small hierarchy in AudioSet's format, made up for the tests
TREE = {
    "Animal": ["Domestic animals, pets", "Wild animals"],
    "Domestic animals, pets": ["Dog", "Cat"],
    "Dog": ["Bark", "Growling"],
    "Cat": ["Meow", "Hiss", "Growling"],
    "Wild animals": ["Bird", "Snake"],
    "Bird": ["Bird vocalization, bird call, bird song"],
    "Snake": ["Hiss"],
    "Human sounds": ["Human voice", "Human locomotion"],
    "Human voice": ["Speech", "Singing", "Humming"],
    "Speech": ["Male speech, man speaking"],
    "Human locomotion": ["Walk, footsteps"],
    "Natural sounds": ["Water", "Wind"],
    "Water": ["Rain", "Stream"],
    "Rain": [],
    "Sounds of things": ["Vehicle", "Engine", "Alarm"],
    "Vehicle": ["Motor vehicle (road)", "Rail transport"],
    "Motor vehicle (road)": ["Car"],
    "Car": ["Car alarm"],
    "Alarm": ["Car alarm"],
    "Rail transport": ["Train"],
    "Source-ambiguous sounds": ["Onomatopoeia"],
    "Onomatopoeia": ["Hiss", "Hum"],
}
BLACKLIST = {"Natural sounds", "Sounds of things"}


def write_ontology(path: Path) -> Path:
    names = sorted(set(TREE) | {c for kids in TREE.values() for c in kids})
    ids = {n: f"/t/{i:03d}" for i, n in enumerate(names)}
    entries = [{"id": ids[n], "name": n, "child_ids": [ids[c] for c in TREE.get(n, [])],
                "restrictions": ["blacklist"] if n in BLACKLIST else []} for n in names]
    path.write_text(json.dumps(entries))
    return path


def write_vocabulary(path: Path, names) -> Path:
    path.write_text("".join(f"{i},{n.replace(' ', '_')},/m/{i:05d}\n" for i, n in enumerate(names)))
    return path


@pytest.fixture(scope="module")
def onto(tmp_path_factory) -> Path:
    return write_ontology(tmp_path_factory.mktemp("onto") / "ontology.json")


@pytest.fixture(scope="module")
def labeler(onto) -> Labeler:
    return Labeler(Vocabulary.load(ontology=onto))


def test_word_forms_meet():
    assert {stem(w) for w in ("barking", "barks", "barked", "bark")} == {"bark"}
    assert stem("dripping") == stem("drips") == "drip" and stem("buzzing") == "buzz"
    assert stem("taping") == stem("tape") != stem("tapping") == "tap"
    assert stem("children") == "child" and stem("flies") == "fly" and stem("dishes") == "dish"
    assert phrases("A man is speaking, and a dog-barking.") == [("man", "speak"), ("and", "dog", "bark")]
    assert phrases("dog-barking", keyword=True) == [("dog", "bark")]


def test_phrases_synonyms_and_longest_match(labeler):
    derive = labeler.classes
    assert derive(["A dog is barking loudly."]) == {"dog", "bark"}
    assert derive(["A heavy downpour on the roof."]) == {"rain"}
    assert derive(["Footsteps on gravel."]) == {"walk and footsteps"}
    assert derive(["A man is speaking."]) == {"male speech and man speaking"}
    assert derive(["A car alarm goes off."]) == {"car alarm"}  # not also Car
    assert derive(["Trains pass by."]) == {"train"}
    assert derive(["Water runs and a plane flies over."]) == {"water"}  # "run" and "fly" never alone


def test_source_rules_keep_human_and_animal_sounds_apart(labeler):
    derive = labeler.classes
    assert derive(["Birds are singing."]) == {"bird"}
    assert derive(["A man is singing."]) == {"singing"}
    assert derive(["Someone is humming a tune."]) >= {"humming"}
    assert "humming" not in derive(["The engine is humming."])
    assert derive(["A cat hisses."]) == {"cat", "hiss"}
    assert derive(["The engine roars."]) == {"engine"}  # no animal named: no animal sound


def test_vocabulary_csv_names_and_ontology_spelling(tmp_path, onto):
    vocab = write_vocabulary(tmp_path / "vocabulary.csv", ["Dog", "Bark", "Walk_and_footsteps", "Rain"])
    plain = Labeler(Vocabulary.load(vocabulary=vocab))
    assert plain.derive((), ["Dogs bark while someone walks."]) == (["Bark", "Dog", "Walk and footsteps"], "caption")
    both = Labeler(Vocabulary.load(vocabulary=vocab, ontology=onto))
    labels, _ = both.derive((), ["Footsteps in the rain."])
    assert "Walk and footsteps" in labels and "Rain" in labels  # FSD50K's spelling is kept


def test_derivation_is_deterministic_and_records_its_source(labeler):
    caps = ["A dog barks twice.", "A dog is barking.", "Barking of a dog in the yard."]
    first = labeler.derive(["dog", "field-recording"], caps)
    assert first == labeler.derive(["dog", "field-recording"], caps)
    assert first == (["Animal", "Bark", "Dog", "Domestic animals, pets"], "keywords")
    assert labeler.derive((), caps)[1] == "caption"
    assert labeler.derive((), ["Silence."]) == ([], "")


def test_votes_need_two_captions_for_weak_families(labeler):
    caps = ["A dog barks in the rain.", "A dog is barking.", "A dog barks."]
    labels, _ = labeler.derive((), caps)
    assert "Dog" in labels and "Rain" not in labels  # weather named once: not kept
    labels, _ = labeler.derive((), ["A dog barks while a man talks.", "A dog is barking.", "A dog barks."])
    assert "Speech" in labels  # a person named once is kept
    assert "Rain" in labeler.derive((), ["A dog barks in the rain."])[0]  # one caption: all kept


def test_conflict_check_climbs_with_judgement(onto):
    check = ConflictCheck.load(onto)
    assert check.conflict(["Bark"], ["Cat"])  # both reach Animal
    assert check.conflict(["Male speech, man speaking"], ["Singing"])  # Human voice
    assert not check.conflict(["Hiss"], ["Cat"])  # a hiss alone may be steam or a snake
    assert check.conflict(["Cat", "Hiss"], ["Meow"])
    assert not check.conflict(["Car"], ["Train"])  # Vehicle is an umbrella
    assert not check.conflict(["Rain"], ["Wind"])  # Natural sounds is blacklisted
    assert check.conflict(["Rain"], ["Stream"])  # Water
    assert check.class_set(["Domestic_animals_and_pets"]) >= {"domestic animals and pets", "animal"}
    assert not ConflictCheck().conflict(["Dog"], ["Cat"]) and ConflictCheck().conflict(["dog"], ["Dog "])


def test_label_clips_keeps_given_and_clap_and_rederives_the_rest(labeler):
    clips = [
        Clip("a", "a.wav", 1, 16000, 16000, "x", "train", ["A dog barks."], ["Dog"]),
        Clip("b", "b.wav", 1, 16000, 16000, "x", "train", ["Rain falls."], ["Speech"], label_source="caption"),
        Clip("c", "c.wav", 1, 16000, 16000, "x", "train", ["Hmm."], ["Cat"], label_source="clap"),
        Clip("d", "d.wav", 1, 16000, 16000, "x", "train", ["Hmm."], []),
    ]
    report = label_clips(clips, labeler, {"d": {"keywords": ["train"], "freesound_id": "123"}})
    assert [c.label_source for c in clips] == ["given", "caption", "clap", "keywords"]
    assert clips[0].labels == ["Dog"] and clips[1].labels == ["Rain", "Water"] and clips[2].labels == ["Cat"]
    assert clips[3].labels == ["Rail transport", "Train"] and clips[3].freesound_id == "123"
    assert (report.given, report.derived, report.kept_other, report.unlabeled) == (1, {"caption": 1, "keywords": 1}, 1, 0)


def test_clotho_metadata_keywords_ids_licence_and_derived_labels(tmp_path):
    raw = miniature.write_clotho(tmp_path / "raw", per_split=2, duration=0.2)
    (tmp_path / "raw/development/stray.wav").write_bytes((tmp_path / "raw/development").glob("*.wav").__next__().read_bytes())
    vocab = sorted({lab for c in soundgen.CLASSES.values() for lab in c.labels})
    vocabulary = write_vocabulary(tmp_path / "vocabulary.csv", vocab)
    (report,) = prepare_corpus("clotho", raw, tmp_path / "data", jobs=1,
                               labeler=Labeler(Vocabulary.load(vocabulary)))
    m = read_manifest(tmp_path / "data/clotho/manifest.csv")
    assert len(m) == 6 and "stray" not in {c.id.split("/")[-1] for c in m.clips}
    assert any("1 file(s) in development/ are not in clotho_captions_development.csv" in n for n in report.notes)
    clip = next(c for c in m.clips if c.id == "development/tone recording 0")
    assert clip.keywords == ["tone", "sine wave", "field-recording"] and clip.freesound_id == "300000"
    assert clip.license.startswith("http://creativecommons.org/") and clip.label_source == "keywords"
    assert "Tone" in clip.labels and "Sine wave" in clip.labels
    assert all(c.labels and c.label_source == "keywords" for c in m.clips)
    assert any("6 from keywords" in n for n in report.notes)


def test_clotho_without_metadata_or_vocabulary_still_prepares(tmp_path):
    raw = miniature.write_clotho(tmp_path / "raw", per_split=1, duration=0.2, metadata=False)
    (report,) = prepare_corpus("clotho", raw, tmp_path / "data", jobs=1)
    m = read_manifest(tmp_path / "data/clotho/manifest.csv")
    assert len(m) == 3 and all(c.labels == [] and c.keywords == [] and c.freesound_id == "" for c in m.clips)
    assert any("labels not derived" in n for n in report.notes)


def test_folder_metadata_separators_counts_ids_and_derived_labels(tmp_path, onto):
    src = tmp_path / "mine"
    for rel, cls in (("a/one.wav", "knock"), ("b/two.wav", "rain"), ("c/three.wav", "bird"), ("d/four.wav", "hum")):
        soundgen.write_clip(src / rel, cls, 0.2, 16000)
    meta = tmp_path / "meta.csv"
    with open(meta, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "caption", "labels", "freesound_id"])
        w.writerow(["a/one.wav", "", "Dog|Walk, footsteps", "42"])
        w.writerow(["two.wav", "Rain falls on a roof.", "", ""])
        w.writerow(["c/three.wav", "", '["Bird"]', ""])
        w.writerow(["gone.wav", "A clip that is not there.", "Dog;Cat", ""])
    (report,) = prepare_corpus("folder", src, tmp_path / "data", metadata=meta, jobs=1,
                               labeler=Labeler(Vocabulary.load(ontology=onto)))
    by_id = {c.id: c for c in read_manifest(tmp_path / "data/mine/manifest.csv").clips}
    assert by_id["a/one"].labels == ["Dog", "Walk, footsteps"] and by_id["a/one"].freesound_id == "42"
    assert by_id["a/one"].label_source == "given" and by_id["c/three"].labels == ["Bird"]
    assert by_id["b/two"].labels == ["Rain", "Water"] and by_id["b/two"].label_source == "caption"
    assert by_id["d/four"].labels == [] and by_id["d/four"].label_source == ""
    assert "1 file(s) have no row in meta.csv; 1 of its 4 row(s) matched no file" in report.notes[0]
    bad = tmp_path / "bad.csv"
    bad.write_text("file,freesound_id\na/one.wav,abc\n")
    from lasskit.errors import UsageError

    with pytest.raises(UsageError, match="freesound_id 'abc'"):
        prepare_corpus("folder", src, tmp_path / "data2", metadata=bad, jobs=1)


def test_cli_label_rederives_without_touching_audio(tmp_path, onto, run_cli):
    raw = miniature.write_clotho(tmp_path / "raw", per_split=1, duration=0.2)
    ws = tmp_path / "ws"
    code, _, err = run_cli("--workspace", ws, "prepare", "clotho", raw, "--jobs", "1")
    assert code == 0, err
    audio = {p: p.stat().st_mtime_ns for p in (ws / "data/clotho/audio").rglob("*.wav")}
    code, out, err = run_cli("--workspace", ws, "label", "clotho")
    assert code == 2 and "no class vocabulary" in err
    code, out, err = run_cli("--workspace", ws, "label", "clotho", "--ontology", onto)
    assert code == 0, err
    assert "3 clip(s)" in out and "manifest rewritten" in out
    m = read_manifest(ws / "data/clotho/manifest.csv")
    by_id = {c.id: c for c in m.clips}
    assert by_id["validation/alarm recording 1"].labels == ["Alarm"]
    assert by_id["validation/alarm recording 1"].label_source == "keywords"
    tone = by_id["development/tone recording 0"]  # keywords name nothing of this small ontology
    assert (tone.labels, tone.label_source) == (["Hum"], "caption")  # "A steady tone hums ..."
    assert {p: p.stat().st_mtime_ns for p in (ws / "data/clotho/audio").rglob("*.wav")} == audio
    code, out, err = run_cli("--workspace", ws, "label", "nope", "--ontology", onto)
    assert code == 2 and "no prepared corpus" in err
    # CLAP-only values in lasskit.yaml (a top-level device, label.devices) do not block a plain label;
    # typed on the command line without --clap they are refused
    (ws / "lasskit.yaml").write_text("device: cpu\nlabel:\n  devices: 2\n  clap_batch: 8\n")
    code, out, err = run_cli("--workspace", ws, "label", "clotho", "--ontology", onto)
    assert code == 0, err
    code, out, err = run_cli("--workspace", ws, "label", "clotho", "--ontology", onto, "--devices", "2")
    assert code == 2 and "go with --clap" in err


def test_benchmark_figures_on_the_official_validation_metadata(metadata_dir):
    if not ONTOLOGY.is_file():
        pytest.skip(f"AudioSet ontology not found at {ONTOLOGY} (../shared is absent in a user's clone)")
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_labels", Path(__file__).parents[1] / "benchmarks/bench_labels.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.evaluate(metadata_dir, ONTOLOGY)
    assert result["pairs_sharing_a_tag"] == 51694 and result["official_pairs"] == 3000
    assert result["recall"] >= 0.65 and result["false_alarms"] <= 0.10


# -- issue 22: a rule that is unsure says less, not something else ---------------------------------
TRICKY_TREE = {
    "Animal": ["Domestic animals, pets", "Wild animals"],
    "Domestic animals, pets": ["Dog", "Cat"],
    "Dog": ["Bark"],
    "Cat": ["Meow"],
    "Wild animals": ["Bird", "Insect"],
    "Insect": ["Cricket"],
    "Human sounds": ["Human voice"],
    "Human voice": ["Speech"],
    "Speech": ["Male speech, man speaking"],
    "Natural sounds": ["Rain", "Wind"],
    "Music": ["Musical instrument", "Music genre"],
    "Musical instrument": ["Keyboard (musical)"],
    "Keyboard (musical)": ["Organ"],
    "Music genre": ["Blues", "Country"],
    "Sounds of things": ["Bell", "Vehicle"],
    "Bell": ["Church bell"],
    "Vehicle": ["Car"],
}
TRICKY_CSV = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "tricky_captions.csv"


@pytest.fixture(scope="module")
def tricky_labeler(tmp_path_factory) -> Labeler:
    names = sorted(set(TRICKY_TREE) | {c for kids in TRICKY_TREE.values() for c in kids})
    ids = {n: f"/t/{i:03d}" for i, n in enumerate(names)}
    entries = [{"id": ids[n], "name": n, "child_ids": [ids[c] for c in TRICKY_TREE.get(n, [])],
                "restrictions": []} for n in names]
    path = tmp_path_factory.mktemp("tricky") / "ontology.json"
    path.write_text(json.dumps(entries))
    return Labeler(Vocabulary.load(ontology=path))


def _labels(labeler, caption):
    return labeler.derive((), [caption])[0]


def test_negated_mentions_name_nothing(tricky_labeler):
    assert _labels(tricky_labeler, "no dogs barking") == []
    assert _labels(tricky_labeler, "there is no rain, only wind") == ["Wind"]
    assert _labels(tricky_labeler, "silence with no birds") == []
    assert _labels(tricky_labeler, "wind blows but no rain falls") == ["Wind"]
    # not a negation: the barking goes on
    assert _labels(tricky_labeler, "a dog never stops barking") == ["Animal", "Bark", "Dog", "Domestic animals, pets"]
    # the dropped words are counted
    assert scope.read("no dogs barking").dropped == 3 and scope.read("no dogs barking").negated
    assert scope.read("there is no rain, only wind").runs == (("only", "wind"),)


def test_an_imitated_source_adds_the_imitator_not_the_source(tricky_labeler):
    imitation = _labels(tricky_labeler, "a man imitating a dog")
    assert imitation == ["Human voice"]
    talk = _labels(tricky_labeler, "a man talks loudly")
    assert "Male speech, man speaking" in talk
    # the two are no longer "class-disjoint": they share Human voice
    assert tricky_labeler.check.conflict(imitation, talk)
    assert _labels(tricky_labeler, "a comedian does a dog imitation") == ["Human voice"]
    # a comparison is not an imitation: it names what the clip sounds like
    assert "Dog" in _labels(tricky_labeler, "a man barking like a dog")


def test_homonyms_and_genre_words_say_less(tricky_labeler):
    assert _labels(tricky_labeler, "a great blue heron calls") == []
    assert _labels(tricky_labeler, "a blue car drives past") == ["Car"]
    assert _labels(tricky_labeler, "blues music on a guitar") == ["Blues", "Music"]
    organ = _labels(tricky_labeler, "a pipe organ in a church")
    assert "Organ" in organ and "Church bell" not in organ and "Bell" not in organ
    assert _labels(tricky_labeler, "church bells ring in the distance") == ["Bell", "Church bell"]
    assert _labels(tricky_labeler, "a game of cricket on the radio") == []
    assert _labels(tricky_labeler, "crickets chirp in the grass") == ["Animal", "Cricket", "Insect", "Wild animals"]
    assert _labels(tricky_labeler, "cat toy") == [] and _labels(tricky_labeler, "a toy car rolls") == []
    assert _labels(tricky_labeler, "a country road with cars") == ["Car"]
    assert _labels(tricky_labeler, "a man eats a hot dog") == []
    # synthetic and video-game animals are not animals
    assert _labels(tricky_labeler, "a synthesized dog bark") == []
    assert _labels(tricky_labeler, "a video game dog barks") == []


def test_tricky_captions_file_gives_no_wrong_class(tmp_path):
    """The 121 tricky captions of the benchmark, on a vocabulary of every name they mention."""
    with open(TRICKY_CSV, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 100 and {r["kind"] for r in rows} >= {"negation", "imitation", "homonym", "game", "synthetic"}
    names = sorted({n for r in rows for col in ("expected", "forbidden") for n in r[col].split(";") if n})
    vocabulary = tmp_path / "vocabulary.csv"
    vocabulary.write_text("".join(f'{i},"{n.replace(", ", "_and_").replace(" ", "_")}",/m/{i:05d}\n'
                                  for i, n in enumerate(names)))
    labeler = Labeler(Vocabulary.load(vocabulary=vocabulary))
    wrong, missed, expected = [], 0, 0
    for r in rows:
        got = {normalize_label(x) for x in labeler.derive((), [r["caption"]])[0]}
        if got & {normalize_label(n) for n in r["forbidden"].split(";") if n}:
            wrong.append(r["caption"])
        want = {normalize_label(n) for n in r["expected"].split(";") if n}
        expected += len(want)
        missed += len(want - got)
    assert wrong == []
    assert missed <= 2 and expected == 154


# -- outside check (Q2): homonyms and animal verbs that named another class ---------------------------
Q2_TREE = {
    "Animal": ["Livestock, farm animals, working animals", "Wild animals"],
    "Livestock, farm animals, working animals": ["Fowl"],
    "Fowl": ["Goose", "Duck"],
    "Goose": ["Honk"],
    "Wild animals": ["Bird"],
    "Human sounds": ["Human voice", "Human group actions"],
    "Human voice": ["Singing"],
    "Singing": ["Rapping"],
    "Human group actions": ["Cheering", "Children playing"],
    "Music": ["Music genre", "Musical instrument"],
    "Music genre": ["Pop music"],
    "Musical instrument": ["Wind instrument, woodwind instrument"],
    "Wind instrument, woodwind instrument": ["Recorder"],
    "Sounds of things": ["Vehicle", "Mechanisms", "Tools", "Bell", "Explosion", "Domestic sounds, home sounds",
                         "Door", "Duck call (hunting tool)"],
    "Vehicle": ["Motor vehicle (road)", "Aircraft"],
    "Motor vehicle (road)": ["Vehicle horn, car horn, honking", "Car"],
    "Mechanisms": ["Mechanical fan"],
    "Tools": ["Hammer"],
    "Explosion": ["Burst, pop"],
    "Door": ["Knock"],
    "Natural sounds": ["Rain", "Water"],
    "Water": ["Spray"],
}


@pytest.fixture(scope="module")
def q2_labeler(tmp_path_factory) -> Labeler:
    names = sorted(set(Q2_TREE) | {c for kids in Q2_TREE.values() for c in kids})
    ids = {n: f"/q/{i:03d}" for i, n in enumerate(names)}
    entries = [{"id": ids[n], "name": n, "child_ids": [ids[c] for c in Q2_TREE.get(n, [])],
                "restrictions": []} for n in names]
    path = tmp_path_factory.mktemp("q2") / "ontology.json"
    path.write_text(json.dumps(entries))
    return Labeler(Vocabulary.load(ontology=path))


@pytest.mark.parametrize("caption, forbidden, kept", [
    ("a goose honks loudly", "Vehicle horn, car horn, honking", "Goose"),  # an animal's honk is no car horn
    ("geese honking as they fly over", "Vehicle horn, car horn, honking", "Honk"),
    ("a duck calls from the pond", "Duck call (hunting tool)", None),  # the bird, not the hunter's tool
    ("someone raps on the window", "Rapping", None),  # knocking, not the vocal style
    ("knocking and rapping at the door", "Rapping", "Knock"),
    ("the fans cheer in the stadium", "Mechanical fan", "Cheering"),
    ("a bell pepper is chopped on a board", "Bell", None),
    ("a pop song plays on the radio", "Burst, pop", "Pop music"),
    ("a jet of water sprays", "Aircraft", "Spray"),
    ("hammering rain on a tin roof", "Hammer", "Rain"),
    ("a kid plays the recorder", "Children playing", None),
])
def test_homonyms_and_animal_verbs_name_no_other_class(q2_labeler, caption, forbidden, kept):
    got = _labels(q2_labeler, caption)
    assert forbidden not in got, got
    if kept:
        assert kept in got, got


@pytest.mark.parametrize("caption, expected", [
    ("a car honks in traffic", "Vehicle horn, car horn, honking"),
    ("a hunter blows a duck call", "Duck call (hunting tool)"),
    ("a man raps over a beat", "Rapping"),
    ("a ceiling fan spins", "Mechanical fan"),
    ("a jet flies overhead", "Aircraft"),
    ("a balloon pops", "Burst, pop"),
    ("a man pounds a nail with a hammer", "Hammer"),
    ("kids playing in a playground", "Children playing"),
    ("church bells ring", "Bell"),
])
def test_the_same_words_still_name_their_class_in_their_own_sense(q2_labeler, caption, expected):
    assert expected in _labels(q2_labeler, caption)
