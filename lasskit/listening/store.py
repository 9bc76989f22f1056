"""The test's database (``ratings.sqlite``, stdlib sqlite3): raters, their plans and their answers.

Tables:

- ``raters(rater, idx, token, source, created, started)``: ``rater`` is ``r01``, ``r02``, ...;
  ``token`` is the secret in the rater's link (``secrets.token_urlsafe(18)``); ``source`` is
  ``web`` or ``webmushra`` (imported);
- ``plan(rater, position, stimulus, item, repeat_of)``: the screens of a rater in order;
  ``repeat_of`` is the position of the screen a hidden repeat repeats (NULL otherwise);
- ``plays(rater, stimulus, first)``: audio delivered to a rater (recorded only once the file was
  read for the response: a request that fails records nothing, and a rating needs its clip played);
- ``ratings(rater, position, stimulus, rel, ovl, repeat, listened_ms, created)``: one row an
  answer, ``rel`` and ``ovl`` integers 1-5 (also enforced by CHECK constraints);
- ``checks(rater, kind, value, passed, created)``: the rater's volume/headphone check (``kind``
  ``headphones``: the answers as JSON, ``passed`` 0/1) and that the training page was seen
  (``training``); see :mod:`lasskit.listening.qc`.

Errors of the file itself reach the user as one line naming it (:class:`~lasskit.errors.UsageError`
for a damaged, truncated or foreign file; :class:`~lasskit.errors.WorkError` when another process
holds a lock on it for longer than ``Store.wait`` seconds, 3 by default, 15 in the server).

The database runs in WAL mode with ``synchronous=FULL`` and every answer is committed on its own,
so a crash or a killed server loses at most the answer being sent.

Plans: a new rater (index ``k``) gets ``items_per_rater`` items, the least covered so far (ties
broken with ``numpy.random.default_rng([seed, k])``), so each item reaches ``raters_per_item``
raters when ``raters = raters_per_item * items / items_per_rater``. Their screens (every stimulus
of every item) are shuffled with the same generator; then ``repeats`` screens are drawn and a copy
of each is inserted at a random later place, at least three other screens after its original
where the session is long enough (else at its end). Finally the test's gold and trapping screens
(:func:`lasskit.listening.qc.qc_screens`) are inserted at random places after the second screen
(plan rows with item ``qc``).

Validation of an answer (:meth:`Store.rate`): the token must be a rater's; the position must be
that rater's next unanswered screen and the stimulus the one planned there; the clip must have
been fetched by that rater; ``rel`` and ``ovl`` integers 1-5. Anything else is refused
(:class:`Refused`, with an HTTP status) and nothing is written.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from lasskit.errors import LasskitError, UsageError, WorkError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS raters (
    rater TEXT PRIMARY KEY,
    idx INTEGER UNIQUE NOT NULL,
    token TEXT UNIQUE NOT NULL,
    source TEXT NOT NULL DEFAULT 'web',
    label TEXT,
    created TEXT NOT NULL,
    started TEXT
);
CREATE TABLE IF NOT EXISTS plan (
    rater TEXT NOT NULL REFERENCES raters(rater),
    position INTEGER NOT NULL,
    stimulus TEXT NOT NULL,
    item TEXT NOT NULL,
    repeat_of INTEGER,
    PRIMARY KEY (rater, position)
);
CREATE TABLE IF NOT EXISTS plays (
    rater TEXT NOT NULL,
    stimulus TEXT NOT NULL,
    first TEXT NOT NULL,
    PRIMARY KEY (rater, stimulus)
);
CREATE TABLE IF NOT EXISTS ratings (
    rater TEXT NOT NULL REFERENCES raters(rater),
    position INTEGER NOT NULL,
    stimulus TEXT NOT NULL,
    rel INTEGER NOT NULL CHECK (rel BETWEEN 1 AND 5),
    ovl INTEGER NOT NULL CHECK (ovl BETWEEN 1 AND 5),
    repeat INTEGER NOT NULL DEFAULT 0,
    listened_ms INTEGER,
    created TEXT NOT NULL,
    PRIMARY KEY (rater, position)
);
CREATE TABLE IF NOT EXISTS checks (
    rater TEXT NOT NULL REFERENCES raters(rater),
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    passed INTEGER,
    created TEXT NOT NULL,
    PRIMARY KEY (rater, kind)
);
"""

MAX_LISTENED_MS = 24 * 3600 * 1000


class Refused(Exception):
    """A request the server turns down: ``status`` (HTTP) and a message for the rater."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())


@dataclass
class Rater:
    rater: str
    idx: int
    token: str
    source: str
    started: str | None


def database_error(path, exc: sqlite3.Error) -> LasskitError:
    """One line for an SQLite failure of ``path``: a lock held by another process, or a damaged file."""
    text = str(exc).strip() or type(exc).__name__
    low = text.lower()
    if "locked" in low or "busy" in low:
        return WorkError(f"{path}: another process holds a lock on it (a running `lasskit listen serve` or an "
                         "SQLite tool?); wait for it to finish or stop it, then run the command again")
    if isinstance(exc, sqlite3.OperationalError) and ("unable to open" in low or "readonly" in low
                                                      or "disk i/o" in low or "full" in low):
        return WorkError(f"{path}: cannot be used ({text}); check the disk and the permissions, then run the command again")
    return UsageError(f"{path}: damaged or not a lasskit ratings database ({text}); restore it from a backup, "
                      "or re-create the test with `lasskit listen create --force` (its ratings are lost)")


class Store:
    """Access to one test's database; every method opens its own short-lived connection."""

    wait = 3.0  # seconds to wait for a lock held by another connection

    def __init__(self, spec: ListenSpec):  # noqa: F821 (lasskit.listening.layout, which imports this module)
        self.spec = spec
        self.path = spec.db_path
        self._stimuli = spec.stimulus_table()
        self._refs = {it["item"]: it["reference"] for it in spec.items}
        self._ref_items = {it["reference"]: it for it in spec.items}
        self._items = {it["item"]: it for it in spec.items}
        self.qc = spec.data.get("qc", {})
        from lasskit.listening.qc import qc_audio_ids, qc_screens

        self._qc_screens = {q["stimulus"]: q for q in qc_screens(self.qc)}
        self._qc_audio = qc_audio_ids(self.qc)
        self._seconds = spec.stimulus_seconds()
        self._seconds.update({g["stimulus"]: float(g.get("seconds", 0)) for g in self.qc.get("gold", [])})
        if self.qc.get("trap"):
            self._seconds[self.qc["trap"]["stimulus"]] = float(self.qc["trap"].get("seconds", 0))

    @contextmanager
    def connect(self):
        """A connection; an SQLite error of the file becomes one line naming it (:func:`database_error`)."""
        try:
            con = sqlite3.connect(self.path, timeout=self.wait, isolation_level=None)
        except sqlite3.Error as exc:
            raise database_error(self.path, exc) from None
        try:
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA foreign_keys=ON")
            yield con
        except sqlite3.Error as exc:
            raise database_error(self.path, exc) from None
        finally:
            con.close()

    def init(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(SCHEMA)
            con.execute("INSERT OR IGNORE INTO meta VALUES ('test', ?)", (self.spec.name,))

    # --- raters ---------------------------------------------------------------------------
    def raters(self) -> list[Rater]:
        with self.connect() as con:
            rows = con.execute("SELECT rater, idx, token, source, started FROM raters ORDER BY idx").fetchall()
        return [Rater(*r) for r in rows]

    def add_rater(self, source: str = "web", label: str | None = None) -> tuple[str, str]:
        """Register a rater with a fresh token and a plan; returns ``(rater, token)``."""
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                idx = con.execute("SELECT COALESCE(MAX(idx), -1) + 1 FROM raters").fetchone()[0]
                rater, token = f"r{idx + 1:02d}", secrets.token_urlsafe(18)
                con.execute("INSERT INTO raters (rater, idx, token, source, label, created) VALUES (?, ?, ?, ?, ?, ?)",
                            (rater, idx, token, source, label, _now()))
                if source == "web":
                    coverage = dict(con.execute(
                        "SELECT item, COUNT(DISTINCT rater) FROM plan WHERE repeat_of IS NULL GROUP BY item").fetchall())
                    rows = [(rater, pos, s, it, rep) for pos, (s, it, rep) in enumerate(self.build_plan(idx, coverage))]
                    con.executemany("INSERT INTO plan VALUES (?, ?, ?, ?, ?)", rows)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return rater, token

    def build_plan(self, idx: int, coverage: dict[str, int]) -> list[tuple[str, str, int | None]]:
        """The screens ``(stimulus, item, repeat_of)`` of rater number ``idx`` (see the docstring)."""
        d = self.spec.data
        rng = np.random.default_rng([int(d["seed"]), idx])
        items = self.spec.items
        tie = rng.random(len(items))
        order = sorted(range(len(items)), key=lambda i: (coverage.get(items[i]["item"], 0), tie[i]))
        chosen = sorted(order[:min(int(d["items_per_rater"]), len(items))])
        screens = [(sid, items[i]["item"]) for i in chosen for sid in items[i]["stimuli"].values()]
        screens = [screens[p] for p in rng.permutation(len(screens))]
        seq: list[tuple[int, bool]] = [(k, False) for k in range(len(screens))]  # (screen key, is repeat)
        n_rep = min(int(d.get("repeats", 0)), len(screens))
        for key in sorted(int(k) for k in rng.choice(len(screens), n_rep, replace=False)):
            cur = seq.index((key, False))
            lo = min(cur + 4, len(seq))
            seq.insert(int(rng.integers(lo, len(seq) + 1)), (key, True))
        where = {key: pos for pos, (key, rep) in enumerate(seq) if not rep}
        plan = [(screens[key][0], screens[key][1], where[key] if rep else None) for key, rep in seq]
        for q in self._qc_screens.values():  # gold and trap screens, never among the first two
            at = int(rng.integers(min(2, len(plan)), len(plan) + 1))
            plan.insert(at, (q["stimulus"], "qc", None))
            plan = [(sid, it, None if rep is None else rep + (rep >= at)) for sid, it, rep in plan]
        return plan

    def rater_of(self, token: str) -> Rater:
        if not isinstance(token, str) or not (8 <= len(token) <= 64):
            raise Refused(404, "unknown link: ask the organiser for yours")
        with self.connect() as con:
            row = con.execute("SELECT rater, idx, token, source, started FROM raters WHERE token = ? AND source = 'web'",
                              (token,)).fetchone()
        if row is None:
            raise Refused(404, "unknown link: ask the organiser for yours")
        return Rater(*row)

    # --- a rater's session -------------------------------------------------------------------
    def start(self, token: str) -> dict:
        r = self.rater_of(token)
        with self.connect() as con:
            con.execute("UPDATE raters SET started = COALESCE(started, ?) WHERE rater = ?", (_now(), r.rater))
        return self.state(token)

    def state(self, token: str) -> dict:
        """What the rater's page shows: progress, the time left, what is pending before the screens
        (``checks``: the volume/headphone check, ``training``: the training page) and the next
        screen (or ``finished``). The answers of checks and gold items never leave the server."""
        r = self.rater_of(token)
        with self.connect() as con:
            total = con.execute("SELECT COUNT(*) FROM plan WHERE rater = ?", (r.rater,)).fetchone()[0]
            done = con.execute("SELECT COUNT(*) FROM ratings WHERE rater = ?", (r.rater,)).fetchone()[0]
            left = [sid for (sid,) in con.execute(
                "SELECT stimulus FROM plan WHERE rater = ? AND position NOT IN "
                "(SELECT position FROM ratings WHERE rater = ?) ORDER BY position", (r.rater, r.rater))]
            nxt = con.execute(
                "SELECT position, stimulus, item FROM plan WHERE rater = ? AND position NOT IN "
                "(SELECT position FROM ratings WHERE rater = ?) ORDER BY position LIMIT 1", (r.rater, r.rater)).fetchone()
            checks = {k for (k,) in con.execute("SELECT kind FROM checks WHERE rater = ?", (r.rater,))}
        pending = None
        if nxt is not None:
            if self.qc.get("headphones") and "headphones" not in checks:
                pending = "checks"
            elif self.qc.get("training") and "training" not in checks:
                pending = "training"
        seconds = sum(2 * self._seconds.get(sid, 5.0) + 8.0 for sid in left)
        seconds += 90.0 * (pending == "checks") + 60.0 * (pending in ("checks", "training"))
        out = {"rater": r.rater, "started": r.started is not None, "total": total, "done": done,
               "finished": nxt is None, "screen": None, "pending": pending,
               "minutes_left": max(1, round(seconds / 60)) if nxt is not None else 0}
        if pending == "checks":
            hp = self.qc["headphones"]
            out["checks"] = {"calibration": hp["calibration"], "trials": [t["clip"] for t in hp["trials"]]}
        if self.qc.get("training"):
            out["training"] = [{k: ex[k] for k in ("audio", "query", "aspect", "level", "note")}
                               for ex in self.qc["training"]]
        if nxt is not None:
            position, stimulus, item = nxt
            if item == "qc":
                query, ref = self._qc_screens[stimulus]["query"], None
            else:
                query, ref = self._items[item]["query"], self._refs[item]
            out["screen"] = {"position": position, "stimulus": stimulus, "reference": ref, "query": query,
                             "seconds": self._seconds.get(stimulus)}
        return out

    def check(self, token: str, answer: object) -> dict:
        """Record the volume/headphone check ``{kind: "headphones", answers: [1-3, ...]}`` (once; the
        server scores it) or that the training page was seen ``{kind: "training"}``."""
        import json

        r = self.rater_of(token)
        if not isinstance(answer, dict) or answer.get("kind") not in ("headphones", "training"):
            raise Refused(400, "send {kind: headphones, answers: [...]} or {kind: training}")
        kind = answer["kind"]
        if set(answer) - {"kind", "answers"}:
            raise Refused(400, "unexpected field(s)")
        passed = None
        value = "seen"
        if kind == "headphones":
            hp = self.qc.get("headphones")
            if not hp:
                raise Refused(404, "this test has no headphone check")
            got = answer.get("answers")
            if (not isinstance(got, list) or len(got) != len(hp["trials"])
                    or not all(type(a) is int and 1 <= a <= 3 for a in got)):
                raise Refused(400, f"answers must be {len(hp['trials'])} whole numbers from 1 to 3")
            right = sum(a == t["answer"] for a, t in zip(got, hp["trials"]))
            passed = int(right >= int(hp["pass"]))
            value = json.dumps({"answers": got, "right": right})
        elif not self.qc.get("training"):
            raise Refused(404, "this test has no training page")
        with self.connect() as con:
            con.execute("INSERT OR IGNORE INTO checks VALUES (?, ?, ?, ?, ?)", (r.rater, kind, value, passed, _now()))
        return self.state(token)

    def all_checks(self) -> list[dict]:
        """Every rater's recorded checks: ``{rater, kind, value, passed}``."""
        with self.connect() as con:
            if con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'checks'").fetchone() is None:
                return []  # a database from before the checks existed
            rows = con.execute("SELECT rater, kind, value, passed FROM checks ORDER BY rater, kind").fetchall()
        return [{"rater": a, "kind": b, "value": c, "passed": d} for a, b, c, d in rows]

    def audio_file(self, token: str, audio_id: str):
        """The file behind ``audio_id`` when it is in this rater's plan (a stimulus or a reference).
        Records nothing: the server calls :meth:`record_play` once the file was read."""
        r = self.rater_of(token)
        if not isinstance(audio_id, str) or len(audio_id) != 12:
            raise Refused(404, "no such clip")
        if audio_id in self._qc_audio and audio_id not in self._qc_screens:
            return self.spec.audio_path(audio_id)  # check and training clips: every rater's
        with self.connect() as con:
            if audio_id in self._ref_items:
                it = self._ref_items[audio_id]
                ok = con.execute("SELECT 1 FROM plan WHERE rater = ? AND item = ? LIMIT 1",
                                 (r.rater, it["item"])).fetchone()
                path = self.spec.audio_path(it["reference_audio"])
            else:
                ok = con.execute("SELECT 1 FROM plan WHERE rater = ? AND stimulus = ? LIMIT 1",
                                 (r.rater, audio_id)).fetchone()
                path = self.spec.audio_path(audio_id)
            if ok is None:
                raise Refused(404, "no such clip")
        return path

    def record_play(self, token: str, audio_id: str) -> None:
        """Record that ``audio_id`` (checked by :meth:`audio_file`) was delivered to the rater."""
        r = self.rater_of(token)
        with self.connect() as con:
            con.execute("INSERT OR IGNORE INTO plays VALUES (?, ?, ?)", (r.rater, audio_id, _now()))

    def rate(self, token: str, answer: object) -> dict:
        """Store one answer ``{position, stimulus, rel, ovl[, listened_ms]}`` (see the docstring)."""
        r = self.rater_of(token)
        if not isinstance(answer, dict):
            raise Refused(400, "the answer must be a JSON object")
        unknown = set(answer) - {"position", "stimulus", "rel", "ovl", "listened_ms"}
        if unknown:
            raise Refused(400, f"unexpected field(s): {', '.join(sorted(map(str, unknown)))[:100]}")

        def integer(name, lo, hi, required=True):
            value = answer.get(name)
            if value is None and not required:
                return None
            if type(value) is not int or not (lo <= value <= hi):
                raise Refused(400, f"{name} must be a whole number from {lo} to {hi}")
            return value

        position = integer("position", 0, 1_000_000)
        rel, ovl = integer("rel", 1, 5), integer("ovl", 1, 5)
        listened = integer("listened_ms", 0, MAX_LISTENED_MS, required=False)
        stimulus = answer.get("stimulus")
        if not isinstance(stimulus, str):
            raise Refused(400, "stimulus must be a text")
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                row = con.execute("SELECT stimulus, repeat_of FROM plan WHERE rater = ? AND position = ?",
                                  (r.rater, position)).fetchone()
                if row is None or row[0] != stimulus:
                    raise Refused(409, "this screen is not in your session; reload the page")
                nxt = con.execute(
                    "SELECT MIN(position) FROM plan WHERE rater = ? AND position NOT IN "
                    "(SELECT position FROM ratings WHERE rater = ?)", (r.rater, r.rater)).fetchone()[0]
                if nxt != position:
                    raise Refused(409, "this screen is already answered or not yet due; reload the page")
                for kind in ("headphones", "training"):
                    if self.qc.get(kind) and con.execute("SELECT 1 FROM checks WHERE rater = ? AND kind = ?",
                                                         (r.rater, kind)).fetchone() is None:
                        raise Refused(409, "finish the check and training pages first; reload the page")
                played = con.execute("SELECT 1 FROM plays WHERE rater = ? AND stimulus = ?",
                                     (r.rater, stimulus)).fetchone()
                if played is None:
                    raise Refused(409, "play the clip before rating it")
                con.execute("INSERT INTO ratings VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (r.rater, position, stimulus, rel, ovl, int(row[1] is not None), listened, _now()))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return self.state(token)

    # --- reading everything (results) ------------------------------------------------------------
    def all_ratings(self) -> list[dict]:
        """Every answer with its rater, position, stimulus, repeat flag and time."""
        with self.connect() as con:
            con.row_factory = sqlite3.Row
            rows = con.execute(
                "SELECT ratings.*, raters.source FROM ratings JOIN raters USING (rater) "
                "ORDER BY raters.idx, ratings.position").fetchall()
        return [dict(r) for r in rows]

    def progress(self) -> list[dict]:
        """Per rater: source, screens planned and answered."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT r.rater, r.source, r.token, (SELECT COUNT(*) FROM plan p WHERE p.rater = r.rater), "
                "(SELECT COUNT(*) FROM ratings x WHERE x.rater = r.rater), r.label FROM raters r ORDER BY r.idx").fetchall()
        return [{"rater": a, "source": b, "token": c, "planned": d, "answered": e, "label": f or ""}
                for a, b, c, d, e, f in rows]

    def import_ratings(self, label: str, answers: list[tuple]) -> str:
        """Add an imported rater (``source='webmushra'``) with answers ``(stimulus, rel, ovl[, ms])`` in
        order (``ms``: time on the page, stored as ``listened_ms``); a stimulus answered a second time
        counts as a repeat. Returns the rater id."""
        for stimulus, rel, ovl, *_ in answers:
            if (stimulus not in self._stimuli and stimulus not in self._qc_screens) or not (1 <= rel <= 5 and 1 <= ovl <= 5):
                raise ValueError(f"bad imported answer {stimulus!r} {rel} {ovl}")
        rater, _ = self.add_rater(source="webmushra", label=label)
        seen: set[str] = set()
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            for pos, (stimulus, rel, ovl, *ms) in enumerate(answers):
                listened = ms[0] if ms and ms[0] is not None else None
                con.execute("INSERT INTO ratings VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (rater, pos, stimulus, rel, ovl, int(stimulus in seen), listened, _now()))
                seen.add(stimulus)
            con.execute("COMMIT")
        return rater

    def imported_labels(self) -> set[str]:
        with self.connect() as con:
            return {r[0] for r in con.execute("SELECT label FROM raters WHERE source = 'webmushra'")}

