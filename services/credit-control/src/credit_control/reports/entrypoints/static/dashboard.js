// Draws the arrears-rate trend against the 0.5% target from the JSON the page carries.
(function () {
  const canvas = document.getElementById("arrears-trend");
  const source = document.getElementById("trend-data");
  if (!canvas || !source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const chart = new Chart(canvas, {
    type: "line",
    data: {
      labels: data.labels,
      datasets: [
        { label: "arrears rate 欠费率 (%)", data: data.rates, borderColor: "#0b5394",
          backgroundColor: "#0b5394", spanGaps: true, tension: 0.1 },
        { label: "target 0.5%", data: data.labels.map(() => data.target), borderColor: "#b42318",
          borderDash: [6, 4], pointRadius: 0, fill: false },
      ],
    },
    options: {
      animation: false,
      scales: { y: { beginAtZero: true, title: { display: true, text: "%" } } },
    },
  });
  // What the browser test reads: the chart exists and carries the points it was given.
  canvas.dataset.rendered = "true";
  canvas.dataset.points = String(data.rates.filter((v) => v !== null).length);
  window.arrearsTrend = chart;
})();
