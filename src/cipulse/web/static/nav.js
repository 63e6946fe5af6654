/* Design C's navigation pages. Everything is readable without this script (tables, links,
   filters with an Apply button); it adds: the workflow charts (duration p50/p95, success rate),
   the job's steps as a Gantt chart, the run graph's edges, and the live refresh of a running
   run (SSE from /api/stream, with htmx polling as the fallback). */
(function () {
  "use strict";

  var charts = [];

  function cssColor(box, name) {
    // Theme colours are light-dark() values; ECharts needs the colour they resolve to.
    var probe = document.createElement("span");
    probe.hidden = true;
    probe.style.color = "var(" + name + ")";
    box.appendChild(probe);
    var value = getComputedStyle(probe).color;
    probe.remove();
    return value;
  }

  function palette(box) {
    return {
      text: cssColor(box, "--text"),
      muted: cssColor(box, "--muted"),
      border: cssColor(box, "--border"),
      surface: cssColor(box, "--surface"),
      accent: cssColor(box, "--accent"),
      success: cssColor(box, "--success"),
      failure: cssColor(box, "--failure"),
      running: cssColor(box, "--running"),
      font: getComputedStyle(document.body).fontFamily,
    };
  }

  function readJson(id) {
    var node = document.getElementById(id);
    if (!node) return null;
    try {
      return JSON.parse(node.textContent);
    } catch (e) {
      return null;
    }
  }

  function seconds(value) {
    if (value === null || value === undefined) return "—";
    var s = Math.round(value);
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
    return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  }

  function chartOn(box) {
    var existing = window.echarts.getInstanceByDom(box);
    if (existing) existing.dispose();
    var chart = window.echarts.init(box, null, { renderer: "svg" });
    charts.push(chart);
    return chart;
  }

  function axisStyle(p) {
    return {
      axisLine: { lineStyle: { color: p.border } },
      axisLabel: { color: p.muted, fontFamily: p.font },
      splitLine: { lineStyle: { color: p.border, type: "dashed" } },
    };
  }

  function drawWorkflow() {
    var days = readJson("workflow-daily");
    if (!days || !window.echarts) return;
    var labels = days.map(function (d) { return d.day.slice(5); });
    var durationBox = document.getElementById("duration-chart");
    if (durationBox) {
      var p = palette(durationBox);
      chartOn(durationBox).setOption({
        textStyle: { fontFamily: p.font, color: p.text },
        grid: { left: 56, right: 16, top: 32, bottom: 28 },
        legend: { top: 0, textStyle: { color: p.muted } },
        tooltip: {
          trigger: "axis",
          valueFormatter: seconds,
          backgroundColor: p.surface,
          textStyle: { color: p.text },
        },
        xAxis: Object.assign({ type: "category", data: labels }, axisStyle(p)),
        yAxis: Object.assign(
          { type: "value", axisLabel: { color: p.muted, formatter: seconds } },
          { splitLine: axisStyle(p).splitLine }
        ),
        series: [
          { name: "p50", type: "line", showSymbol: true, connectNulls: false, symbolSize: 7, itemStyle: { color: p.accent },
            data: days.map(function (d) { return d.p50_seconds; }) },
          { name: "p95", type: "line", showSymbol: true, connectNulls: false, symbolSize: 7, itemStyle: { color: p.running },
            lineStyle: { type: "dashed" }, data: days.map(function (d) { return d.p95_seconds; }) },
        ],
      });
    }
    var rateBox = document.getElementById("success-chart");
    if (rateBox) {
      var q = palette(rateBox);
      chartOn(rateBox).setOption({
        textStyle: { fontFamily: q.font, color: q.text },
        grid: { left: 48, right: 48, top: 32, bottom: 28 },
        legend: { top: 0, textStyle: { color: q.muted } },
        tooltip: { trigger: "axis", backgroundColor: q.surface, textStyle: { color: q.text } },
        xAxis: Object.assign({ type: "category", data: labels }, axisStyle(q)),
        yAxis: [
          Object.assign({ type: "value", min: 0, max: 100, axisLabel: { color: q.muted, formatter: "{value}%" } },
            { splitLine: axisStyle(q).splitLine }),
          { type: "value", minInterval: 1, axisLabel: { color: q.muted }, splitLine: { show: false } },
        ],
        series: [
          { name: "runs", type: "bar", yAxisIndex: 1, barMaxWidth: 14, itemStyle: { color: q.border },
            data: days.map(function (d) { return d.runs; }) },
          { name: "success rate", type: "line", showSymbol: true, symbolSize: 7, itemStyle: { color: q.success },
            data: days.map(function (d) {
              return d.success_rate === null ? null : Math.round(d.success_rate * 1000) / 10;
            }) },
        ],
      });
    }
  }

  function drawSteps() {
    var steps = readJson("job-steps");
    var box = document.getElementById("steps-chart");
    if (!steps || !box || !window.echarts) return;
    var p = palette(box);
    var timed = steps.filter(function (s) { return s.started_at; });
    if (!timed.length) return;
    var origin = Math.min.apply(null, timed.map(function (s) { return Date.parse(s.started_at); }));
    var names = steps.map(function (s) { return s.number + ". " + s.name; });
    var tone = function (s) {
      if (s.status !== "completed") return p.running;
      if (s.conclusion === "success" || s.conclusion === "neutral") return p.success;
      if (s.conclusion === "failure" || s.conclusion === "timed_out") return p.failure;
      return p.muted;
    };
    var data = steps.map(function (s, i) {
      var start = s.started_at ? (Date.parse(s.started_at) - origin) / 1000 : 0;
      var end = s.completed_at ? (Date.parse(s.completed_at) - origin) / 1000 : start;
      return { value: [i, start, Math.max(end, start), s.duration_seconds], itemStyle: { color: tone(s) }, step: s };
    });
    chartOn(box).setOption({
      textStyle: { fontFamily: p.font, color: p.text },
      grid: { left: 12, right: 24, top: 8, bottom: 28, containLabel: true },
      tooltip: {
        backgroundColor: p.surface,
        textStyle: { color: p.text },
        formatter: function (item) {
          var s = item.data.step;
          return names[item.value[0]] + "<br>" + (s.conclusion || s.status) + " · " + seconds(s.duration_seconds);
        },
      },
      xAxis: Object.assign({ type: "value", min: 0, axisLabel: { color: p.muted, formatter: seconds } },
        { splitLine: axisStyle(p).splitLine }),
      yAxis: { type: "category", inverse: true, data: names, axisLabel: { color: p.text, width: 220, overflow: "truncate" },
        axisLine: { lineStyle: { color: p.border } } },
      series: [{
        type: "custom",
        encode: { x: [1, 2], y: 0 },
        data: data,
        renderItem: function (params, api) {
          var y = api.value(0);
          var start = api.coord([api.value(1), y]);
          var end = api.coord([api.value(2), y]);
          var height = api.size([0, 1])[1] * 0.6;
          var rect = { x: start[0], y: start[1] - height / 2, width: Math.max(end[0] - start[0], 2), height: height };
          return { type: "rect", shape: rect, style: api.style() };
        },
      }],
    });
  }

  function drawEdges() {
    document.querySelectorAll("[data-graph]").forEach(function (graph) {
      var svg = graph.querySelector(".graph-edges");
      if (!svg) return;
      while (svg.firstChild) svg.removeChild(svg.firstChild);
      if (getComputedStyle(svg).display === "none") return;
      var box = graph.getBoundingClientRect();
      svg.setAttribute("width", graph.scrollWidth);
      svg.setAttribute("height", graph.scrollHeight);
      graph.querySelectorAll(".node[data-needs]").forEach(function (node) {
        var needs = node.getAttribute("data-needs").split(" ").filter(Boolean);
        var to = node.getBoundingClientRect();
        needs.forEach(function (id) {
          var from = document.getElementById("job-" + id);
          if (!from) return;
          var a = from.getBoundingClientRect();
          var x1 = a.right - box.left + graph.scrollLeft;
          var y1 = a.top + a.height / 2 - box.top;
          var x2 = to.left - box.left + graph.scrollLeft;
          var y2 = to.top + to.height / 2 - box.top;
          var mid = (x1 + x2) / 2;
          var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
          path.setAttribute("d", "M" + x1 + "," + y1 + " C" + mid + "," + y1 + " " + mid + "," + y2 + " " + x2 + "," + y2);
          svg.appendChild(path);
        });
      });
    });
  }

  function followRun() {
    var page = document.getElementById("run-page");
    var live = document.getElementById("run-live");
    if (!page || !live || live.getAttribute("data-live") !== "true" || !window.EventSource) return;
    var runId = page.getAttribute("data-run");
    var source = new EventSource(page.getAttribute("data-stream"));
    var pending = null;
    function onEvent(event) {
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      var id = data.run_id !== undefined ? data.run_id : data.id;
      if (String(id) !== runId || pending) return;
      pending = setTimeout(function () {  // a burst of job events makes one refresh
        pending = null;
        document.body.dispatchEvent(new CustomEvent("nav:run-changed"));
      }, 250);
    }
    source.addEventListener("job-update", onEvent);
    source.addEventListener("pipeline-update", onEvent);
    window.addEventListener("pagehide", function () { source.close(); });
    document.body.addEventListener("htmx:afterSwap", function () {
      var now = document.getElementById("run-live");
      if (now && now.getAttribute("data-live") !== "true") source.close();
    });
  }

  // An empty text filter means "any": leave it out of the URL rather than send "branch=".
  document.addEventListener("htmx:configRequest", function (event) {
    var params = event.detail.parameters;
    Object.keys(params).forEach(function (key) {
      if (params[key] === "" || params[key] === null) delete params[key];
    });
    if (params.days === "7") delete params.days;
  });
  document.querySelectorAll("form[data-nav-filters]").forEach(function (form) {
    form.addEventListener("submit", function () {
      Array.prototype.forEach.call(form.elements, function (field) {
        if ((field.tagName === "INPUT" || field.tagName === "SELECT") && field.name && !field.value) field.disabled = true;
      });
      setTimeout(function () {
        Array.prototype.forEach.call(form.elements, function (field) { field.disabled = false; });
      }, 0);
    });
  });

  function drawAll() {
    charts.forEach(function (c) { if (!c.isDisposed()) c.dispose(); });
    charts = [];
    drawWorkflow();
    drawSteps();
    drawEdges();
  }

  document.body.addEventListener("htmx:afterSettle", drawAll);
  document.addEventListener("cipulse:theme", drawAll);
  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c.resize(); });
    drawEdges();
  });
  drawAll();
  followRun();
})();
