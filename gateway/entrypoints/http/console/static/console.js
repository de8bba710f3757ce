// The console's enhancements; every page works without them.
(function () {
  "use strict";
  var charts = {};

  function drawCharts(root) {
    if (typeof Chart === "undefined") { return; }
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var data = JSON.parse(canvas.dataset.chart);
      if (charts[canvas.id]) { charts[canvas.id].destroy(); }
      charts[canvas.id] = new Chart(canvas, {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: [
            { label: canvas.dataset.labelQueued, data: data.queued, backgroundColor: "#1f5fa8" },
            { label: canvas.dataset.labelDead, data: data.dead, backgroundColor: "#a3281e" }
          ]
        },
        options: { animation: false, responsive: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.target); });
})();
