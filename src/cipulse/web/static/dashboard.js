/* cipulse dashboard: keeps the server-rendered page live without reloading it.

   One WebSocket (/ws/metrics) says when something changed. Its payload updates the KPI cards;
   the recent-runs table is re-fetched as an htmx fragment from this same URL, and the chart from
   the daily API. The formatters mirror cipulse/web/formatting.py so that live values read like
   the first paint. */
(function () {
  "use strict";

  var root = document.getElementById("dashboard");
  if (!root) return;

  var STATUSES = ["success", "failure", "running"];
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  /* ---- Formatting (mirror of formatting.py) ---- */

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 10) return seconds.toFixed(1).replace(/\.0$/, "") + "s";
    var whole = Math.round(seconds);
    if (whole < 60) return whole + "s";
    if (whole < 3600) return Math.floor(whole / 60) + "m " + (whole % 60) + "s";
    if (whole < 86400) return Math.floor(whole / 3600) + "h " + Math.floor((whole % 3600) / 60) + "m";
    return Math.floor(whole / 86400) + "d " + Math.floor((whole % 86400) / 3600) + "h";
  }

  function percent(rate) {
    if (rate === null || rate === undefined) return "—";
    return rate.toFixed(1).replace(/\.0$/, "") + "%";
  }

  function parseTime(iso) {
    // Python sends microseconds; Date.parse only promises milliseconds.
    return new Date(String(iso).replace(/(\.\d{3})\d+/, "$1"));
  }

  function relative(iso, now) {
    if (!iso) return "—";
    var moment = parseTime(iso);
    var seconds = (now - moment.getTime()) / 1000;
    if (seconds < 60) return "just now";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
    var days = Math.floor(seconds / 86400);
    if (days <= 30) return days === 1 ? "yesterday" : days + " days ago";
    return moment.toISOString().slice(0, 10);
  }

  function utcTitle(iso) {
    return parseTime(iso).toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }

  function dayLabel(isoDay) {
    var parts = isoDay.split("-");
    return MONTHS[Number(parts[1]) - 1] + " " + Number(parts[2]);
  }

  /* ---- Relative times: the server wrote them for first paint; keep them true. ---- */

  function refreshTimes() {
    var now = Date.now();
    document.querySelectorAll("time[data-relative]").forEach(function (el) {
      el.textContent = relative(el.getAttribute("datetime"), now);
    });
  }

  setInterval(refreshTimes, 30000);

  /* ---- Copy button of the empty state ---- */

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.dataset.copy);
    var text = source ? source.textContent : "";
    function done(label) {
      button.textContent = label;
      setTimeout(function () {
        button.textContent = "Copy";
      }, 2000);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () {
          done("Copied");
        },
        function () {
          done("Press Ctrl+C");
        }
      );
    } else {
      // Plain-http pages get no clipboard API: select the text for a manual copy.
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      done("Press Ctrl+C");
    }
  });

  /* ---- Work that must not pile up: one run at a time, one more if asked meanwhile. ---- */

  function coalesced(task) {
    var busy = false;
    var again = false;
    return function run() {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      Promise.resolve()
        .then(task)
        .catch(function () {
          /* each task reports its own failure */
        })
        .then(function () {
          busy = false;
          if (again) {
            again = false;
            run();
          }
        });
    };
  }

  /* ---- KPI cards ---- */

  function card(key) {
    return root.querySelector('[data-kpi="' + key + '"]');
  }

  function flash(el) {
    el.classList.remove("changed");
    void el.offsetWidth; // restart the highlight animation
    el.classList.add("changed");
  }

  function setValue(key, text) {
    var el = card(key);
    if (!el) return;
    var value = el.querySelector(".kpi-value");
    if (value.textContent === text) return;
    value.textContent = text;
    flash(el);
  }

  function updateLastStatus(summary) {
    var el = card("last_status");
    if (!el) return;
    var status = STATUSES.indexOf(summary.last_status) >= 0 ? summary.last_status : null;
    var value = el.querySelector(".kpi-value");
    if (value.textContent !== (status || "—")) {
      value.replaceChildren();
      if (status) {
        var dot = document.createElement("span");
        dot.className = "status-dot";
        dot.dataset.status = status;
        dot.setAttribute("aria-hidden", "true");
        var label = document.createElement("span");
        label.className = "kpi-status";
        label.dataset.status = status;
        label.textContent = status;
        value.append(dot, label);
      } else {
        value.textContent = "—";
      }
      flash(el);
    }
    var when = el.querySelector(".kpi-when");
    when.replaceChildren();
    if (summary.last_finished_at) {
      var time = document.createElement("time");
      time.dateTime = summary.last_finished_at;
      time.title = utcTitle(summary.last_finished_at);
      time.dataset.relative = "";
      time.textContent = relative(summary.last_finished_at, Date.now());
      when.append("Finished ", time);
    } else {
      when.textContent = "No finished run yet";
    }
  }

  function updateKpis(summary) {
    setValue("total", String(summary.total));
    setValue("success", String(summary.success));
    setValue("failure", String(summary.failure));
    setValue("success_rate", percent(summary.success_rate));
    setValue("avg_duration", duration(summary.avg_duration_sec));
    updateLastStatus(summary);

    var running = root.querySelector(".kpi-running");
    if (running) {
      running.hidden = !summary.running;
      running.querySelector("b").textContent = String(summary.running);
    }
    var finished = root.querySelector(".kpi-finished");
    if (finished) finished.textContent = String(summary.success + summary.failure);
    var failures = card("failure");
    if (failures) failures.toggleAttribute("data-alert", summary.failure > 0);
  }

  /* ---- Recent runs: the same URL answers with only the table for htmx ---- */

  var runsBox = document.getElementById("recent-runs");
  var runsError = document.getElementById("runs-error");

  var refreshRuns = coalesced(function () {
    if (!runsBox || !window.htmx) return null;
    return window.htmx.ajax("GET", location.pathname + location.search, {
      source: runsBox,
      target: runsBox,
      swap: "innerHTML",
    });
  });

  if (runsBox) {
    // htmx keeps the old table on an error answer; say so instead of showing stale rows silently.
    runsBox.addEventListener("htmx:afterRequest", function (event) {
      if (runsError) runsError.hidden = Boolean(event.detail.successful);
    });
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest('[data-action="retry-runs"]')) refreshRuns();
  });

  /* ---- Daily chart ---- */

  var chartBox = document.getElementById("daily-chart");
  var dataNode = document.getElementById("daily-data");
  var days = dataNode ? JSON.parse(dataNode.textContent) : [];
  var chart = null;
  var probe = null;

  function cssColor(name) {
    // Theme colours are light-dark() values; ECharts needs the colour they resolve to.
    if (!probe) {
      probe = document.createElement("span");
      probe.hidden = true;
      chartBox.appendChild(probe);
    }
    probe.style.color = "var(" + name + ")";
    return getComputedStyle(probe).color;
  }

  function renderChart() {
    if (!chartBox || !window.echarts) return;
    if (!chart) {
      chart = window.echarts.init(chartBox, null, { renderer: "svg" });
      new ResizeObserver(function () {
        chart.resize();
      }).observe(chartBox);
    }
    var text = cssColor("--text");
    var muted = cssColor("--muted");
    var border = cssColor("--border");
    var surface = cssColor("--surface");
    var font = getComputedStyle(document.body).fontFamily;
    var labels = days.map(function (d) {
      return dayLabel(d.day);
    });
    chart.setOption({
      animationDuration: 400,
      textStyle: { fontFamily: font },
      grid: { left: 8, right: 8, top: 40, bottom: 4 },
      legend: {
        top: 0,
        right: 0,
        icon: "roundRect",
        itemWidth: 10,
        itemHeight: 10,
        textStyle: { color: muted, fontSize: 12 },
      },
      tooltip: {
        trigger: "axis",
        axisPointer: { type: "shadow", shadowStyle: { color: border, opacity: 0.35 } },
        backgroundColor: surface,
        borderColor: border,
        textStyle: { color: text, fontSize: 13 },
      },
      xAxis: {
        type: "category",
        data: labels,
        axisTick: { show: false },
        axisLine: { lineStyle: { color: border } },
        axisLabel: { color: muted, fontSize: 11, hideOverlap: true },
      },
      yAxis: {
        type: "value",
        minInterval: 1,
        axisLabel: { color: muted, fontSize: 11 },
        splitLine: { lineStyle: { color: border, type: "dashed" } },
      },
      series: [
        {
          name: "Succeeded",
          type: "bar",
          stack: "runs",
          barMaxWidth: 22,
          itemStyle: { color: cssColor("--success") },
          data: days.map(function (d) {
            return d.success;
          }),
        },
        {
          name: "Failed",
          type: "bar",
          stack: "runs",
          barMaxWidth: 22,
          itemStyle: { color: cssColor("--failure"), borderRadius: [3, 3, 0, 0] },
          data: days.map(function (d) {
            return d.failure;
          }),
        },
      ],
    });
  }

  var refreshChart = coalesced(function () {
    if (!chartBox) return null;
    var url = root.dataset.dailyPath + "?days=" + encodeURIComponent(root.dataset.chartDays);
    return fetch(url, { headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("daily counts: HTTP " + response.status);
        return response.json();
      })
      .then(function (fresh) {
        days = fresh;
        renderChart();
      });
    // On failure the chart keeps its last data; the next update tries again.
  });

  document.addEventListener("cipulse:theme", renderChart);

  /* ---- Live connection ---- */

  var signature = root.dataset.signature;
  var attempts = 0;
  var firstConnection = true;

  // The header's indicator belongs to live.js, which adds its event stream to this socket.
  function showLive(state) {
    if (window.cipulseLive) window.cipulseLive.show("metrics", state);
  }

  function onMetrics(summary, firstMessage) {
    var fresh = [summary.total, summary.success, summary.failure, summary.running].join("/");
    if (root.dataset.empty === "true") {
      // Any update after the first means a run was stored: swap the welcome for the dashboard.
      if (!firstMessage || summary.total > 0 || summary.last_status) location.reload();
      return;
    }
    updateKpis(summary);
    // The first message only repeats what the page was rendered with, unless something
    // happened between the render and the connection, or while the socket was down.
    if (firstMessage && firstConnection && fresh === signature) return;
    signature = fresh;
    refreshRuns();
    refreshChart();
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    var url =
      scheme + "//" + location.host + root.dataset.wsPath + "?minutes=" + root.dataset.minutes;
    var socket = new WebSocket(url);
    var firstMessage = true;

    socket.addEventListener("open", function () {
      attempts = 0;
      showLive("live");
    });
    socket.addEventListener("message", function (event) {
      var message;
      try {
        message = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (message.type !== "metrics_update") return;
      onMetrics(message.payload, firstMessage);
      firstMessage = false;
      firstConnection = false;
    });
    socket.addEventListener("close", function () {
      showLive("paused");
      // 1 s, 2 s, 4 s ... up to 30 s, with jitter so that restarted servers are not stampeded.
      var delay = Math.min(30000, 1000 * Math.pow(2, attempts)) * (0.75 + Math.random() * 0.5);
      attempts += 1;
      setTimeout(connect, delay);
    });
  }

  renderChart();
  showLive("connecting");
  connect();
  // A tab left in the background may have missed nothing, but its relative times aged.
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) refreshTimes();
  });
})();
