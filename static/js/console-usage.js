/* Console usage page: draws the charts (Chart.js, vendored) from the JSON the polled fragment carries, and
   redraws them in place whenever htmx swaps a fresh fragment in (every 5 s). Each model has the colour the
   server gave it (its place in the catalogue), so colours do not change between loads or pages. */
(function () {
  "use strict";

  var OTHER = "#94a3b8";
  var LATENCY = "#0ea5e9";
  var LATENCY_TAIL = "#8b5cf6";
  var ERRORS = "#ef4444";
  var charts = {};

  function data() {
    var node = document.getElementById("usage-data");
    return node ? JSON.parse(node.textContent) : null;
  }

  function colorOf(report, model) { return (report.colors && report.colors[model]) || OTHER; }

  function textColor() {
    return getComputedStyle(document.documentElement).getPropertyValue("--color-text-muted").trim() || "#4a5060";
  }

  function gridColor() {
    return getComputedStyle(document.documentElement).getPropertyValue("--color-border").trim() || "#e4e6eb";
  }

  function axes(extra) {
    var base = {
      x: { stacked: true, grid: { display: false }, ticks: { color: textColor(), maxRotation: 0, autoSkip: true } },
      y: { stacked: true, beginAtZero: true, ticks: { precision: 0, color: textColor() }, grid: { color: gridColor() } }
    };
    return Object.assign(base, extra || {});
  }

  function legend() { return { position: "bottom", labels: { boxWidth: 12, color: textColor() } }; }

  function tokensChart(report) {
    return {
      type: "bar",
      data: {
        labels: report.series.labels,
        datasets: report.series.datasets.map(function (d) {
          return { label: d.model, data: d.tokens, backgroundColor: colorOf(report, d.model), borderRadius: 3, maxBarThickness: 28 };
        })
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: legend() }, scales: axes() }
    };
  }

  function healthChart(report) {
    var s = report.series;
    return {
      type: "line",
      data: {
        labels: s.labels,
        datasets: [
          { label: "Median latency (ms)", data: s.latency_p50, borderColor: LATENCY, backgroundColor: LATENCY, yAxisID: "y", spanGaps: true, tension: 0.2, pointRadius: 2 },
          { label: "95th percentile (ms)", data: s.latency_p95, borderColor: LATENCY_TAIL, backgroundColor: LATENCY_TAIL, borderDash: [4, 3], yAxisID: "y", spanGaps: true, tension: 0.2, pointRadius: 2 },
          { label: "Error rate (%)", data: s.error_rate, borderColor: ERRORS, backgroundColor: ERRORS, yAxisID: "rate", spanGaps: true, tension: 0.2, pointRadius: 3 }
        ]
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: legend() },
        scales: {
          x: { grid: { display: false }, ticks: { color: textColor(), maxRotation: 0, autoSkip: true } },
          y: { beginAtZero: true, position: "left", title: { display: true, text: "ms", color: textColor() }, ticks: { color: textColor() }, grid: { color: gridColor() } },
          rate: { beginAtZero: true, suggestedMax: 10, max: 100, position: "right", title: { display: true, text: "% failed", color: textColor() }, ticks: { color: textColor() }, grid: { display: false } }
        }
      }
    };
  }

  function modelsChart(report) {
    return {
      type: "doughnut",
      data: {
        labels: report.by_model.map(function (r) { return r.model; }),
        datasets: [{ data: report.by_model.map(function (r) { return r.tokens; }),
                     backgroundColor: report.by_model.map(function (r) { return colorOf(report, r.model); }) }]
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
                 plugins: { legend: { position: "right", labels: { boxWidth: 12, color: textColor() } } } }
    };
  }

  function usersChart(report) {
    return {
      type: "bar",
      data: {
        labels: report.by_user.map(function (r) { return r.user; }),
        datasets: [{ label: "Tokens", data: report.by_user.map(function (r) { return r.tokens; }),
                     backgroundColor: report.by_user.map(function (r) { return r.kind === "key" ? "#14b8a6" : r.kind === "rest" ? OTHER : "#4f46e5"; }),
                     borderRadius: 3, maxBarThickness: 22 }]
      },
      options: { indexAxis: "y", responsive: true, maintainAspectRatio: false, animation: false,
                 plugins: { legend: { display: false } },
                 scales: { x: { beginAtZero: true, ticks: { precision: 0, color: textColor() }, grid: { color: gridColor() } },
                           y: { grid: { display: false }, ticks: { color: textColor() } } } }
    };
  }

  function paintSwatches(root) {
    (root || document).querySelectorAll(".swatch[data-color]").forEach(function (el) {
      el.style.backgroundColor = el.dataset.color;  // CSSOM, which the Content-Security-Policy allows
    });
  }

  function draw() {
    var report = data();
    paintSwatches();
    if (!report || !window.Chart) return;
    var wanted = {
      "chart-tokens": tokensChart(report),
      "chart-health": healthChart(report),
      "chart-models": modelsChart(report),
      "chart-users": usersChart(report)
    };
    Object.keys(wanted).forEach(function (id) {
      var canvas = document.getElementById(id);
      if (!canvas) return;
      if (charts[id]) {
        charts[id].data = wanted[id].data;
        charts[id].update("none");
      } else {
        charts[id] = new window.Chart(canvas, wanted[id]);
      }
    });
  }

  function setView(view) {
    var page = document.getElementById("usage-page");
    if (!page) return;
    page.dataset.view = view;
    document.querySelectorAll("[data-usage-view]").forEach(function (button) {
      var on = button.dataset.usageView === view;
      button.classList.toggle("is-active", on);
      button.setAttribute("aria-pressed", on ? "true" : "false");
    });
    try { localStorage.setItem("convosuite.usageView", view); } catch (e) { /* private mode */ }
    if (view === "charts") draw();
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest("[data-usage-view]");
    if (button) setView(button.dataset.usageView);
  });

  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail.target && e.detail.target.id === "usage-live") draw();
  });

  function start() {
    var saved = null;
    try { saved = localStorage.getItem("convosuite.usageView"); } catch (e) { /* private mode */ }
    setView(saved === "tables" ? "tables" : "charts");
    draw();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
