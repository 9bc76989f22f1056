"""``lasskit listen``: layout, loudness, the rating server's defences, aggregation, webMUSHRA."""

from __future__ import annotations

import csv
import http.client as httplib
import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from lasskit import audio, soundgen
from lasskit.listening import ANCHOR, ListenSpec, create_test, load_test
from lasskit.listening.loudness import (
    integrated_loudness,
    k_weighting_biquads,
    match_loudness,
)
from lasskit.listening.results import QCRule, compute_results, write_results
from lasskit.listening.store import Store
from lasskit.workspace import Workspace

CLASSES = ("bird", "alarm", "knock", "hum", "chirp", "tone")
NO_QC = {"gold": 0, "trap": False, "headphone_check": False, "training": None}


def make_workspace(root: Path, n_items: int = 4, duration: float = 0.5, models=("good", "bad"),
                   names=None) -> Workspace:
    """A workspace with split ``eval_real`` and outputs of ``models``: two queries per recording, the
    two rows of a recording with the same mixture audio under their own names (``names(i)``, default
    ``rec<recording>_<query>.wav``)."""
    split = root / "data" / "splits" / "eval_real"
    rows = []
    for i in range(n_items):
        name = names(i) if names else f"rec{i // 2}_{i % 2}.wav"
        r = i // 2
        srcs = [soundgen.generate(CLASSES[j % len(CLASSES)], duration, seed=j) for j in (2 * r, 2 * r + 1)]
        src = srcs[i % 2]
        noise = soundgen.generate("rain", duration, seed=100 + r)
        audio.write(split / "mixture" / name, 0.5 * (srcs[0] + srcs[1] + noise))
        for k, m in enumerate(models):
            audio.write(root / "exp" / m / "eval_real" / name, src + (0.05 + 0.4 * k) * noise, subtype="float")
        rows.append({"mixture": name, "query": f"{CLASSES[i % len(CLASSES)]} <b>{i}</b>"})
    with open(split / "mixtures.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["mixture", "query"])
        w.writeheader()
        w.writerows(rows)
    return Workspace.open(root)


@contextmanager
def running_server(spec):
    """The rating server on 127.0.0.1 and an ephemeral port, in a thread; yields the port."""
    from lasskit.listening.app import bind, make_server

    sock = bind("127.0.0.1", 0)
    server = make_server(spec, sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def http(port, method, path, body=None, headers=None, raw: bytes | None = None):
    """One bounded request: (status, parsed JSON or bytes)."""
    con = httplib.HTTPConnection("127.0.0.1", port, timeout=10)
    hdrs = dict(headers or {})
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    con.request(method, path, body=data, headers=hdrs)
    resp = con.getresponse()
    payload = resp.read()
    con.close()
    if resp.getheader("content-type", "").startswith("application/json"):
        return resp.status, json.loads(payload)
    return resp.status, payload


# --- loudness ------------------------------------------------------------------------------

def test_k_weighting_matches_bs1770_at_48k_and_sine_reads_minus_3():
    (b1, a1), (_, a2) = k_weighting_biquads(48000)
    assert np.allclose(b1, [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-8)
    assert np.allclose(a1, [1.0, -1.69065929318241, 0.73248077421585], atol=1e-8)
    assert np.allclose(a2, [1.0, -1.99004745483398, 0.99007225036621], atol=1e-8)
    for rate, tol in ((48000, 0.02), (16000, 0.1)):
        t = np.arange(5 * rate) / rate
        sine = np.sin(2 * np.pi * 997 * t)
        assert integrated_loudness(sine, rate) == pytest.approx(-3.01, abs=tol)
        assert integrated_loudness(0.1 * sine, rate) == pytest.approx(-23.01, abs=tol)


def test_match_loudness_hits_target_limits_peaks_and_keeps_silence():
    x = soundgen.generate("hum", 2.0, seed=1) * 0.05
    y, m = match_loudness(x, 16000, -23.0)
    assert integrated_loudness(y, 16000) == pytest.approx(-23.0, abs=0.01) and m.shortfall == 0
    clicks = np.zeros(32000, np.float32)
    clicks[::8000] = 0.5  # very peaky: the gain is limited by the peak, not the target
    y, m = match_loudness(clicks, 16000, -10.0)
    assert np.max(np.abs(y)) <= 10 ** (-0.1 / 20) + 1e-6 and m.shortfall > 0
    y, m = match_loudness(np.zeros(1000), 16000)
    assert m.silent and m.gain_db == 0 and not y.any()


# --- layout -------------------------------------------------------------------------------

def test_create_is_deterministic_hides_names_and_stratifies(tmp_path):
    trees = []
    for k in (1, 2):
        ws = make_workspace(tmp_path / f"ws{k}", n_items=6)
        r = create_test(ws, "eval_real", ["good", "bad"], "t", items=3, raters=2, raters_per_item=1, seed=5)
        assert r.items == 3 and r.stimuli == 9 and len(r.links) == 2
        trees.append({p.relative_to(r.root).as_posix(): p.read_bytes() for p in sorted(r.root.rglob("*"))
                      if p.is_file() and "ratings.sqlite" not in p.name})
    assert trees[0] == trees[1]  # same seed, byte-identical test
    files = trees[0]
    data = json.loads(files["test.json"])
    # one item per recording (3 recordings of 2 queries each)
    assert sorted(it["mixture"].split("_")[0] for it in data["items"]) == ["rec0", "rec1", "rec2"]
    for name in files:
        assert "good" not in name and "bad" not in name and "mixture" not in name
    for it in data["items"]:
        assert set(it["stimuli"]) == {"good", "bad", ANCHOR}
        for sid in [*it["stimuli"].values(), it["reference_audio"]]:
            x, rate = audio.read(tmp_path / "ws1" / "listen" / "t" / "audio" / f"{sid}.wav")
            assert rate == 16000 and integrated_loudness(x, rate) == pytest.approx(-23, abs=0.05)


def test_plans_cover_items_evenly_with_hidden_repeats(tmp_path):
    ws = make_workspace(tmp_path, n_items=4)
    create_test(ws, "eval_real", ["good"], "t", raters=4, raters_per_item=2, repeats=2, **NO_QC)
    spec = load_test(ws.root / "listen" / "t")
    assert spec.data["items_per_rater"] == 2
    store = Store(spec)
    plans = {}
    import sqlite3

    con = sqlite3.connect(spec.db_path)
    for rater, pos, sid, item, rep in con.execute("SELECT * FROM plan ORDER BY rater, position"):
        plans.setdefault(rater, []).append((sid, item, rep))
    assert len(plans) == 4
    coverage = {}
    for rater, plan in plans.items():
        assert len(plan) == 2 * 2 + 2  # 2 items x (good + anchor) + 2 repeats
        for pos, (sid, item, rep) in enumerate(plan):
            if rep is not None:
                assert plan[rep][0] == sid and pos - rep >= 2 and plan[rep][2] is None
        for item in {item for _, item, rep in plan if rep is None}:
            coverage[item] = coverage.get(item, 0) + 1
    assert coverage == {it["item"]: 2 for it in spec.items}
    assert len({tuple(p) for p in plans.values()}) == 4  # every rater has their own order
    assert store.state(store.raters()[0].token)["total"] == 6


# --- the server's defences -----------------------------------------------------------------

def test_hostile_requests_are_refused_and_store_nothing(tmp_path):
    ws = make_workspace(tmp_path, n_items=2)
    r = create_test(ws, "eval_real", ["good"], "t", raters=2, raters_per_item=1, repeats=0, **NO_QC)
    spec = load_test(r.root)
    (_, mine), (_, theirs) = r.links
    store = Store(spec)

    def count():
        with store.connect() as con:
            return con.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]

    with running_server(spec) as port:
        status, state = http(port, "GET", f"/api/{mine}/state")
        assert status == 200 and state["done"] == 0 and not state["started"]
        screen = state["screen"]
        their_screen = http(port, "GET", f"/api/{theirs}/state")[1]["screen"]
        good = {"position": screen["position"], "stimulus": screen["stimulus"], "rel": 4, "ovl": 3}
        # rating before playing the clip
        assert http(port, "POST", f"/api/{mine}/rate", good)[0] == 409
        # another rater's clip, a forged id, an unknown token
        assert http(port, "GET", f"/api/{mine}/audio/{their_screen['stimulus']}.wav")[0] == 404
        assert http(port, "GET", f"/api/{mine}/audio/0123456789ab.wav")[0] == 404
        assert http(port, "GET", f"/api/{'x' * 24}/audio/{screen['stimulus']}.wav")[0] == 404
        assert http(port, "GET", f"/r/{'x' * 24}")[0] == 404
        status, wav = http(port, "GET", f"/api/{mine}/audio/{screen['stimulus']}.wav")
        assert status == 200 and wav[:4] == b"RIFF"
        assert http(port, "GET", f"/api/{mine}/audio/{screen['reference']}.wav")[0] == 200
        hostile = [
            (f"/api/{theirs}/rate", good),                           # my screen with their token
            (f"/api/{'y' * 24}/rate", good),                         # unknown token
            (f"/api/{mine}/rate", {**good, "stimulus": "0123456789ab"}),   # forged stimulus
            (f"/api/{mine}/rate", {**good, "stimulus": their_screen["stimulus"]}),
            (f"/api/{mine}/rate", {**good, "position": screen["position"] + 1}),  # not the next screen
            (f"/api/{mine}/rate", {**good, "position": -1}),
            (f"/api/{mine}/rate", {**good, "rel": 6}),
            (f"/api/{mine}/rate", {**good, "ovl": 0}),
            (f"/api/{mine}/rate", {**good, "rel": 3.5}),
            (f"/api/{mine}/rate", {**good, "rel": True}),
            (f"/api/{mine}/rate", {**good, "rel": "4"}),
            (f"/api/{mine}/rate", {**good, "extra": 1}),
            (f"/api/{mine}/rate", [good]),
            (f"/api/{mine}/rate", {**good, "listened_ms": -5}),
        ]
        for path, body in hostile:
            status, payload = http(port, "POST", path, body)
            assert status in (400, 404, 409), (path, body, status)
            assert "error" in payload
        # bodies: huge (declared and streamed), not JSON, wrong type
        big = json.dumps({**good, "pad": "x" * 100_000}).encode()
        assert http(port, "POST", f"/api/{mine}/rate", raw=big, headers={"Content-Type": "application/json"})[0] == 413
        con = http_client_chunked(port, f"/api/{mine}/rate", big)
        assert con == 413
        assert http(port, "POST", f"/api/{mine}/rate", raw=b"{not json", headers={"Content-Type": "application/json"})[0] == 400
        assert http(port, "POST", f"/api/{mine}/rate", raw=json.dumps(good).encode(),
                    headers={"Content-Type": "text/plain"})[0] == 415
        assert count() == 0
        # the genuine answer is stored once; a replay is refused
        status, after = http(port, "POST", f"/api/{mine}/rate", good)
        assert status == 200 and after["done"] == 1
        assert http(port, "POST", f"/api/{mine}/rate", good)[0] == 409
        assert count() == 1
        status, page = http(port, "GET", f"/r/{mine}")
        assert status == 200 and b"/static/app.js" in page
        assert http(port, "GET", "/static/app.js")[0] == 200
    rows = store.all_ratings()
    assert [(x["rater"], x["rel"], x["ovl"]) for x in rows] == [("r01", 4, 3)]


def http_client_chunked(port: int, path: str, body: bytes) -> int:
    """POST ``body`` in chunks without a Content-Length; returns the status."""
    con = httplib.HTTPConnection("127.0.0.1", port, timeout=10)
    con.request("POST", path, body=iter([body[i:i + 4096] for i in range(0, len(body), 4096)]),
                headers={"Content-Type": "application/json"}, encode_chunked=True)
    status = con.getresponse().status
    con.close()
    return status


# --- aggregation -------------------------------------------------------------------------------

TRUE = {"A": (4.2, 3.8), "B": (3.1, 3.3), "C": (2.2, 2.6), ANCHOR: (1.4, 2.2)}


def simulated_panel(n_items=24, n_raters=7, careless="r07", seed=3):
    """A test spec (in memory) and answers: known system means, item and rater effects, noise;
    ``careless`` answers at random. Every rater rates everything and repeats 4 stimuli."""
    items = [{"item": f"i{k:03d}", "mixture": f"m{k}.wav", "query": f"q{k}", "reference": f"{k:012x}",
              "reference_audio": f"{k:012x}", "stimuli": {s: f"{k:08x}{j:04x}" for j, s in enumerate(TRUE)}}
             for k in range(n_items)]
    spec = ListenSpec(Path("."), {"name": "sim", "split": "eval_real", "systems": ["A", "B", "C"], "anchor": True,
                                "seed": 0, "items": items, "scales": {}})
    rng = np.random.default_rng(seed)
    item_fx = rng.normal(0, 0.3, n_items)
    raw = []
    for r in range(n_raters):
        rater = f"r{r + 1:02d}"
        bias = rng.normal(0, 0.2)

        def answer(k, system, rater=rater, bias=bias):
            if rater == careless:
                return int(rng.integers(1, 6)), int(rng.integers(1, 6))
            rel, ovl = TRUE[system]
            noise = rng.normal(0, 0.5, 2)
            return tuple(int(np.clip(np.rint(m + item_fx[k] + bias + e), 1, 5)) for m, e in zip((rel, ovl), noise))

        screens = [(k, s) for k in range(n_items) for s in TRUE]
        order = rng.permutation(len(screens))
        for pos, i in enumerate(order):
            k, s = screens[i]
            rel, ovl = answer(k, s)
            raw.append({"rater": rater, "position": pos, "stimulus": items[k]["stimuli"][s], "rel": rel, "ovl": ovl,
                        "repeat": 0, "listened_ms": 4000})
        for j, i in enumerate(order[:4]):
            k, s = screens[i]
            rel, ovl = answer(k, s)
            raw.append({"rater": rater, "position": len(order) + j, "stimulus": items[k]["stimuli"][s],
                        "rel": rel, "ovl": ovl, "repeat": 1, "listened_ms": 4000})
    return spec, raw


def test_simulated_panel_flags_the_careless_rater_and_ranks_correctly(tmp_path):
    spec, raw = simulated_panel()
    res = compute_results(spec, raw, seed=0, resamples=500)
    assert res.flagged == ["r07"]
    careless = next(r for r in res.raters if r["rater"] == "r07")
    assert careless["agreement"] < 0.3 and "panel" in careless["reasons"]
    good = [r for r in res.raters if r["rater"] != "r07"]
    assert all(r["agreement"] > 0.6 and r["repeat_diff"] <= 1.25 and r["anchor_gap"] > 1.5 for r in good)
    kept = {s["system"]: s for s in res.systems_kept}
    everyone = {s["system"]: s for s in res.systems_all}
    for system, (rel, ovl) in TRUE.items():
        s = kept[system]
        assert s["ratings"] == 24 * 6
        assert s["rel"] == pytest.approx(rel, abs=0.35) and s["ovl"] == pytest.approx(ovl, abs=0.35)
        assert s["score"] == pytest.approx((s["rel"] + s["ovl"]) / 2)
        lo, hi = s["score_ci95"]
        assert lo < s["score"] < hi and hi - lo < 1.0
    # the careless rater pulls the best system towards the middle of the scale
    assert abs(kept["A"]["rel"] - TRUE["A"][0]) < abs(everyone["A"]["rel"] - TRUE["A"][0])
    assert res.ranking_kept["order"] == ["A", "B", "C"] and res.ranking_kept["holds"] > 0.95
    assert res.ranking_kept["first"]["A"] > 0.95 and kept[ANCHOR].get("rank") is None
    assert [p["share"] > 0.95 for p in res.ranking_kept["pairs"]] == [True, True]
    # same seed, same intervals
    again = compute_results(spec, raw, seed=0, resamples=500)
    assert again.systems_kept == res.systems_kept
    assert not res.clap["available"]
    files = write_results(res, tmp_path / "results", plots=True)
    names = sorted(p.name for p in files)
    assert names == ["raters.csv", "ratings.csv", "rel_vs_ovl.png", "summary.json", "systems.csv", "systems.png"]
    with open(tmp_path / "results" / "ratings.csv") as f:
        assert sum(1 for _ in f) == len(raw) + 1
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert summary["flagged"] == ["r07"] and "correlation" in summary["rule_text"]


def test_anchor_rule_flags_a_rater_who_hears_no_difference():
    spec, raw = simulated_panel(careless="none")
    for r in raw:  # r03 rates the mixture like the best system
        if r["rater"] == "r03" and r["stimulus"].endswith("0003"):
            r["rel"] = 5
    res = compute_results(spec, raw, resamples=100)
    assert "r03" in res.flagged
    assert "mixture rated as relevant" in next(r for r in res.raters if r["rater"] == "r03")["reasons"]
    res = compute_results(spec, raw, resamples=100, rule=QCRule(min_panel_gap=9))
    assert "r03" not in res.flagged


def test_clap_columns_are_compared_with_rel(tmp_path):
    spec, raw = simulated_panel(n_items=10, n_raters=4, careless="none")
    for system in ("A", "B", "C"):
        out = tmp_path / "exp" / system / "eval_real"
        out.mkdir(parents=True)
        rows = [f"m{k}.wav,q{k},{TRUE[system][0] / 10 + 0.01 * k:.4f},0.1" for k in range(10)]
        (out / "scores.csv").write_text("mixture,query,clap,clap_mixture\n" + "\n".join(rows) + "\n")
    res = compute_results(spec, raw, workspace_root=tmp_path, resamples=50)
    col = res.clap["columns"]["clap"]
    assert res.clap["available"] and "clap_mixture" not in res.clap["columns"]
    assert col["stimuli"] == 30 and col["spearman_stimuli"] > 0.6 and col["spearman_systems"] == pytest.approx(1.0)
    (tmp_path / "exp" / "C" / "eval_real" / "scores.csv").write_text("mixture,query,sdr\nm0.wav,q0,1.0\n")
    res = compute_results(spec, raw, workspace_root=tmp_path, resamples=50)
    assert res.clap["missing"] == ["C"] and res.clap["columns"]["clap"]["stimuli"] == 20


# --- webMUSHRA ---------------------------------------------------------------------------------

def test_webmushra_export_and_import_round_trip(tmp_path):
    import yaml

    from lasskit.listening.webmushra import export_webmushra, import_webmushra

    ws = make_workspace(tmp_path, n_items=2)
    r = create_test(ws, "eval_real", ["good", "bad"], "t", raters=1, repeats=2)
    spec = load_test(r.root)
    files = export_webmushra(spec, tmp_path / "wm")
    text = files[0].read_text()
    assert "good" not in text and "bad" not in text
    assert "come back" not in text and "Space" not in text and "sent only at the end" in text  # true for webMUSHRA
    config = yaml.safe_load(text)
    pages = config["pages"][1]
    # one page per stimulus (2 items x 3 systems) + 2 gold + 1 trap + 2 repeats, all in one random block
    assert pages[0] == "random" and len(pages) == 1 + 6 + 3 + 2
    assert all(len(p["stimuli"]) == 1 for p in pages[1:]) and len({p["id"] for p in pages[1:]}) == 11
    trap = spec.data["qc"]["trap"]
    assert any(p["stimuli"] == {trap["stimulus"]: f"configs/resources/lasskit_t/{trap['stimulus']}.wav"}
               and "<audio" not in p["content"] for p in pages[1:])
    lss = pages[1]
    assert lss["type"] == "likert_single_stimulus" and lss["mustPlayback"] == "ended"
    assert [len(scale) for scale in lss["response"]] == [5, 5] and lss["response"][0][0]["value"] == "1"
    assert lss["response"][0][0]["label"] == "1 Poor: " + spec.data["scales"]["rel"]["help"]["1"]  # descriptions
    for sid, path in lss["stimuli"].items():
        assert (tmp_path / "wm" / path).read_bytes() == spec.audio_path(sid).read_bytes()
    item = next(it for it in spec.items if sid in it["stimuli"].values())
    ref = f"configs/resources/lasskit_t/{item['reference']}.wav"  # the mixture, playable, under its own id
    assert f'src="{ref}"' in lss["content"] and item["reference"] not in item["stimuli"].values()
    assert (tmp_path / "wm" / ref).read_bytes() == spec.audio_path(item["reference_audio"]).read_bytes()
    assert config["pages"][2]["questionnaire"][0]["name"] == "rater"
    # webMUSHRA's lss.csv: session_test_id, questionnaire columns, trial_id, ratings, stimuli, rating_time;
    # two people typed the same name "ann": two sessions, appended one after the other
    header = "session_test_id,rater,trial_id,stimuli_rating1,stimuli_rating2,stimuli,rating_time\n"
    lines = []
    for who, rel in (("ann", 5), ("ann", 1), ("bob", 2)):
        for page in pages[1:]:
            for sid in page["stimuli"]:
                lines.append(f"lasskit_t,{who},{page['id']},{rel},3,{sid},1234")
    lines.append("lasskit_t,bob,sxxx,NA,NA,xxxxxxxxxxxx,10")
    lines.append("lasskit_t,bob,sna,NA,3," + next(iter(lss["stimuli"])) + ",10")
    path = tmp_path / "lss.csv"
    path.write_text(header + "\n".join(lines) + "\n")
    rep = import_webmushra(spec, [path])
    assert len(rep.raters) == 3 and rep.answers == 3 * 11 and rep.skipped_unknown == 1 and rep.skipped_na == 1
    assert rep.duplicates == {"ann": 2}
    rep = import_webmushra(spec, [path])
    assert rep.raters == [] and rep.already == ["ann", "ann (session 2)", "bob"]
    res = compute_results(spec, Store(spec).all_ratings(), resamples=50)
    by_rater = {x["rater"]: x for x in res.raters}
    assert by_rater["r02"]["mean_rel"] == 5 and by_rater["r02"]["repeats"] == 2 and by_rater["r02"]["repeat_diff"] == 0
    assert by_rater["r03"]["mean_rel"] == 1 and by_rater["r03"]["repeats"] == 2 and by_rater["r03"]["repeat_diff"] == 0
    assert by_rater["r04"]["source"] == "webmushra" and by_rater["r04"]["answers"] == 8
    assert by_rater["r02"]["gold_answers"] == 2 and by_rater["r04"]["trap_failed"] == 1  # judged as on the web
    assert res.counts["qc_answers"] == 9 and res.counts["unattributed"] == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("session_test_id,trial_id,stimuli_rating,stimuli,rating_time\n")
    from lasskit.errors import UsageError

    with pytest.raises(UsageError, match="stimuli_rating1"):
        import_webmushra(spec, [bad])


# --- the command line ----------------------------------------------------------------------------

def test_cli_create_raters_results(run_cli, tmp_path):
    ws = make_workspace(tmp_path, n_items=2)
    code, out, err = run_cli("--workspace", ws.root, "listen", "create", "--split", "eval_real",
                             "--models", "good,bad", "--name", "t1", "--raters", "2", "--gold", "0", "--no-trap",
                             "--no-headphone-check", "--training", "none")
    assert code == 0, err
    assert "2 items x 3 systems" in out
    code, out, _ = run_cli("--workspace", ws.root, "listen", "raters", "t1", "--add", "1", "--url", "http://lab:9000")
    assert code == 0 and out.count("http://lab:9000/r/") == 3
    code, _, err = run_cli("--workspace", ws.root, "listen", "results", "t1")
    assert code == 2 and "no answers yet" in err
    spec = load_test(ws.root / "listen" / "t1")
    store = Store(spec)
    for rater in store.raters():
        while True:
            state = store.state(rater.token)
            if state["finished"]:
                break
            sid = state["screen"]["stimulus"]
            store.audio_file(rater.token, sid)
            store.record_play(rater.token, sid)
            system = spec.stimulus_table()[sid]["system"]
            score = {"good": 5, "bad": 3, ANCHOR: 1}[system]
            store.rate(rater.token, {"position": state["screen"]["position"], "stimulus": sid, "rel": score, "ovl": score})
    code, out, err = run_cli("--workspace", ws.root, "listen", "results", "t1", "--resamples", "50", "--no-plots")
    assert code == 0, err
    assert "ranking holds in 100%" in out and "no CLAP columns" in out
    with open(ws.root / "listen" / "t1" / "results" / "systems.csv") as f:
        rows = {(r["raters_used"], r["system"]): r for r in csv.DictReader(f)}
    assert rows[("all", "good")]["rank"] == "1" and float(rows[("all", "good")]["score"]) == 5
    assert rows[("all", ANCHOR)]["anchor"] == "1" and float(rows[("all", ANCHOR)]["rel"]) == 1
    code, out, _ = run_cli("--workspace", ws.root, "listen", "export-webmushra", "t1")
    assert code == 0 and (ws.root / "listen" / "t1" / "webmushra" / "configs" / "lasskit_t1.yaml").is_file()
    lss = tmp_path / "lss.csv"
    sid = spec.items[0]["stimuli"]["good"]
    lss.write_text("session_test_id,rater,trial_id,stimuli_rating1,stimuli_rating2,stimuli,rating_time\n"
                   f"lasskit_t1,ann,s{sid},4,4,{sid},900\nlasskit_t1,ann,s{sid},4,5,{sid},900\n")
    code, out, err = run_cli("--workspace", ws.root, "listen", "import-webmushra", "t1", str(lss))
    assert code == 0 and "imported 2 answers from 2 raters" in out
    assert "2 sessions give the rater name 'ann'" in err
    code, out, _ = run_cli("--workspace", ws.root, "listen", "raters", "t1")
    assert code == 0 and "r04     1 answers  (imported from webmushra: ann)" in out
    # imported raters have no screen count ("1/0") and no link (a link's random token may hold "/0")
    assert not [line for line in out.splitlines() if line.startswith(("r04", "r05")) and "/" in line], out
    code, _, err = run_cli("--workspace", ws.root, "listen", "create", "--split", "eval_real",
                           "--models", "good", "--name", "t1")
    assert code == 2 and "--force" in err
    code, _, err = run_cli("--workspace", ws.root, "listen", "create", "--split", "eval_real",
                           "--models", "good", "--name", "../x")
    assert code == 2 and "--name" in err


# --- issue 23/30: refusals change nothing, one line for broken files, server faults, QC ------------

def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_refused_create_force_keeps_the_old_test_and_a_good_one_replaces_it(tmp_path):
    ws = make_workspace(tmp_path, n_items=2)
    r = create_test(ws, "eval_real", ["good"], "t1", raters=1, repeats=0, **NO_QC)
    before = _tree(tmp_path)
    refusals = [
        dict(models=["good", "nope"]),            # an unknown model
        dict(models=["good"], repeats=-1),        # a bad option
        dict(models=["good"], items=0),
        dict(models=["good"], training=str(tmp_path / "none.csv")),
        dict(models=["good"], target_lufs=float("nan")),
    ]
    from lasskit.errors import UsageError

    for kw in refusals:
        models = kw.pop("models")
        with pytest.raises(UsageError):
            create_test(ws, "eval_real", models, "t1", force=True, **kw)
        assert _tree(tmp_path) == before, kw  # nothing written, nothing removed
    # a refusal on a new name writes nothing either (no playback copies for --repeats -1)
    with pytest.raises(UsageError):
        create_test(ws, "eval_real", ["good"], "t2", repeats=-1)
    assert _tree(tmp_path) == before and not (ws.root / "listen" / "t2").exists()
    # a failure while building (an output that cannot be read) leaves the old test and no leftovers
    out = ws.root / "exp" / "good" / "eval_real" / "rec0_0.wav"
    saved = out.read_bytes()
    out.write_bytes(b"RIFF not audio")
    from lasskit.errors import WorkError

    with pytest.raises(WorkError, match="rec0_0.wav"):
        create_test(ws, "eval_real", ["good"], "t1", force=True, **NO_QC)
    out.write_bytes(saved)
    assert _tree(r.root) == {k[len("listen/t1/"):]: v for k, v in before.items() if k.startswith("listen/t1/")}
    assert sorted(p.name for p in (ws.root / "listen").iterdir()) == ["t1"]
    # --force with good options replaces the test (new raters, no old ratings)
    leftover = ws.root / "listen" / ".t1.new-killed"  # what a create killed with -9 mid-build leaves
    leftover.mkdir()
    (leftover / "test.json").write_text("{}")
    from lasskit.listening import resolve_test

    with pytest.raises(UsageError, match=r"\(known tests: t1\)$"):
        resolve_test("nope", ws)
    r2 = create_test(ws, "eval_real", ["good"], "t1", raters=2, force=True, **NO_QC)
    assert r2.root == r.root and len(Store(load_test(r2.root)).raters()) == 2
    assert sorted(p.name for p in (ws.root / "listen").iterdir()) == ["t1"]


def test_items_sample_by_recording_with_eval_real_names(tmp_path):
    # eval_real gives each (recording, query) row its own name "...-N": the names tell nothing,
    # the two rows of a recording share the mixture file's content
    ws = make_workspace(tmp_path, n_items=8, names=lambda i: f"real-{i + 1}.wav")
    for seed in range(4):
        r = create_test(ws, "eval_real", ["good"], f"t{seed}", items=4, raters=1, seed=seed, **NO_QC)
        mixtures = [it["mixture"] for it in load_test(r.root).items]
        recordings = {(int(m[5:-4]) - 1) // 2 for m in mixtures}
        assert len(recordings) == 4, mixtures  # one row of each of the 4 recordings


def test_damaged_truncated_and_locked_databases_are_one_line(run_cli, tmp_path, monkeypatch):
    import sqlite3
    import subprocess
    import sys

    ws = make_workspace(tmp_path, n_items=2)
    r = create_test(ws, "eval_real", ["good"], "t", raters=1, **NO_QC)
    db = r.root / "ratings.sqlite"
    good = db.read_bytes()
    lss = tmp_path / "lss.csv"
    lss.write_text("session_test_id,rater,trial_id,stimuli_rating1,stimuli_rating2,stimuli,rating_time\n")
    commands = (["listen", "raters", "t"], ["listen", "results", "t"], ["listen", "import-webmushra", "t", str(lss)])
    for damage in (good[:3000], b"not a database at all" * 10):
        db.write_bytes(damage)
        for args in commands:
            code, _, err = run_cli("--workspace", ws.root, *args)
            assert code == 2 and str(db) in err and "damaged" in err and len(err.strip().splitlines()) == 1, err
            assert db.read_bytes() == damage  # the input is left as it was
    db.write_bytes(good)
    monkeypatch.setattr(Store, "wait", 0.3)  # the short wait (3 s) made shorter for the test
    # another process holds a write lock: a short wait, then one line saying so
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
        "c.execute('PRAGMA locking_mode=EXCLUSIVE'); c.execute('BEGIN EXCLUSIVE')\n"
        "c.execute(\"INSERT INTO meta VALUES ('lock', 'held')\")\n"
        "print('locked', flush=True); sys.stdin.read()\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        for args in commands[:2]:
            code, _, err = run_cli("--workspace", ws.root, *args)
            assert code == 1 and str(db) in err and "another process holds a lock" in err, err
    finally:
        holder.stdin.close()
        holder.wait(10)
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM raters").fetchone()[0] == 1


def test_server_faults_are_4xx_with_one_log_line_and_record_no_play(tmp_path, capfd):
    ws = make_workspace(tmp_path, n_items=2)
    r = create_test(ws, "eval_real", ["good"], "t", raters=1, repeats=0, **NO_QC)
    spec = load_test(r.root)
    token = r.links[0][1]
    store = Store(spec)
    capfd.readouterr()
    with running_server(spec) as port:
        screen = http(port, "GET", f"/api/{token}/state")[1]["screen"]
        arrays = b"[" * 2040 + b"]" * 2040  # nested deeper than the JSON parser goes, within the size limit
        objects = b'{"a":[' * 500 + b"]}" * 500
        for body in (arrays, objects):
            status, payload = http(port, "POST", f"/api/{token}/rate", raw=body,
                                   headers={"Content-Type": "application/json"})
            assert status == 400 and "error" in payload
        # a playback copy that cannot be opened: 404, one log line, no play recorded, rating refused
        path = spec.audio_path(screen["stimulus"])
        path.rename(path.with_suffix(".away"))
        status, payload = http(port, "GET", f"/api/{token}/audio/{screen['stimulus']}.wav")
        assert status == 404 and "could not be loaded" in payload["error"]
        good = {"position": screen["position"], "stimulus": screen["stimulus"], "rel": 4, "ovl": 4}
        assert http(port, "POST", f"/api/{token}/rate", good)[0] == 409
        path.with_suffix(".away").rename(path)
        assert http(port, "GET", f"/api/{token}/audio/{screen['stimulus']}.wav")[0] == 200
        assert http(port, "POST", f"/api/{token}/rate", good)[0] == 200
    lines = [x for x in capfd.readouterr().err.splitlines() if x.strip()]  # the server's log
    assert len(lines) == 1 and str(path) in lines[0] and token not in lines[0], lines
    with store.connect() as con:
        assert con.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 1


def test_checks_gold_trap_and_fast_answers_flag_raters(tmp_path):
    ws = make_workspace(tmp_path, n_items=4)
    r = create_test(ws, "eval_real", ["good", "bad"], "t", raters=3, raters_per_item=3, repeats=0, gold=2)
    spec = load_test(r.root)
    qc = spec.data["qc"]
    assert len(qc["gold"]) == 2 and qc["trap"]["answer"] in (2, 3, 4) and len(qc["training"]) == 3
    store = Store(spec)
    plans = {}
    with store.connect() as con:
        for rater, in con.execute("SELECT rater FROM raters"):
            plans[rater] = [s for (s,) in con.execute("SELECT stimulus FROM plan WHERE rater = ? ORDER BY position",
                                                     (rater,))]
    for plan in plans.values():  # every plan holds the gold and trap screens, never first
        assert {g["stimulus"] for g in qc["gold"]} | {qc["trap"]["stimulus"]} <= set(plan[2:])
    tokens = dict(r.links)
    behaviour = {"r01": "careful", "r02": "careless", "r03": "hasty"}
    seconds = {sid: it["seconds"] for it in spec.items for sid in it["stimuli"].values()}
    for rater, token in tokens.items():
        kind = behaviour[rater]
        st = store.start(token)
        assert st["pending"] == "checks" and "answer" not in json.dumps(st["checks"])  # answers stay on the server
        right = [t["answer"] for t in qc["headphones"]["trials"]]
        got = right if kind != "careless" else [a % 3 + 1 for a in right]
        with pytest.raises(Exception):
            store.rate(token, {"position": 0, "stimulus": st["screen"]["stimulus"], "rel": 3, "ovl": 3})
        st = store.check(token, {"kind": "headphones", "answers": got})
        assert st["pending"] == "training"
        st = store.check(token, {"kind": "training"})
        assert st["pending"] is None and st["minutes_left"] >= 1
        while not st["finished"]:
            sid = st["screen"]["stimulus"]
            store.audio_file(token, sid)
            store.record_play(token, sid)
            gold = next((g for g in qc["gold"] if g["stimulus"] == sid), None)
            if gold:
                rel = gold["rel"][0] if kind != "careless" else (1 if gold["rel"][0] >= 4 else 5)
                ovl = 3
            elif sid == qc["trap"]["stimulus"]:
                rel = ovl = qc["trap"]["answer"] if kind != "careless" else 1
            else:
                rel = ovl = 4 if spec.stimulus_table()[sid]["system"] == "good" else 2
            ms = int(1000 * seconds.get(sid, 3)) + 100 if kind != "hasty" else 50
            st = store.rate(token, {"position": st["screen"]["position"], "stimulus": sid, "rel": rel, "ovl": ovl,
                                    "listened_ms": ms})
    from lasskit.listening.results import RULES, QCRule, results_for_test

    res = results_for_test(r.root, resamples=20, plots=False)
    by = {x["rater"]: x for x in res.raters}
    assert by["r01"]["rules"] == "" and by["r01"]["headphones"] == "passed"
    assert by["r02"]["rules"].split(",") == ["gold", "trap", "headphones"]
    assert by["r02"]["gold_failed"] == 2 and by["r02"]["trap_failed"] == 1
    assert by["r03"]["rules"] == "fast" and by["r03"]["fast"] == by["r03"]["timed"] == 12
    assert res.by_rule["fast"] == ["r03"] and res.by_rule["gold"] == ["r02"] and res.flagged == ["r02", "r03"]
    assert res.counts["qc_answers"] == 9 and res.counts["unattributed"] == 0 and res.counts["answers"] == 36
    assert {x["item"]: x["fast"] for x in res.fast_by_item} == {it["item"]: 3 for it in spec.items}
    # only the rules named exclude
    res = results_for_test(r.root, resamples=20, plots=False, rule=QCRule(exclude=("gold",)))
    assert res.flagged == ["r02"] and res.counts["flagged_any"] == 2
    res = results_for_test(r.root, resamples=20, plots=False, rule=QCRule(exclude=()))
    assert res.flagged == [] and res.systems_all == res.systems_kept
    assert set(RULES) >= {"gold", "trap", "headphones", "fast"}
    with pytest.raises(Exception):
        store.check(tokens["r01"], {"kind": "headphones", "answers": [7, 1, 1]})


def test_export_webmushra_on_a_full_disk_leaves_no_truncated_wav(tmp_path, monkeypatch):
    import errno
    import shutil

    from lasskit.errors import WorkError
    from lasskit.listening import webmushra

    ws = make_workspace(tmp_path, n_items=2)
    spec = load_test(create_test(ws, "eval_real", ["good"], "t", raters=1, **NO_QC).root)
    real = shutil.copyfile
    calls = []

    def full_disk(src, dst):
        calls.append(dst)
        if len(calls) == 3:  # the third copy: half written, then the disk is full
            Path(dst).write_bytes(Path(src).read_bytes()[:100])
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real(src, dst)

    monkeypatch.setattr(webmushra.shutil, "copyfile", full_disk)
    with pytest.raises(WorkError, match="no space left"):
        webmushra.export_webmushra(spec, tmp_path / "wm")
    written = sorted((tmp_path / "wm").rglob("*"))
    wavs = [p for p in written if p.is_file()]
    assert len(wavs) == 2 and all(p.read_bytes() == spec.audio_path(p.stem).read_bytes() for p in wavs)
    assert not any(".tmp" in p.name for p in written)  # no half file under any name


def test_training_examples_from_a_team_csv(tmp_path):
    from lasskit.errors import UsageError

    ws = make_workspace(tmp_path, n_items=2)
    ex = tmp_path / "ex"
    audio.write(ex / "clean.wav", soundgen.generate("bird", 0.5, seed=1))
    good = "audio,query,aspect,level,note\nclean.wav,a bird singing,both,5,The sound alone\n"
    (ex / "t.csv").write_text(good)
    r = create_test(ws, "eval_real", ["good"], "t", raters=1, gold=0, trap=False, training=ex / "t.csv")
    (t,) = load_test(r.root).data["qc"]["training"]
    assert (t["query"], t["aspect"], t["level"], t["note"]) == ("a bird singing", "both", "5", "The sound alone")
    x, _ = audio.read(r.root / "audio" / f"{t['audio']}.wav")
    assert integrated_loudness(x, 16000) == pytest.approx(-23, abs=0.1)
    for bad, words in ((good.replace("both", "tone"), "aspect"), (good.replace(",5,", ",9,"), "level"),
                       (good.replace("clean.wav", "gone.wav"), "gone.wav"), ("a,b\n1,2\n", "columns")):
        (ex / "t.csv").write_text(bad)
        with pytest.raises(UsageError, match=words):
            create_test(ws, "eval_real", ["good"], "t2", raters=1, training=ex / "t.csv")
        assert not (ws.root / "listen" / "t2").exists()


def test_proposed_training_uses_a_split_with_references(tmp_path):
    from lasskit.listening.qc import propose_training
    from lasskit.splits import read_split

    ws = make_workspace(tmp_path, n_items=2)
    split = tmp_path / "data" / "splits" / "val_synth"
    rows = []
    for k, (cls, label) in enumerate([("bird", "Bird"), ("bird", "Bird"), ("knock", "Knock")]):
        audio.write(split / "source" / f"s{k}.wav", soundgen.generate(cls, 0.3, seed=k))
        audio.write(split / "mixture" / f"m{k}.wav", soundgen.generate(cls, 0.3, seed=k) + 0.1)
        rows.append({"mixture": f"m{k}.wav", "query": f"{cls} sound", "source": f"source/s{k}.wav",
                     "source_labels": json.dumps([label])})
    with open(split / "mixtures.csv", "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    sp = read_split(tmp_path / "data" / "splits" / "eval_real")
    for seed in range(6):
        high, low_ovl, low_rel = propose_training(ws, [], sp, seed)
        assert (high["aspect"], high["level"], low_ovl["aspect"], low_rel["aspect"]) == ("both", "5", "ovl", "rel")
        assert high["source"].parent.name == "source" and low_ovl["source"].parent.name == "mixture"
        assert high["query"] == low_rel["query"]
        # the low relevance anchor is always a sound with other labels than the description's
        kinds = {high["query"].split()[0], "knock" if "s2" in low_rel["source"].name else "bird"}
        assert len(kinds) == 2, (high, low_rel)


def test_each_stimulus_is_timed_by_its_own_length(tmp_path):
    """The fast rule and the screen's length use each clip's own duration, not the item's first system's."""
    from lasskit.listening.results import rating_rows

    ws = make_workspace(tmp_path, n_items=2, duration=0.5, models=("short", "good"))
    out = tmp_path / "exp" / "short" / "eval_real" / "rec0_0.wav"
    audio.write(out, audio.load(out)[:1600], subtype="float")  # 0.1 s of a 0.5 s mixture
    r = create_test(ws, "eval_real", ["short", "good"], "t", raters=1, raters_per_item=1, repeats=0, **NO_QC)
    assert r.length_differs == ["short/rec0_0.wav"]
    spec = load_test(r.root)
    stim = spec.items[0]["stimuli"]
    assert spec.stimulus_seconds()[stim["short"]] == 0.1 and spec.stimulus_seconds()[stim["good"]] == 0.5
    raw = [{"rater": "r01", "position": k, "stimulus": stim[s], "repeat": 0, "rel": 3, "ovl": 3, "listened_ms": 200}
           for k, s in enumerate(("short", "good"))]
    assert [row["fast"] for row in rating_rows(spec, raw)] == [0, 1]  # 200 ms of a 0.5 s clip is fast
    store = Store(spec)
    assert store._seconds[stim["short"]] == 0.1 and store._seconds[stim["good"]] == 0.5


def test_create_force_refuses_to_replace_a_test_being_served(tmp_path):
    import subprocess
    import sys

    from lasskit.errors import UsageError
    from lasskit.listening.layout import server_pid, serving

    ws = make_workspace(tmp_path, n_items=2)
    r = create_test(ws, "eval_real", ["good"], "t", raters=1, **NO_QC)
    # `listen serve` in another process holds the test (the same mark app.serve takes)
    code = ("import sys, time; from pathlib import Path; from lasskit.listening.layout import serving\n"
            "with serving(Path(sys.argv[1])):\n    print('up', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(r.root)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "up\n"
        before = _tree(r.root)
        assert server_pid(r.root) == str(proc.pid)
        with pytest.raises(UsageError, match=rf"`lasskit listen serve` \(pid {proc.pid}\) is serving this test"):
            create_test(ws, "eval_real", ["good", "bad"], "t", raters=1, force=True, **NO_QC)
        assert _tree(r.root) == before
    finally:
        proc.kill()
        proc.wait()
    assert server_pid(r.root) is None
    with serving(r.root):  # several servers of one test may run; the mark is shared
        with serving(r.root):
            pass
    create_test(ws, "eval_real", ["good", "bad"], "t", raters=1, force=True, **NO_QC)
    assert load_test(r.root).systems == ["good", "bad", "mixture"]


def test_a_workspace_under_a_non_utf8_folder_name(tmp_path):
    import os

    root = tmp_path / os.fsdecode(b"lab\xff")  # a folder name from a Latin-1 system
    ws = make_workspace(root, n_items=2)
    r = create_test(ws, "eval_real", ["good"], "t", raters=1, **NO_QC)
    spec = load_test(r.root)
    assert len(spec.items) == 2 and all(spec.audio_path(s).is_file() for s in spec.stimulus_table())


def test_create_on_a_full_disk_names_the_test_and_keeps_the_old_one(tmp_path, monkeypatch):
    import errno

    from lasskit.errors import WorkError
    from lasskit.listening import layout

    ws = make_workspace(tmp_path, n_items=2)
    r = create_test(ws, "eval_real", ["good"], "t", raters=1, **NO_QC)
    before = _tree(r.root)

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(layout, "write_text", full)
    with pytest.raises(WorkError) as err:
        create_test(ws, "eval_real", ["good", "bad"], "t", raters=1, force=True, **NO_QC)
    line = str(err.value)
    assert line.startswith(f"{r.root}: no space left on the device while building the test; nothing was written "
                           "(the old test is as it was)")
    assert "--out" not in line and ".new-" not in line
    assert _tree(r.root) == before and [p.name for p in r.root.parent.iterdir()] == ["t"]


def test_systems_tied_in_every_draw_share_first_place_and_no_plot_warning(tmp_path, recwarn):
    from lasskit.listening.results import results_for_test

    ws = make_workspace(tmp_path, n_items=4)
    r = create_test(ws, "eval_real", ["good", "bad"], "t", raters=2, raters_per_item=2, repeats=0, **NO_QC)
    spec = load_test(r.root)
    store = Store(spec)
    for _, token in r.links:  # everyone answers 3 to everything: good and bad tie in every draw
        st = store.start(token)
        while not st["finished"]:
            sid = st["screen"]["stimulus"]
            store.audio_file(token, sid)
            store.record_play(token, sid)
            st = store.rate(token, {"position": st["screen"]["position"], "stimulus": sid, "rel": 3, "ovl": 3,
                                    "listened_ms": 5000})
    res = results_for_test(r.root, resamples=20, plots=True)
    assert res.ranking_all["first"] == {"bad": 0.5, "good": 0.5} and res.ranking_all["holds"] == 0.0
    assert not [w for w in recwarn if "legend" in str(w.message)]  # every rater excluded: an empty scatter


def test_cli_prints_a_workspace_path_with_brackets_as_it_is(run_cli, tmp_path):
    root = tmp_path / "lab[bold]"
    make_workspace(root, n_items=2)
    code, out, err = run_cli("-w", root, "listen", "create", "--split", "eval_real", "--models", "good", "--name", "t",
                             "--gold", "0", "--no-trap", "--no-headphone-check", "--training", "none")
    assert code == 0, err
    assert f"created {root}/listen/t:" in out
