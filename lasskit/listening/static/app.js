// lasskit listening test: the rater's page. Talks to /api/<token>/... (see lasskit/listening/app.py).
// Every text from the server is inserted with textContent, never as HTML.
(function () {
  "use strict";

  var parts = window.location.pathname.split("/").filter(Boolean);
  var token = parts[parts.length - 1] || "";
  var base = "/api/" + encodeURIComponent(token);
  var $ = function (id) { return document.getElementById(id); };

  var scales = null;        // wording from the server
  var screen = null;        // the current screen {position, stimulus, reference, query}
  var answers = {};         // {rel: n, ovl: n}
  var active = "rel";       // the scale that keys 1-5 answer
  var clip = null, ref = null;
  var clipEnded = false, busy = false;
  var listenedMs = 0, playStart = null;

  function show(id) {
    ["loading", "intro", "screen", "done", "fatal"].forEach(function (s) { $(s).hidden = s !== id; });
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

  function fatal(message) {
    $("fatal-text").textContent = message;
    show("fatal");
  }

  function render(state) {
    if (state.scales) { scales = state.scales; }
    if (!state.started) { return renderIntro(); }
    if (state.finished) { stopAll(); return show("done"); }
    renderScreen(state);
  }

  function renderIntro() {
    $("title").textContent = scales.title || "Listening test";
    document.title = scales.title || "Listening test";
    var box = $("instructions");
    box.textContent = "";
    (scales.instructions || []).forEach(function (text) {
      var p = document.createElement("p");
      p.textContent = text;
      box.appendChild(p);
    });
    show("intro");
    $("begin").focus();
  }

  function buildScale(name) {
    var spec = scales[name];
    var set = $("scale-" + name);
    set.querySelector("legend").textContent = spec.question;
    var box = set.querySelector(".choices");
    box.textContent = "";
    for (var point = 1; point <= 5; point++) {
      var b = document.createElement("button");
      b.type = "button";
      b.setAttribute("aria-pressed", "false");
      b.dataset.value = String(point);
      var num = document.createElement("b");
      num.textContent = String(point);
      var lab = document.createElement("span");
      lab.textContent = spec.labels[String(point)] || "";
      b.appendChild(num);
      b.appendChild(lab);
      b.addEventListener("click", choose.bind(null, name, point));
      box.appendChild(b);
    }
  }

  function stopAll() {
    [clip, ref].forEach(function (a) { if (a) { a.pause(); a.removeAttribute("src"); a.load(); } });
    clip = ref = null;
  }

  function renderScreen(state) {
    stopAll();
    screen = state.screen;
    answers = {};
    active = "rel";
    clipEnded = false;
    listenedMs = 0;
    playStart = null;
    $("bar-fill").style.width = (100 * state.done / Math.max(1, state.total)) + "%";
    $("progress-text").textContent = (state.done + 1) + " of " + state.total;
    $("query").textContent = screen.query;
    buildScale("rel");
    buildScale("ovl");
    clip = makeAudio(screen.stimulus, $("play-clip"), true);
    ref = makeAudio(screen.reference, $("play-ref"), false);
    $("play-hint").textContent = "Listen to the clip to the end to unlock the answers.";
    $("play-hint").className = "hint";
    $("error").hidden = true;
    update();
    show("screen");
  }

  function makeAudio(id, button, isClip) {
    var a = new Audio();
    a.preload = "none";
    a.src = base + "/audio/" + encodeURIComponent(id) + ".wav";
    a.addEventListener("play", function () {
      button.classList.add("playing");
      if (isClip) { playStart = Date.now(); }
    });
    var stopped = function () {
      button.classList.remove("playing");
      if (isClip && playStart !== null) { listenedMs += Date.now() - playStart; playStart = null; }
    };
    a.addEventListener("pause", stopped);
    a.addEventListener("ended", function () {
      stopped();
      if (isClip) {
        clipEnded = true;
        $("play-hint").textContent = "You can answer now (and listen again if you like).";
        $("play-hint").className = "hint ok";
        update();
      }
    });
    a.addEventListener("error", function () {
      if (a.getAttribute("src")) { showError("The audio could not be loaded; check the connection and reload the page."); }
    });
    return a;
  }

  function toggle(which) {
    var a = which === "clip" ? clip : ref;
    var other = which === "clip" ? ref : clip;
    if (!a) { return; }
    if (other && !other.paused) { other.pause(); }
    if (a.paused) {
      if (a.ended) { a.currentTime = 0; }
      var p = a.play();
      if (p && p.catch) { p.catch(function () { showError("The browser refused to play the audio; press the button again."); }); }
    } else {
      a.pause();
    }
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
      var help = scales[name].help || {};
      set.querySelector(".help").textContent = answers[name] ? (help[String(answers[name])] || "") : "";
    });
    $("next").disabled = !(clipEnded && answers.rel && answers.ovl) || busy;
  }

  function showError(message) {
    $("error").textContent = message;
    $("error").hidden = false;
  }

  function next() {
    if ($("next").disabled) { return; }
    busy = true;
    update();
    if (playStart !== null) { listenedMs += Date.now() - playStart; playStart = Date.now(); }
    request("POST", "/rate", {
      position: screen.position, stimulus: screen.stimulus,
      rel: answers.rel, ovl: answers.ovl, listened_ms: Math.round(listenedMs)
    }).then(function (state) {
      busy = false;
      render(state);
      if (!$("screen").hidden) { $("play-clip").focus(); }
    }).catch(function (err) {
      busy = false;
      update();
      showError("Not saved: " + err.message);
    });
  }

  document.addEventListener("keydown", function (e) {
    if ($("screen").hidden || e.ctrlKey || e.metaKey || e.altKey) { return; }
    var k = e.key;
    if (k === " " || k === "Spacebar") { e.preventDefault(); toggle("clip"); }
    else if (k === "m" || k === "M") { toggle("ref"); }
    else if (k >= "1" && k <= "5" && k.length === 1) { choose(active, Number(k)); }
    else if (k === "ArrowUp" || k === "ArrowDown") {
      if (clipEnded) { e.preventDefault(); active = active === "rel" ? "ovl" : "rel"; update(); }
    }
    else if (k === "Enter") { e.preventDefault(); next(); }
  });

  $("play-clip").addEventListener("click", function () { toggle("clip"); });
  $("play-ref").addEventListener("click", function () { toggle("ref"); });
  $("next").addEventListener("click", next);
  $("begin").addEventListener("click", function () {
    request("POST", "/start", {}).then(function (state) {
      render(state);
      if (!$("screen").hidden) { $("play-clip").focus(); }
    }).catch(function (err) { fatal(err.message); });
  });

  request("GET", "/state").then(render).catch(function (err) { fatal(err.message); });
})();
