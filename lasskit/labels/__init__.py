"""Derived class labels for caption-only clips, and the class-conflict check ``mix`` uses.

Clotho and users' own folders have captions (and, for Clotho, Freesound keywords) but no class
labels, so class-disjoint mixing could not use them. This package names the sound classes a
clip's keywords and captions mention, on a vocabulary the user supplies: FSD50K's
``vocabulary.csv`` (200 AudioSet names, no hierarchy) and/or AudioSet's ``ontology.json`` (632
names and their hierarchy), see :mod:`lasskit.labels.vocabulary`. The manifest records where
labels came from (``label_source``: ``given``, ``keywords``, ``caption``; ``clap`` is zero-shot
audio tagging, :mod:`lasskit.labels.clap`).

Matching rules (deterministic: the same text and vocabulary give the same labels)

1. Words (:mod:`lasskit.labels.words`): lower-cased, split into runs at punctuation, filler words
   ("a", "the", forms of "be", ...) dropped, each word reduced to a stem so that plurals, ``-ing``
   and ``-ed`` forms meet ("barking", "barks", "barked" -> ``bark``; "whistling" finds "whistle").
2. Phrases: every class is named by the parts of its name ("Walk, footsteps" -> "walk",
   "footsteps"; "Motor vehicle (road)" -> "motor vehicle"), by a two-word name written as one
   word ("doorbell"), and by the hand-made synonyms of :data:`~lasskit.labels.synonyms.SYNONYMS`
   ("downpour" -> Rain, "barking" -> Dog and Bark, "a man talking" -> Male speech). In each run
   the longest phrase wins at each place ("car alarm" is Car alarm, not Car); a class's own first
   name beats another class's synonym ("dog" is Dog, not "Canidae, dogs, wolves"). Single words
   too common in other senses never name a class alone (``NEVER_ALONE``: "run", "fly", "noise").
3. Context (:mod:`lasskit.labels.synonyms`): a few words take their class from the other words
   of the same text ("horn" with "car" is a car horn, with "train" a train horn, else a brass
   instrument); words that describe human sounds but are often said of other things ("sing",
   "hum", "whistle") name a human sound only when the text names a person or no other source
   ("birds sing", "the engine hums" do not); animal sounds often said of machines ("roar",
   "growl", "purr") name an animal sound only when the text names an animal.
3b. Scope (:mod:`lasskit.labels.scope`): negated words name nothing ("no dogs barking"), an
   imitated source is not labelled and a person imitating it adds ``Human voice`` ("a man
   imitating a dog"), "toy"/"cat toy"/"hot dog" name no animal (:data:`~lasskit.labels.synonyms.NAMES_NOTHING`),
   a synthesized, toy or video-game animal is not an animal; genre names that are everyday
   words need a music word in the text ("blue heron" is not Blues, "country road" not Country:
   :data:`~lasskit.labels.synonyms.NEEDS`), and some classes yield to context words ("cricket"
   beside "game", "bat", "match" is the sport, "rapping" beside "door" is knocking, "fans" beside
   "cheer" are people: :data:`~lasskit.labels.synonyms.VETOED_BY`); an animal verb that names a
   machine without an animal does not once an animal is named ("a goose honks" is no car horn:
   :data:`~lasskit.labels.synonyms.NOT_WITH_ANIMAL`).
   A rule that is unsure says less, never something else.
4. Votes: Freesound keywords are read as one text. With three captions or more (Clotho has
   five, the challenge's validation set three), each caption and the keywords vote for the class
   set of what they name (see 5); a class is kept with two votes, or with one when it is a named
   source: it has one parent and belongs to one top-level family that is not a weak one (sound
   words such as "buzz" or "thump", which many sources make, and the weather/water/wind backdrop
   captions mention in passing: :data:`~lasskit.labels.derive.WEAK_ROOTS`). With fewer captions
   everything named is kept.
5. Hierarchy (:mod:`lasskit.labels.conflict`), with an ontology: a class brings its ancestors,
   except that a sound with several possible sources (``Hiss``: cat, snake, steam) climbs only
   where the clip names the source, and nothing climbs into the umbrella groupings ("Sounds of
   things", "Onomatopoeia", "Vehicle", AudioSet's blacklisted classes). Labels are written with
   these ancestors, so a manifest compares correctly even where ``mix`` has no ontology.

The conflict check: two clips share a class when ``ConflictCheck.class_set`` of their labels
intersect (normalised names, :func:`lasskit.ontology.normalize_label`, expanded by rule 5). ``mix``
uses the same predicate for given and derived labels.

Measured on the challenge's validation metadata (1000 clips with verified tags and three
captions; ``benchmarks/bench_labels.py``): labels derived from captions alone call sharing for
about 80 % of the clip pairs that share a verified tag, and for about 7 % of the 3000 official
pairs (which share none). On the 108 tricky captions of ``benchmarks/data/tricky_captions.csv``
(written for lasskit): precision 96.7 %, recall 97.7 %, no caption given a class listed as wrong.
"""

from __future__ import annotations

from lasskit.labels.conflict import ConflictCheck, shares_class
from lasskit.labels.corpus import LabelReport, label_clips, label_manifest, load_labeler
from lasskit.labels.derive import Labeler
from lasskit.labels.vocabulary import Vocabulary

__all__ = [
    "ConflictCheck", "LabelReport", "Labeler", "Vocabulary", "label_clips", "label_manifest",
    "load_labeler", "shares_class",
]
