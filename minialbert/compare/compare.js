/* minialbert compare: draws the charts from the JSON in #report-data with the charts of charts.js. */
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const { PALETTE, lineChart } = window.MiniCharts;
  const colour = {};
  D.runs.forEach((label, k) => { colour[label] = PALETTE[k % PALETTE.length]; });

  const box = document.getElementById("curves");
  const names = Object.keys(D.curves);
  if (!names.length) box.innerHTML = '<p class="note">No run here is a pre-training run.</p>';
  names.forEach((name) => {
    for (const [axis, label] of [["steps", "optimizer step"], ["tokens", "tokens seen" + (D.tokens_estimated.length ? " (see note)" : "")]]) {
      const el = document.createElement("div");
      el.className = "chart";
      el.dataset.curve = name;
      el.dataset.axis = axis;
      box.appendChild(el);
      lineChart(el, name + " vs " + (axis === "steps" ? "steps" : "tokens"), name,
        D.curves[name].map((c) => ({ name: c.run, colour: colour[c.run], x: c[axis], values: c.values })),
        label, { zero: false, xName: axis === "steps" ? "step" : "tokens", integerX: axis === "steps" });
    }
  });

  const f1 = D.figure1;
  if (f1.length) {
    lineChart(document.getElementById("chart-l2"), "L2 distance between a layer call's input and output", "mean ‖h_l − h_(l−1)‖₂",
      f1.map((f) => ({ name: f.model, colour: colour[f.model] || PALETTE[0], values: f.l2 })), "layer call l");
    lineChart(document.getElementById("chart-angle"), "Angle between a layer call's input and output", "mean angle (degrees)",
      f1.map((f) => ({ name: f.model, colour: colour[f.model] || PALETTE[0], values: f.angle })), "layer call l");
  } else {
    document.getElementById("chart-l2").innerHTML = '<p class="note">No run has a local model to run.</p>';
  }
})();
