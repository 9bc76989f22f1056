// lasskit listening test: the rater's page. Talks to /api/<token>/... (see lasskit/listening/app.py).
// Every text from the server is inserted with textContent, never as HTML.
(function () {
  "use strict";

  var parts = window.location.pathname.split("/").filter(Boolean);
  var token = parts[parts.length - 1] || "";
  var base = "/api/" + encodeURIComponent(token);
  var $ = function (id) { return document.getElementById(id); };
  var SECTIONS = ["loading", "intro", "checks", "training", "screen", "help", "done", "fatal"];

  var scales = null;        // wording from the server
  var notes = [];           // how this page works
  var examples = [];        // training examples
  var state = null;         // the last state from the server
  var screen = null;        // the current screen {position, stimulus, reference, query}
  var answers = {};         // {rel: n, ovl: n}
  var active = "rel";       // the scale that keys 1-5 answer
  var clip = null, ref = null;
  var players = [];         // every player on the page: {audio, button, label}
  var clipEnded = false, busy = false;
  var listenedMs = 0, playStart = null;
  var current = "loading";  // the section shown (help returns to it)

  function show(id) {
    if (id !== "help") { current = id; }
    SECTIONS.forEach(function (s) { $(s).hidden = s !== id; });
  }

  function networkMessage(err) {
    // fetch() rejects with a TypeError when the server cannot be reached at all
    if (err && err.status) { return err.message; }
    return "Cannot reach the test server. Check your connection, then try again (your saved answers are kept).";
  }

  function request(method, path, body) {
    var opts = { method: method, headers: {}, cache: "no-store" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(base + path, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) {
          var err = new Error(data.error || ("the server answered " + r.status));
          err.status = r.status;
          throw err;
        }
        return data;
      });
    });
  }

  function fatal(err) {
    var offline = !(err && err.status);
    $("fatal-title").textContent = offline ? "No connection" : (err.status === 404 ? "This link does not work" : "Something went wrong");
    $("fatal-text").textContent = networkMessage(err);
    $("retry").hidden = !(offline || err.status >= 500);
    show("fatal");
  }

  function load() {
    show("loading");
    request("GET", "/state").then(render).catch(fatal);
  }

  function render(s) {
    state = s;
    if (s.scales) { scales = s.scales; }
    if (s.notes) { notes = s.notes; }
    if (s.training) { examples = s.training; }
    if (!s.started) { return renderIntro(s); }
    if (s.finished) { stopAll(); return show("done"); }
    if (s.pending === "checks") { return renderChecks(s); }
    if (s.pending === "training") { return renderTraining(); }
    renderScreen(s);
  }

  function paragraphs(box, texts) {
    box.textContent = "";
    texts.forEach(function (text) {
      var p = document.createElement("p");
      p.textContent = text;
      box.appendChild(p);
    });
  }

  function renderIntro(s) {
    $("title").textContent = scales.title || "Listening test";
    document.title = scales.title || "Listening test";
    $("estimate").textContent = s.total + " clips to rate, about " + s.minutes_left + " minutes in all "
      + "(including a short volume check" + (examples.length ? " and examples" : "") + ").";
    paragraphs($("instructions"), (scales.instructions || []).concat(notes));
    show("intro");
    $("begin").focus();
  }

  // --- audio players ------------------------------------------------------------------------------
  function setPlaying(p, on) {
    p.button.classList.toggle("playing", on);
    p.button.setAttribute("aria-pressed", String(on));
    p.button.querySelector(".what").textContent = on ? "Pause " + p.label + " (playing)" : "Play " + p.label;
  }

  function makePlayer(id, button, label, onEnded, isClip) {
    if (!button.querySelector(".what")) {
      var span = document.createElement("span");
      span.className = "what";
      button.textContent = "";
      button.appendChild(span);
    }
    var p = { audio: null, button: button, label: label, failed: false, url: base + "/audio/" + encodeURIComponent(id) + ".wav" };
    var a = new Audio();
    a.preload = "none";
    a.src = p.url;
    p.audio = a;
    a.addEventListener("play", function () {
      setPlaying(p, true);
      if (isClip) { playStart = Date.now(); }
    });
    var stopped = function () {
      setPlaying(p, false);
      if (isClip && playStart !== null) { listenedMs += Date.now() - playStart; playStart = null; }
    };
    a.addEventListener("pause", stopped);
    a.addEventListener("ended", function () {
      stopped();
      if (onEnded) { onEnded(); }
    });
    a.addEventListener("error", function () {
      if (!a.getAttribute("src")) { return; }
      p.failed = true;
      stopped();
      showError("The " + label + " could not be loaded. Press its button to try again.");
    });
    setPlaying(p, false);
    players.push(p);
    return p;
  }

  function toggle(p) {
    if (!p) { return; }
    players.forEach(function (o) { if (o !== p && !o.audio.paused) { o.audio.pause(); } });
    var a = p.audio;
    if (p.failed) {  // try again: a fresh request
      p.failed = false;
      hideError();
      a.src = p.url;
      a.load();
    }
    if (a.paused) {
      if (a.ended) { a.currentTime = 0; }
      var pr = a.play();
      if (pr && pr.catch) {
        pr.catch(function (e) {
          if (p.failed || (e && e.name === "AbortError")) { return; }
          setPlaying(p, false);
          showError("The browser did not play the " + p.label + "; press its button again.");
        });
      }
    } else {
      a.pause();
    }
  }

  function stopAll() {
    players.forEach(function (p) { p.audio.pause(); p.audio.removeAttribute("src"); p.audio.load(); });
    players = [];
    clip = ref = null;
  }

  // --- volume and headphone check -------------------------------------------------------------------
  var trialAnswers = [];
  var trialPlayed = [];

  function renderChecks(s) {
    stopAll();
    makePlayer(s.checks.calibration, $("play-calibration"), "the volume check", null, false);
    var list = $("trials");
    list.textContent = "";
    trialAnswers = s.checks.trials.map(function () { return 0; });
    trialPlayed = s.checks.trials.map(function () { return false; });
    s.checks.trials.forEach(function (id, k) {
      var li = document.createElement("li");
      var play = document.createElement("button");
      play.type = "button";
      play.className = "player";
      li.appendChild(play);
      var group = document.createElement("div");
      group.className = "picks";
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "Which burst of clip " + (k + 1) + " held the tone?");
      for (var b = 1; b <= 3; b++) {
        var pick = document.createElement("button");
        pick.type = "button";
        pick.textContent = "Burst " + b;
        pick.dataset.value = String(b);
        pick.setAttribute("aria-pressed", "false");
        pick.disabled = true;
        pick.addEventListener("click", pickTrial.bind(null, k, b, group));
        group.appendChild(pick);
      }
      li.appendChild(group);
      list.appendChild(li);
      var p = makePlayer(id, play, "headphone clip " + (k + 1), function () {
        trialPlayed[k] = true;
        group.querySelectorAll("button").forEach(function (x) { x.disabled = false; });
      }, false);
      play.addEventListener("click", function () { toggle(p); });
    });
    $("checks-done").disabled = true;
    show("checks");
  }

  function pickTrial(k, value, group) {
    trialAnswers[k] = value;
    group.querySelectorAll("button").forEach(function (x) { x.setAttribute("aria-pressed", String(Number(x.dataset.value) === value)); });
    $("checks-done").disabled = trialAnswers.some(function (v) { return !v; });
  }

  $("play-calibration").addEventListener("click", function () {
    toggle(players.filter(function (p) { return p.button === $("play-calibration"); })[0]);
  });
  $("checks-done").addEventListener("click", function () {
    $("checks-done").disabled = true;
    request("POST", "/check", { kind: "headphones", answers: trialAnswers }).then(render).catch(function (err) {
      $("checks-done").disabled = false;
      $("checks-error").textContent = "Not saved: " + networkMessage(err);
      $("checks-error").hidden = false;
    });
  });

  // --- training examples ----------------------------------------------------------------------------
  function levelText(ex) {
    var aspects = ex.aspect === "both" ? ["rel", "ovl"] : [ex.aspect];
    return aspects.map(function (name) {
      var sc = scales[name];
      return sc.question.split(":")[0] + ": " + ex.level + " " + (sc.labels[ex.level] || "");
    }).join("; ");
  }

  function fillExamples(list) {
    list.textContent = "";
    examples.forEach(function (ex) {
      var li = document.createElement("li");
      var q = document.createElement("p");
      q.className = "query";
      q.textContent = ex.query;
      var lvl = document.createElement("p");
      lvl.className = "level";
      lvl.textContent = levelText(ex);
      var note = document.createElement("p");
      note.className = "hint";
      note.textContent = ex.note || "";
      var play = document.createElement("button");
      play.type = "button";
      play.className = "player";
      li.appendChild(q);
      li.appendChild(lvl);
      li.appendChild(note);
      li.appendChild(play);
      list.appendChild(li);
      var p = makePlayer(ex.audio, play, "the example", null, false);
      play.addEventListener("click", function () { toggle(p); });
    });
  }

  function renderTraining() {
    stopAll();
    fillExamples($("examples"));
    show("training");
    $("training-done").focus();
  }

  $("training-done").addEventListener("click", function () {
    request("POST", "/check", { kind: "training" }).then(function (s) {
      render(s);
      if (!$("screen").hidden) { $("play-clip").focus(); }
    }).catch(function (err) {
      $("training-error").textContent = "Not saved: " + networkMessage(err);
      $("training-error").hidden = false;
    });
  });

  // --- the rating screens ---------------------------------------------------------------------------
  function buildScale(name) {
    var spec = scales[name];
    var set = $("scale-" + name);
    set.querySelector("legend").textContent = spec.question;
    var box = set.querySelector(".choices");
    box.textContent = "";
    var help = spec.help || {};
    for (var point = 1; point <= 5; point++) {
      var b = document.createElement("button");
      b.type = "button";
      b.setAttribute("aria-pressed", "false");
      b.dataset.value = String(point);
      var num = document.createElement("b");
      num.textContent = String(point);
      var lab = document.createElement("span");
      lab.className = "name";
      lab.textContent = spec.labels[String(point)] || "";
      var desc = document.createElement("small");
      desc.textContent = help[String(point)] || "";
      b.appendChild(num);
      b.appendChild(lab);
      b.appendChild(desc);
      b.addEventListener("click", choose.bind(null, name, point));
      box.appendChild(b);
    }
  }

  function renderScreen(s) {
    stopAll();
    screen = s.screen;
    answers = {};
    active = "rel";
    clipEnded = false;
    listenedMs = 0;
    playStart = null;
    $("bar-fill").style.width = (100 * s.done / Math.max(1, s.total)) + "%";
    $("progress-text").textContent = (s.done + 1) + " of " + s.total;
    $("query").textContent = screen.query;
    buildScale("rel");
    buildScale("ovl");
    clip = makePlayer(screen.stimulus, $("play-clip"), "the clip", function () {
      clipEnded = true;
      $("play-hint").textContent = "You can answer now (and listen again if you like).";
      $("play-hint").className = "hint ok";
      update();
    }, true);
    $("play-ref").hidden = !screen.reference;
    ref = screen.reference ? makePlayer(screen.reference, $("play-ref"), "the original recording", null, false) : null;
    $("play-hint").textContent = "Listen to the clip to the end to unlock the answers.";
    $("play-hint").className = "hint";
    hideError();
    update();
    show("screen");
  }

  function choose(name, point) {
    if (!clipEnded || busy) { return; }
    answers[name] = point;
    var other = name === "rel" ? "ovl" : "rel";
    active = answers[other] ? name : other;
    update();
  }

  function update() {
    ["rel", "ovl"].forEach(function (name) {
      var set = $("scale-" + name);
      set.disabled = !clipEnded || busy;
      set.classList.toggle("active", clipEnded && active === name);
      set.querySelectorAll(".choices button").forEach(function (b) {
        b.setAttribute("aria-pressed", String(Number(b.dataset.value) === answers[name]));
      });
    });
    $("next").disabled = !(clipEnded && answers.rel && answers.ovl) || busy;
  }

  function showError(message) {
    var box = current === "checks" ? $("checks-error") : current === "training" ? $("training-error") : $("error");
    box.textContent = message;
    box.hidden = false;
  }

  function hideError() {
    ["error", "checks-error", "training-error"].forEach(function (id) { $(id).hidden = true; });
  }

  function next() {
    if ($("next").disabled) { return; }
    busy = true;
    update();
    if (playStart !== null) { listenedMs += Date.now() - playStart; playStart = Date.now(); }
    request("POST", "/rate", {
      position: screen.position, stimulus: screen.stimulus,
      rel: answers.rel, ovl: answers.ovl, listened_ms: Math.round(listenedMs)
    }).then(function (s) {
      busy = false;
      render(s);
      if (!$("screen").hidden) { $("play-clip").focus(); }
    }).catch(function (err) {
      busy = false;
      update();
      showError("Not saved: " + networkMessage(err));
    });
  }

  // --- instructions, reachable from every screen ---------------------------------------------------------
  function openHelp() {
    players.forEach(function (p) { if (!p.audio.paused) { p.audio.pause(); } });
    paragraphs($("help-text"), (scales.instructions || []).concat(notes));
    var list = $("help-examples");
    list.textContent = "";
    examples.forEach(function (ex) {
      var li = document.createElement("li");
      li.textContent = ex.query + " \u2014 " + levelText(ex) + (ex.note ? ". " + ex.note : "");
      list.appendChild(li);
    });
    var back = current;
    SECTIONS.forEach(function (s) { $(s).hidden = s !== "help"; });
    $("hide-help").onclick = function () { show(back); $("show-help").focus(); };
    $("hide-help").focus();
  }

  // --- keys ------------------------------------------------------------------------------------------
  document.addEventListener("keydown", function (e) {
    if ($("screen").hidden || e.ctrlKey || e.metaKey || e.altKey) { return; }
    var k = e.key;
    var onButton = e.target && e.target.tagName === "BUTTON";
    if ((k === "Enter" || k === " " || k === "Spacebar") && onButton) { return; }  // the focused button acts
    if (k === " " || k === "Spacebar") { e.preventDefault(); toggle(clip); }
    else if (k === "m" || k === "M") { toggle(ref); }
    else if (k >= "1" && k <= "5" && k.length === 1) { choose(active, Number(k)); }
    else if (k === "ArrowUp" || k === "ArrowDown") {
      if (clipEnded) { e.preventDefault(); active = active === "rel" ? "ovl" : "rel"; update(); }
    }
    else if (k === "Enter") { e.preventDefault(); next(); }
  });

  $("play-clip").addEventListener("click", function () { toggle(clip); });
  $("play-ref").addEventListener("click", function () { toggle(ref); });
  $("next").addEventListener("click", next);
  $("show-help").addEventListener("click", openHelp);
  $("retry").addEventListener("click", load);
  $("begin").addEventListener("click", function () {
    request("POST", "/start", {}).then(function (s) {
      render(s);
      if (!$("screen").hidden) { $("play-clip").focus(); }
    }).catch(fatal);
  });

  load();
})();
