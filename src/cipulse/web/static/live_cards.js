/* cipulse dashboard, "Running now": the words, tones and elements of a run's card.

   The same as templates/_live_card.html and web/live_panel.py draw on first paint; live.js
   calls card() with a run as /api/runs/in-progress and the stream's events describe it.
   A change in either place must be made in the other (the browser test compares them). */
window.cipulseLiveCards = (function () {
  "use strict";

  /* ---- Wording and tones (mirror of web/live_panel.py and formatting.duration) ---- */

  var ACTIVE = ["requested", "pending", "queued", "waiting", "in_progress"];
  var RANK = { requested: 0, pending: 0, queued: 1, waiting: 2, in_progress: 3 };
  var TONES = {
    success: "success",
    failure: "failure",
    timed_out: "failure",
    startup_failure: "failure",
    in_progress: "running",
  };

  function stateOf(status, conclusion) {
    return status === "completed" ? conclusion || "completed" : status;
  }
  function isActive(state) {
    return ACTIVE.indexOf(state) >= 0;
  }
  function rank(state) {
    return isActive(state) ? RANK[state] : 4;
  }
  function label(state) {
    return String(state).replace(/_/g, " ");
  }
  function tone(state) {
    return TONES[state] || (isActive(state) ? "queued" : "neutral");
  }
  function webUrl(url) {
    return typeof url === "string" && /^https?:\/\//.test(url) ? url : null;
  }
  function time(iso) {
    return new Date(String(iso).replace(/(\.\d{3})\d+/, "$1")).getTime();
  }
  function duration(seconds) {
    if (seconds < 10) return seconds.toFixed(1).replace(/\.0$/, "") + "s";
    var whole = Math.round(seconds);
    if (whole < 60) return whole + "s";
    if (whole < 3600) return Math.floor(whole / 60) + "m " + (whole % 60) + "s";
    if (whole < 86400) return Math.floor(whole / 3600) + "h " + Math.floor((whole % 3600) / 60) + "m";
    return Math.floor(whole / 86400) + "d " + Math.floor((whole % 86400) / 3600) + "h";
  }
  function jobState(job) {
    return stateOf(job.status, job.conclusion);
  }

  function jobNote(job) {
    var state = jobState(job);
    var steps = job.steps || [];
    if (state === "in_progress") {
      for (var i = 0; i < steps.length; i++) {
        if (jobState(steps[i]) === "in_progress") {
          return "Step " + (i + 1) + " of " + steps.length + ": " + steps[i].name;
        }
      }
      return "Running";
    }
    if (state === "queued") return "Waiting for a runner";
    if (state === "waiting") return "Waiting for approval";
    if (isActive(state) || !job.started_at || !job.completed_at) return "";
    return "Took " + duration(Math.max(0, (time(job.completed_at) - time(job.started_at)) / 1000));
  }

  /* ---- Building a card (the elements of _live_card.html) ---- */

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function link(url, text, className) {
    if (!url) return el("span", className, text);
    var a = el("a", className + " external", text);
    a.href = url;
    a.target = "_blank";
    a.rel = "noopener";
    a.append(el("span", "visually-hidden", " (opens in a new tab)"));
    return a;
  }

  function toned(node, state) {
    node.dataset.state = state;
    node.dataset.tone = tone(state);
    return node;
  }

  function jobRow(job) {
    var state = jobState(job);
    var row = toned(el("li", "live-job"), state);
    row.dataset.jobId = job.id;
    var badge = el("span", "badge live-badge", label(state));
    badge.dataset.tone = tone(state);
    var main = el("div", "live-job-main");
    main.append(link(webUrl(job.html_url), job.name, "live-job-name"));
    main.append(el("span", "live-job-note", jobNote(job)));
    row.append(badge, main);
    var steps = job.steps || [];
    if (state === "in_progress" && steps.length) {
      var list = el("ol", "live-steps");
      list.setAttribute("aria-label", "Steps of " + job.name);
      steps.forEach(function (step) {
        var item = toned(el("li"), jobState(step));
        item.append(el("span", "visually-hidden", label(jobState(step)) + ": "), step.name);
        list.append(item);
      });
      row.append(list);
    }
    return row;
  }

  function card(run) {
    var jobs = run.jobs;
    var finished = jobs.filter(function (job) {
      return !isActive(jobState(job));
    }).length;
    var node = toned(el("article", "live-run"), run.state);
    node.dataset.runId = run.id;
    var failing = jobs.some(function (job) {
      return tone(jobState(job)) === "failure";
    });
    if (failing) node.dataset.failing = "";

    var heading = el("h3");
    var sep = el("span", "live-sep", " / ");
    sep.setAttribute("aria-hidden", "true");
    heading.append(el("span", "live-repo", run.repo), sep);
    heading.append(el("span", "live-workflow", run.name || "workflow run"));
    var meta = el("p", "live-run-meta");
    if (run.branch) {
      var branch = el("span", "live-branch", run.branch);
      branch.title = "Branch";
      meta.append(branch);
    }
    if (run.attempt > 1) meta.append(el("span", "live-attempt", "attempt " + run.attempt));
    var url = webUrl(run.html_url);
    if (url) meta.append(link(url, "Run on GitHub", "live-run-link"));
    var title = el("div", "live-run-title");
    title.append(heading, meta);
    var badge = el("span", "badge live-badge", label(run.state));
    badge.dataset.tone = tone(run.state);
    var head = el("header", "live-run-head");
    head.append(title, badge);

    var bar = el("span", "live-bar");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-label", "Jobs finished");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", String(jobs.length));
    bar.setAttribute("aria-valuenow", String(finished));
    var fill = el("span");
    fill.style.width = (jobs.length ? Math.round((1000 * finished) / jobs.length) / 10 : 0) + "%";
    bar.append(fill);
    var text = jobs.length
      ? finished + " of " + jobs.length + " job" + (jobs.length === 1 ? "" : "s") + " finished"
      : "No job has started yet";
    var progress = el("div", "live-progress");
    progress.append(bar, el("span", "live-progress-text", text));

    var list = el("ul", "live-jobs");
    jobs.forEach(function (job) {
      list.append(jobRow(job));
    });
    node.append(head, progress, list);
    return node;
  }

  return {
    card: card,
    isActive: isActive,
    jobState: jobState,
    rank: rank,
    time: time,
  };
})();
