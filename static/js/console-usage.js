/* Console usage page: draws the charts (Chart.js, vendored) from the JSON the polled fragment carries, and
   redraws them in place whenever htmx swaps a fresh fragment in (every 5 s). */
(function () {
  "use strict";

  var PALETTE = ["#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#14b8a6", "#64748b"];
  var charts = {};

  function data() {
    var node = document.getElementById("usage-data");
    return node ? JSON.parse(node.textContent) : null;
  }

  function color(i) { return PALETTE[i % PALETTE.length]; }

  function stacked(series) {
    return {
      labels: series.labels,
      datasets: series.datasets.map(function (d, i) {
        return { label: d.model, data: d.tokens, backgroundColor: color(i), borderRadius: 3, maxBarThickness: 28 };
      })
    };
  }

  function barOptions(stack) {
    return {
      responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      scales: {
        x: { stacked: stack, grid: { display: false } },
        y: { stacked: stack, beginAtZero: true, ticks: { precision: 0 } }
      }
    };
  }

  function configs(report) {
    return {
      "chart-today": { type: "bar", data: stacked(report.today_by_hour), options: barOptions(true) },
      "chart-month": { type: "bar", data: stacked(report.month_by_day), options: barOptions(true) },
      "chart-models": {
        type: "doughnut",
        data: {
          labels: report.by_model.map(function (r) { return r.model; }),
          datasets: [{ data: report.by_model.map(function (r) { return r.tokens; }),
                       backgroundColor: report.by_model.map(function (_, i) { return color(i); }) }]
        },
        options: { responsive: true, maintainAspectRatio: false, animation: false,
                   plugins: { legend: { position: "right" } } }
      },
      "chart-users": {
        type: "bar",
        data: {
          labels: report.by_user.map(function (r) { return r.user; }),
          datasets: [{ label: "Tokens", data: report.by_user.map(function (r) { return r.tokens; }),
                       backgroundColor: color(0), borderRadius: 3, maxBarThickness: 22 }]
        },
        options: { indexAxis: "y", responsive: true, maintainAspectRatio: false, animation: false,
                   plugins: { legend: { display: false } },
                   scales: { x: { beginAtZero: true, ticks: { precision: 0 } }, y: { grid: { display: false } } } }
      }
    };
  }

  function draw() {
    var report = data();
    if (!report || !window.Chart) return;
    var wanted = configs(report);
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
