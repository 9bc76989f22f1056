"""What each ``lasskit download NAME`` is: records, files, known checksums, licence, what follows.

A :class:`Dataset` names the Zenodo records (or plain URLs) its files come from, which files of
each record it takes, the MD5s and sizes known without asking the records API (the fallback when
the API cannot be reached; the API's answer wins when both exist), the folder it is downloaded
into (under ``--to``), where each archive is extracted, the ``paths.<corpus>`` key of
lasskit.yaml it fills and the ``prepare`` command that follows.

Model weights are not listed here: they are the weight files of :mod:`lasskit.weights` and those
that models declare (see :mod:`lasskit.models.downloads`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class KnownFile:
    """A file known without the records API: its name, and its checks where known."""

    name: str
    md5: str | None = None
    size: int | None = None
    url: str | None = None
    """For files that are not on Zenodo: where they are."""


@dataclass(frozen=True)
class Source:
    """Files from one Zenodo record (``record``), or plain URLs (``record=None``: ``known`` have urls)."""

    record: str | None
    include: tuple[str, ...] = ("*",)
    """Shell patterns of the record's file names to take."""
    known: tuple[KnownFile, ...] = ()
    into: str = ""
    """Subfolder of the dataset's folder for these files ("" = the folder itself)."""
    what: str = ""


@dataclass(frozen=True)
class Dataset:
    """One downloadable name."""

    name: str
    title: str
    licence: str
    size: str
    """Approximate download size, for ``--list`` when the records API was not asked yet."""
    folder: str
    """Folder under ``--to``."""
    sources: tuple[Source, ...]
    prepare: str
    """What to run next."""
    corpus: str | None = None
    """The ``paths.<corpus>`` key of lasskit.yaml this fills (None: none)."""
    archive_folders: dict[str, str] = field(default_factory=dict)
    """Archive name -> the top folder ``prepare`` expects it to make (default: the archive's stem)."""

    def folder_for(self, archive: str) -> str:
        if archive in self.archive_folders:
            return self.archive_folders[archive]
        stem = archive
        for suffix in (".zip", ".7z"):
            if stem.lower().endswith(suffix):
                stem = stem[: -len(suffix)]
        return stem


_CLOTHO = "4783391"
_FSD50K = "4060432"
_Z = KnownFile

CATALOGUE: dict[str, Dataset] = {
    "clotho": Dataset(
        name="clotho",
        title="Clotho v2.1 (audio captioning: 3 splits of 15-30 s clips, 5 captions each)",
        licence="Tampere University terms (LICENSE in the record); clips: Freesound licences, per clip",
        size="about 7.2 GB",
        folder="clotho",
        sources=(Source(_CLOTHO, what="Clotho v2.1", known=(
            _Z("clotho_audio_development.7z", "c8b05bc7acdb13895bb3c6a29608667e", 4541582263),
            _Z("clotho_audio_validation.7z", "7dba730be08bada48bd15dc4e668df59", 1260701425),
            _Z("clotho_audio_evaluation.7z", "4569624ccadf96223f19cb59fe4f849f"),
            _Z("clotho_captions_development.csv", "d4090b39ce9f2491908eebf4d5b09bae", 1336762),
            _Z("clotho_captions_validation.csv", "5879e023032b22a2c930aaa0528bead4", 367649),
            _Z("clotho_captions_evaluation.csv", "1b16b9e57cf7bdb7f13a13802aeb57e2"),
            _Z("clotho_metadata_development.csv", "170d20935ecfdf161ce1bb154118cda5", 830797),
            _Z("clotho_metadata_validation.csv", "2e010427c56b1ce6008b0f03f41048ce", 224803),
            _Z("clotho_metadata_evaluation.csv", "13946f054d4e1bf48079813aac61bf77"),
        )),),
        prepare="lasskit prepare clotho",
        corpus="clotho",
        archive_folders={"clotho_audio_development.7z": "development", "clotho_audio_validation.7z": "validation",
                         "clotho_audio_evaluation.7z": "evaluation"},
    ),
    "fsd50k": Dataset(
        name="fsd50k",
        title="FSD50K (51k Freesound clips, 200 AudioSet classes; dev as a split zip of 6 parts)",
        licence="CC BY 4.0 (the dataset); clips: CC0, CC BY, CC BY-NC or CC Sampling+, per clip",
        size="about 30 GB",
        folder="FSD50K",
        sources=(Source(_FSD50K, include=("FSD50K.dev_audio.*", "FSD50K.eval_audio.*", "FSD50K.ground_truth.zip",
                                          "FSD50K.metadata.zip", "FSD50K.doc.zip"), what="FSD50K", known=(
            _Z("FSD50K.dev_audio.zip", "c480d119b8f7a7e32fdb58f3ea4d6c5a"),
            _Z("FSD50K.dev_audio.z01", "faa7cf4cc076fc34a44a479a5ed862a3"),
            _Z("FSD50K.dev_audio.z02", "8f9b66153e68571164fb1315d00bc7bc"),
            _Z("FSD50K.dev_audio.z03", "1196ef47d267a993d30fa98af54b7159"),
            _Z("FSD50K.dev_audio.z04", "d088ac4e11ba53daf9f7574c11cccac9"),
            _Z("FSD50K.dev_audio.z05", "81356521aa159accd3c35de22da28c7f"),
            _Z("FSD50K.eval_audio.zip", "6fa47636c3a3ad5c7dfeba99f2637982"),
            _Z("FSD50K.eval_audio.z01", "3090670eaeecc013ca1ff84fe4442aeb"),
            _Z("FSD50K.ground_truth.zip", "ca27382c195e37d2269c4c866dd73485"),
            _Z("FSD50K.metadata.zip", "b9ea0c829a411c1d42adb9da539ed237"),
        )),),
        prepare="lasskit prepare fsd50k --captions <the organizers' caption JSON (lasskit download dcase2024)>",
        corpus="fsd50k",
    ),
    "dcase2024": Dataset(
        name="dcase2024",
        title="DCASE 2024 Task 9: validation (1000 clips + synthetic mixtures), evaluation sets, caption JSONs",
        licence="see the Zenodo records 10886481, 11425256, 10887496 (Freesound clips, per-clip licences)",
        size="about 1-3 GB",
        folder="dcase2024_task9",
        sources=(
            Source("10886481", what="validation set", known=(
                _Z("lass_validation.zip"), _Z("lass_validation.json"), _Z("lass_synthetic_validation.csv"))),
            Source("11425256", what="evaluation sets"),
            Source("10887496", include=("*.json",), into="captions", what="the organizers' generated captions"),
        ),
        prepare="lasskit prepare dcase2024",
        corpus="dcase2024",
    ),
    "labels": Dataset(
        name="labels",
        title="AudioSet ontology (632 classes) and FSD50K's vocabulary, for derived labels",
        licence="ontology: CC BY-SA 4.0; FSD50K ground truth: CC BY 4.0",
        size="about 3 MB",
        folder="labels",
        sources=(
            Source(None, what="AudioSet ontology", known=(
                _Z("ontology.json", url="https://raw.githubusercontent.com/audioset/ontology/master/ontology.json"),)),
            Source(_FSD50K, include=("FSD50K.ground_truth.zip",), what="FSD50K vocabulary", known=(
                _Z("FSD50K.ground_truth.zip", "ca27382c195e37d2269c4c866dd73485"),)),
        ),
        prepare="lasskit prepare clotho --ontology <to>/labels/ontology.json --vocabulary "
                "<to>/labels/FSD50K.ground_truth/vocabulary.csv",
    ),
}
"""Every downloadable dataset, by name."""


def dataset(name: str) -> Dataset | None:
    return CATALOGUE.get(name)
