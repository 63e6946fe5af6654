/* Charts of the Overview, Compare and Jobs pages (ECharts), drawn from the JSON the server
   embeds next to each chart; drawn again when htmx swaps the page body in and when the theme
   changes, so colours always follow the CSS variables of base.css. */
(function () {
  "use strict";
  var charts = [];

  function cssColor(name, box) {
    var probe = document.createElement("span");
    probe.hidden = true;
    probe.style.color = "var(" + name + ")";
    box.appendChild(probe);
    var color = getComputedStyle(probe).color;
    probe.remove();
    return color;
  }

  function data(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function base(box) {
    var muted = cssColor("--muted", box);
    var border = cssColor("--border", box);
    return {
      muted: muted,
      border: border,
      option: {
        animationDuration: 300,
        textStyle: { fontFamily: getComputedStyle(document.body).fontFamily },
        legend: { top: 0, right: 0, icon: "roundRect", itemWidth: 10, itemHeight: 10, textStyle: { color: muted, fontSize: 12 } },
        tooltip: {
          trigger: "axis",
          backgroundColor: cssColor("--surface", box),
          borderColor: border,
          textStyle: { color: cssColor("--text", box), fontSize: 13 },
        },
      },
    };
  }

  function mount(box, option) {
    var chart = window.echarts.init(box, null, { renderer: "svg" });
    chart.setOption(option);
    box.dataset.rendered = "true";
    new ResizeObserver(function () { chart.resize(); }).observe(box);
    charts.push(chart);
  }

  function axis(b, values) {
    return {
      type: "category",
      data: values,
      axisTick: { show: false },
      axisLine: { lineStyle: { color: b.border } },
      axisLabel: { color: b.muted, fontSize: 11, hideOverlap: true },
    };
  }

  function valueAxis(b, extra) {
    return Object.assign({
      type: "value",
      axisLabel: { color: b.muted, fontSize: 11 },
      splitLine: { lineStyle: { color: b.border, type: "dashed" } },
    }, extra || {});
  }

  function daily(box) {
    var days = data("daily-data");
    if (!days) return;
    var b = base(box);
    var series = [
      ["Succeeded", "success", "--success"],
      ["Failed", "failure", "--failure"],
      ["Cancelled", "cancelled", "--muted"],
      ["Skipped", "skipped", "--border"],
    ].map(function (s) {
      return {
        name: s[0], type: "bar", stack: "runs", barMaxWidth: 22,
        itemStyle: { color: cssColor(s[2], box) },
        data: days.map(function (d) { return d[s[1]]; }),
      };
    });
    series.push({
      name: "Failure rate", type: "line", yAxisIndex: 1, smooth: true, connectNulls: false,
      symbolSize: 5, itemStyle: { color: cssColor("--running", box) },
      data: days.map(function (d) { return d.failure_rate; }),
    });
    mount(box, Object.assign(b.option, {
      grid: { left: 8, right: 8, top: 40, bottom: 4, containLabel: true },
      xAxis: axis(b, days.map(function (d) { return d.day.slice(5); })),
      yAxis: [valueAxis(b, { minInterval: 1 }), valueAxis(b, { max: 100, axisLabel: { color: b.muted, formatter: "{value}%" }, splitLine: { show: false } })],
      series: series,
    }));
  }

  function compare(box) {
    var c = data("compare-data");
    if (!c) return;
    var b = base(box);
    mount(box, Object.assign(b.option, {
      grid: { left: 8, right: 8, top: 40, bottom: 4, containLabel: true },
      xAxis: axis(b, c.workflows),
      yAxis: valueAxis(b, { axisLabel: { color: b.muted, formatter: "{value}%" } }),
      series: [
        { name: "A", type: "bar", barMaxWidth: 26, itemStyle: { color: cssColor("--muted", box) }, data: c.a },
        { name: "B", type: "bar", barMaxWidth: 26, itemStyle: { color: cssColor("--accent", box) }, data: c.b },
      ],
    }));
  }

  function heatmap(box) {
    var h = data("heatmap-data");
    if (!h) return;
    var b = base(box);
    var cells = [];
    h.rates.forEach(function (row, y) {
      row.forEach(function (v, x) { if (v !== null) cells.push([x, y, v]); });
    });
    var option = b.option;
    option.tooltip = Object.assign(option.tooltip, {
      trigger: "item",
      formatter: function (p) { return h.jobs[p.value[1]] + "<br>" + h.days[p.value[0]] + ": " + p.value[2] + "% failed"; },
    });
    mount(box, Object.assign(option, {
      grid: { left: 8, right: 8, top: 8, bottom: 48, containLabel: true },
      xAxis: Object.assign(axis(b, h.days.map(function (d) { return d.slice(5); })), { splitArea: { show: false } }),
      yAxis: Object.assign(axis(b, h.jobs), { inverse: true }),
      visualMap: {
        min: 0, max: 100, calculable: false, orient: "horizontal", left: "center", bottom: 0,
        itemHeight: 120, textStyle: { color: b.muted },
        inRange: { color: [cssColor("--success-bg", box), cssColor("--running", box), cssColor("--failure", box)] },
      },
      series: [{ name: "Failure rate", type: "heatmap", data: cells, itemStyle: { borderColor: cssColor("--surface", box), borderWidth: 1 } }],
    }));
  }

  function draw() {
    if (!window.echarts) return;
    charts.forEach(function (c) { c.dispose(); });
    charts = [];
    [["daily-chart", daily], ["compare-chart", compare], ["jobs-heatmap", heatmap]].forEach(function (pair) {
      var box = document.getElementById(pair[0]);
      if (box) pair[1](box);
    });
  }

  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("cipulse:theme", draw);
  document.body.addEventListener("htmx:afterSwap", draw);
  // Without htmx, a filter change submits the form (a plain GET): the page still works.
})();
