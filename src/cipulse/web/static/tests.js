/* The test pages: filters that apply on change, and the history chart of one test. */
(function () {
  "use strict";

  document.querySelectorAll("form.filters").forEach(function (form) {
    form.addEventListener("change", function (event) {
      if (event.target.matches("[data-autosubmit]")) form.requestSubmit();
    });
    // Leave empty fields out of the URL rather than send "q=".
    form.addEventListener("submit", function () {
      Array.prototype.forEach.call(form.elements, function (field) {
        if (field.name && field.value === "" && field.type !== "radio") field.disabled = true;
      });
    });
  });

  var box = document.getElementById("test-chart");
  var dataNode = document.getElementById("test-chart-data");
  if (!box || !dataNode) return;
  var points = JSON.parse(dataNode.textContent);

  function cssColor(name) {
    // Theme colours are light-dark() values; ECharts needs the colour they resolve to.
    var probe = document.createElement("span");
    probe.hidden = true;
    box.appendChild(probe);
    probe.style.color = "var(" + name + ")";
    var colour = getComputedStyle(probe).color;
    box.removeChild(probe);
    return colour;
  }

  function render() {
    if (!window.echarts) return;
    var colours = {
      passed: cssColor("--success"),
      failed: cssColor("--failure"),
      error: cssColor("--failure"),
      skipped: cssColor("--muted"),
      flaky: cssColor("--running"),
    };
    var muted = cssColor("--muted");
    var border = cssColor("--border");
    var chart = window.echarts.init(box, null, { renderer: "svg" });
    new ResizeObserver(function () {
      chart.resize();
    }).observe(box);
    chart.setOption({
      animationDuration: 300,
      textStyle: { fontFamily: getComputedStyle(document.body).fontFamily },
      grid: { left: 8, right: 8, top: 16, bottom: 4, containLabel: true },
      tooltip: {
        trigger: "item",
        backgroundColor: cssColor("--surface"),
        borderColor: border,
        textStyle: { color: cssColor("--text"), fontSize: 13 },
        formatter: function (item) {
          var p = points[item.dataIndex];
          var when = new Date(p.at).toLocaleString();
          return (
            (p.flaky ? "flaky (passed on retry)" : p.outcome) +
            " · " + p.duration.toFixed(3) + " s<br>" + when +
            (p.label ? "<br>" + p.label : "") + (p.commit ? " · " + p.commit : "")
          );
        },
      },
      xAxis: {
        type: "category",
        data: points.map(function (p) {
          return p.label || new Date(p.at).toLocaleDateString();
        }),
        axisTick: { show: false },
        axisLine: { lineStyle: { color: border } },
        axisLabel: { color: muted, fontSize: 11, hideOverlap: true },
      },
      yAxis: {
        type: "value",
        axisLabel: {
          color: muted,
          fontSize: 11,
          formatter: function (value) {
            return value < 1 ? Math.round(value * 1000) + " ms" : value + " s";
          },
        },
        splitLine: { lineStyle: { color: border, type: "dashed" } },
      },
      series: [
        {
          type: "bar",
          barMaxWidth: 18,
          data: points.map(function (p) {
            return {
              value: p.duration,
              itemStyle: {
                color: colours[p.flaky ? "flaky" : p.outcome],
                borderRadius: [3, 3, 0, 0],
              },
            };
          }),
        },
      ],
    });
  }

  if (window.echarts) render();
  else window.addEventListener("load", render);
})();
