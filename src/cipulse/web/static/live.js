/* cipulse dashboard, "Running now": GitHub runs in progress, kept live from GET /api/stream.

   The server paints the cards first (templates/_live_card.html, from web/live_panel.py). Each
   `pipeline-update` rebuilds its run's card and each `job-update` its job's row, with the same
   elements, words and tones. A job only moves forward (queued < waiting < in progress <
   completed), as in the database, so a late event never undoes a newer one. After every
   (re)connection the panel is checked against /api/runs/in-progress, which also supplies what
   the events leave out (branch, run link, attempt).

   This script also owns the header's live indicator, which dashboard.js shares for its
   WebSocket: "live" when every connection is open, "paused" while one is down. */
(function () {
  "use strict";

  /* ---- The live indicator ---- */

  var liveStatus = document.getElementById("live-status");
  var TEXTS = {
    connecting: "connecting…",
    live: "live",
    paused: "live updates paused, reconnecting…",
  };
  var sources = {};

  function showLive(source, state) {
    sources[source] = state;
    if (!liveStatus) return;
    var states = Object.keys(sources).map(function (key) {
      return sources[key];
    });
    var overall = states.indexOf("paused") >= 0 ? "paused" : "live";
    if (overall === "live" && states.indexOf("connecting") >= 0) overall = "connecting";
    liveStatus.dataset.state = overall;
    liveStatus.querySelector(".live-text").textContent = TEXTS[overall];
  }

  window.cipulseLive = { show: showLive };

  var panel = document.getElementById("live-panel");
  if (!panel || !window.EventSource || !window.cipulseLiveCards) return;

  var cards = window.cipulseLiveCards;
  var isActive = cards.isActive;
  var jobState = cards.jobState;
  var rank = cards.rank;
  var time = cards.time;
  var HORIZON_MS = 2 * 86400 * 1000; // older "in progress" runs were abandoned on GitHub
  var SHOW_DONE_MS = 5000; // a finished run shows its conclusion this long, then fades out
  var FADE_MS = 600;

  /* ---- The panel's state: one model per run, merged forward only ---- */

  var box = panel.querySelector("[data-live-runs]");
  var emptyLine = panel.querySelector("[data-live-empty]");
  var countLine = panel.querySelector("[data-live-count]");
  var dataNode = document.getElementById("live-runs-data");
  var runs = {}; // run id -> {id, attempt, repo, name, branch, html_url, state, jobs, touched}
  var shown = {}; // "r" + run id or "j" + job id -> what its card or row shows
  var finishedAt = {}; // run id -> when its completion arrived
  var timers = {}; // run id -> its pending fade-out

  function jobSig(job) {
    var steps = (job.steps || []).map(function (s) {
      return [s.number, s.name, s.status, s.conclusion];
    });
    return JSON.stringify([job.name, job.status, job.conclusion, job.html_url || null, steps]);
  }
  function runSig(run) {
    return JSON.stringify([run.attempt, run.repo, run.name, run.branch, run.html_url, run.state]);
  }
  function stepScore(job) {
    return (job.steps || []).reduce(function (sum, step) {
      return sum + rank(jobState(step));
    }, 0);
  }

  function mergeJob(old, fresh) {
    if (!old) return fresh;
    var before = rank(jobState(old));
    var after = rank(jobState(fresh));
    if (after < before) return old; // a late event
    var merged = Object.assign({}, old);
    Object.keys(fresh).forEach(function (key) {
      if (fresh[key] !== null && fresh[key] !== undefined) merged[key] = fresh[key];
    });
    merged.conclusion = fresh.conclusion || (fresh.status === old.status ? old.conclusion : null);
    var older = after === before && stepScore(fresh) < stepScore(old);
    merged.steps = fresh.steps && fresh.steps.length && !older ? fresh.steps : old.steps || [];
    return merged;
  }

  // The run's jobs as ``fresh`` lists them; with ``keepOthers``, jobs it does not list stay.
  function mergeJobs(old, fresh, keepOthers) {
    var byId = {};
    old.forEach(function (job) {
      byId[job.id] = job;
    });
    var merged = fresh.map(function (job) {
      var out = mergeJob(byId[job.id], job);
      delete byId[job.id];
      return out;
    });
    if (!keepOthers) return merged;
    return old
      .filter(function (job) {
        return byId[job.id];
      })
      .concat(merged);
  }

  function flash(node, className) {
    node.classList.remove(className);
    void node.offsetWidth; // restart the animation
    node.classList.add(className);
  }

  function updateCount() {
    var ids = Object.keys(runs);
    var n = ids.filter(function (id) {
      return isActive(runs[id].state);
    }).length;
    countLine.textContent = n ? n + " run" + (n === 1 ? "" : "s") + " in progress" : "";
    emptyLine.hidden = ids.length > 0;
    if (ids.length) panel.hidden = false;
  }

  function cardOf(id) {
    return box.querySelector('.live-run[data-run-id="' + CSS.escape(String(id)) + '"]');
  }

  // Rebuilds a run's card, keeping the rows (and their animations) that did not change.
  function render(run) {
    var id = String(run.id);
    var old = cardOf(id);
    var fresh = cards.card(run);
    var rows = old ? old.querySelectorAll(".live-job").length : 0;
    var keep = [];
    fresh.querySelectorAll(".live-job").forEach(function (row) {
      var jobId = row.dataset.jobId;
      var job = run.jobs.filter(function (j) {
        return String(j.id) === jobId;
      })[0];
      var sig = jobSig(job);
      var before = old && old.querySelector('.live-job[data-job-id="' + CSS.escape(jobId) + '"]');
      if (before && shown["j" + jobId] === sig) {
        keep.push([row, before]);
      } else {
        if (old) flash(row, "changed");
        shown["j" + jobId] = sig;
      }
    });
    var sameRun = old && shown["r" + id] === runSig(run);
    if (sameRun && keep.length === run.jobs.length && keep.length === rows) return; // no change
    keep.forEach(function (pair) {
      pair[0].replaceWith(pair[1]);
    });
    if (!old) {
      box.prepend(fresh);
      flash(fresh, "entering");
    } else if (!sameRun) {
      old.replaceWith(fresh);
    } else {
      old.toggleAttribute("data-failing", fresh.hasAttribute("data-failing"));
      old.querySelector(".live-progress").replaceWith(fresh.querySelector(".live-progress"));
      old.querySelector(".live-jobs").replaceWith(fresh.querySelector(".live-jobs"));
    }
    shown["r" + id] = runSig(run);
  }

  function leave(id, delay) {
    timers[id] = setTimeout(function () {
      var node = cardOf(id);
      if (node) node.classList.add("leaving");
      timers[id] = setTimeout(function () {
        delete timers[id];
        delete runs[id];
        if (node) node.remove();
        updateCount();
      }, FADE_MS);
    }, delay);
  }

  // Shows a run; a finished one keeps its conclusion for a moment, then fades out.
  function show(run) {
    var id = String(run.id);
    runs[id] = run;
    if (timers[id]) {
      clearTimeout(timers[id]);
      delete timers[id];
      var existing = cardOf(id);
      if (existing) existing.classList.remove("leaving");
    }
    render(run);
    if (!isActive(run.state)) {
      finishedAt[id] = Date.now();
      leave(id, SHOW_DONE_MS);
    }
    updateCount();
  }

  function runUrlFromJobs(jobs) {
    for (var i = 0; i < jobs.length; i++) {
      var match = /^(https?:\/\/.+\/actions\/runs\/\d+)\/job/.exec(jobs[i].html_url || "");
      if (match) return match[1];
    }
    return null;
  }

  function onPipeline(data) {
    var id = String(data.id);
    var old = runs[id];
    if (!old && data.startTime && Date.now() - time(data.startTime) > HORIZON_MS) return;
    var jobs = data.jobs || [];
    var run = {
      id: data.id,
      attempt: data.attempt || (old ? old.attempt : 1),
      repo: data.repo || (old ? old.repo : "?"),
      name: data.name !== undefined ? data.name : old && old.name,
      branch: data.branch || (old ? old.branch : null),
      html_url: data.html_url || (old && old.html_url) || runUrlFromJobs(jobs),
      state: data.status,
      jobs: mergeJobs(old ? old.jobs : [], jobs, false),
      touched: Date.now(),
    };
    show(run);
    if (!old && isActive(run.state)) resync(); // for what the event leaves out
  }

  function onJob(data) {
    var old = runs[String(data.run_id)];
    if (!old || !isActive(old.state)) return; // a new run's card comes with its pipeline-update
    var fresh = {
      id: data.job_id,
      name: data.name,
      status: data.status,
      conclusion: data.conclusion,
      steps: data.steps || [],
    };
    var run = Object.assign({}, old, {
      jobs: mergeJobs(old.jobs, [fresh], true),
      attempt: Math.max(old.attempt, data.attempt || 1),
      touched: Date.now(),
    });
    show(run);
  }

  /* ---- Catching up: after (re)connecting, and for the details of a new run ---- */

  var busy = false;
  var again = false;

  function applySnapshot(list, started) {
    var seen = {};
    list.forEach(function (data) {
      var id = String(data.id);
      seen[id] = true;
      if (finishedAt[id] && finishedAt[id] >= started) return; // it ended since
      var old = runs[id];
      var meta = {
        attempt: data.attempt,
        repo: data.repo,
        name: data.name,
        branch: data.branch,
        html_url: data.html_url,
      };
      var run;
      if (old && old.touched >= started) {
        run = Object.assign({}, old, meta); // the events are newer: only the details
      } else {
        run = Object.assign({ id: data.id, touched: 0 }, old || {}, meta);
        if (!old || rank(data.status) >= rank(old.state)) run.state = data.status;
        run.jobs = mergeJobs(old ? old.jobs : [], data.jobs, false);
      }
      show(run); // draws nothing when nothing changed
    });
    Object.keys(runs).forEach(function (id) {
      var run = runs[id];
      if (!seen[id] && isActive(run.state) && run.touched < started && !timers[id]) leave(id, 0);
    });
  }

  function resync() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    var started = Date.now();
    fetch(panel.dataset.runsPath, { headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("runs in progress: HTTP " + response.status);
        return response.json();
      })
      .then(function (list) {
        applySnapshot(list, started);
      })
      .catch(function () {
        // the next connection tries again; the events keep coming meanwhile
      })
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          resync();
        }
      });
  }

  /* ---- The stream ---- */

  var attempts = 0;

  function listen(source, name, handler) {
    source.addEventListener(name, function (event) {
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      handler(data);
    });
  }

  function connect() {
    var source = new EventSource(panel.dataset.streamPath);
    source.addEventListener("open", function () {
      attempts = 0;
      showLive("stream", "live");
      resync(); // what happened before this connection, or while it was down
    });
    source.addEventListener("error", function () {
      showLive("stream", "paused");
      if (source.readyState !== EventSource.CLOSED) return; // the browser retries by itself
      // Refused (not a stream): retry 1 s, 2 s, 4 s ... up to 30 s, with jitter.
      var delay = Math.min(30000, 1000 * Math.pow(2, attempts)) * (0.75 + Math.random() * 0.5);
      attempts += 1;
      setTimeout(connect, delay);
    });
    listen(source, "pipeline-update", onPipeline);
    listen(source, "job-update", onJob);
  }

  (dataNode ? JSON.parse(dataNode.textContent) : []).forEach(function (data) {
    var id = String(data.id);
    runs[id] = Object.assign({ state: data.status, touched: 0 }, data);
    shown["r" + id] = runSig(runs[id]);
    data.jobs.forEach(function (job) {
      shown["j" + job.id] = jobSig(job);
    });
  });
  showLive("stream", "connecting");
  connect();
})();
