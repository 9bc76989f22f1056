"""``lasskit listen``: the challenge's listening test (REL and OVL, 1-5), run by a team on its systems.

This package owns:

- test creation and layout (:mod:`.layout`): item selection stratified over recordings, hidden
  stimulus ids, loudness-matched playback copies (:mod:`.loudness`), the raters' wording
  (:mod:`.scales`);
- the SQLite store (:mod:`.store`): raters and their tokens, per-rater plans (seeded order,
  hidden repeats), answers validated and committed one by one;
- the web application (:mod:`.app`, Starlette + uvicorn) and its static page (``static/``);
- the quality-control material (:mod:`.qc`): the volume/headphone check, the training page, the
  gold and trapping screens, generated from the test's seed;
- quality control, aggregation and results (:mod:`.results`): rater flags per rule, means with
  bootstrap intervals over items and raters, the ranking and how sure it is, per-rater statistics, CSVs,
  plots and the agreement of CLAP scores with REL;
- webMUSHRA export and import (:mod:`.webmushra`).

Nothing here imports torch; the web framework, pandas and matplotlib are imported by the
functions that need them.
"""

from lasskit.listening.layout import (
    ANCHOR,
    CreateReport,
    ListenSpec,
    create_test,
    load_test,
    resolve_test,
)

__all__ = ["ANCHOR", "CreateReport", "ListenSpec", "create_test", "load_test", "resolve_test"]
