/* minialbert: SVG line charts shared by the inspect and compare reports. Plain JS, no library, no network. */
"use strict";
window.MiniCharts = (function () {
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const fmt = (v, digits) => (Math.abs(v) >= 1e4 ? v.toExponential(2) : v.toFixed(digits));
  // 1234567 -> "1.23M": tick labels for step and token counts
  const compact = (v) => {
    const a = Math.abs(v);
    for (const [d, s] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]]) if (a >= d) return +(v / d).toPrecision(3) + s;
    return String(+v.toPrecision(6));
  };

  function ticks(lo, hi, count) {
    const span = hi - lo || 1;
    const raw = span / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const r = raw / mag;
    const step = (r >= 7.5 ? 10 : r >= 3.5 ? 5 : r >= 1.5 ? 2 : 1) * mag;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }

  const PALETTE = ["#1f5fbf", "#d1495b", "#2a9d8f", "#e9a23b", "#6a4c93", "#577590"];

  // series: [{name, colour, dash, values (y of x = 1, 2, ...) or x (x of each value)}]
  // opts: xName (hover text, default "layer call"), zero (y axis from 0, default true),
  //       integerX (only integer x ticks, default: true without series x), maxMarkers (default 200)
  function lineChart(el, title, yLabel, series, xLabel, opts) {
    opts = opts || {};
    const W = 560, H = 320, m = { l: 60, r: 16, t: 30, b: 64 };
    const xs = (s) => s.x || s.values.map((_, k) => k + 1);
    let xmin = Infinity, xmax = -Infinity;
    series.forEach((s) => xs(s).forEach((v) => { xmin = Math.min(xmin, v); xmax = Math.max(xmax, v); }));
    if (!isFinite(xmin)) { xmin = 1; xmax = 1; }
    const zero = opts.zero !== false;
    let ymax = zero ? 0 : -Infinity, ymin = zero ? 0 : Infinity;
    series.forEach((s) => s.values.forEach((v) => { ymax = Math.max(ymax, v); ymin = Math.min(ymin, v); }));
    if (!isFinite(ymin)) { ymin = 0; ymax = 1; }
    if (zero) ymax = ymax * 1.08 || 1;
    else { const pad = (ymax - ymin) * 0.06 || Math.abs(ymax) * 0.1 || 1; ymin -= pad; ymax += pad; }
    const x = (k) => m.l + (xmax === xmin ? 0.5 : (k - xmin) / (xmax - xmin)) * (W - m.l - m.r);
    const y = (v) => H - m.b - (v - ymin) / (ymax - ymin) * (H - m.t - m.b);
    const parts = ['<svg viewBox="0 0 ' + W + " " + H + '" role="img">',
      '<text x="' + m.l + '" y="18" font-weight="600">' + esc(title) + "</text>"];
    const yt = ticks(ymin, ymax, 5);
    const digits = yt.length > 1 ? Math.max(0, -Math.floor(Math.log10(yt[1] - yt[0]) + 1e-9)) : 2;
    yt.forEach((v) => {
      parts.push('<line class="gridline" x1="' + m.l + '" x2="' + (W - m.r) + '" y1="' + y(v) + '" y2="' + y(v) + '"/>');
      parts.push('<text x="' + (m.l - 6) + '" y="' + (y(v) + 4) + '" text-anchor="end">' + v.toFixed(digits) + "</text>");
    });
    const integerX = opts.integerX !== undefined ? opts.integerX : !series.some((s) => s.x);
    let xt = ticks(xmin, xmax, integerX ? Math.min(xmax - xmin + 1, 12) : 6);
    if (integerX) xt = xt.filter((k) => Number.isInteger(k));
    xt.forEach((k) => parts.push('<text x="' + x(k) + '" y="' + (H - m.b + 16) + '" text-anchor="middle">' + (integerX ? k : compact(k)) + "</text>"));
    parts.push('<line class="axis" x1="' + m.l + '" x2="' + (W - m.r) + '" y1="' + (H - m.b) + '" y2="' + (H - m.b) + '"/>');
    parts.push('<line class="axis" x1="' + m.l + '" x2="' + m.l + '" y1="' + m.t + '" y2="' + (H - m.b) + '"/>');
    parts.push('<text x="' + ((m.l + W - m.r) / 2) + '" y="' + (H - m.b + 32) + '" text-anchor="middle">' + esc(xLabel) + "</text>");
    parts.push('<text transform="translate(14,' + ((m.t + H - m.b) / 2) + ') rotate(-90)" text-anchor="middle">' + esc(yLabel) + "</text>");
    const xName = opts.xName || "layer call", maxMarkers = opts.maxMarkers || 200;
    series.forEach((s, si) => {
      const sx = xs(s);
      const pts = s.values.map((v, k) => x(sx[k]) + "," + y(v)).join(" ");
      parts.push('<polyline fill="none" stroke="' + s.colour + '" stroke-width="2"' + (s.dash ? ' stroke-dasharray="4 4"' : "") + ' points="' + pts + '"/>');
      if (!s.dash && s.values.length <= maxMarkers) {
        s.values.forEach((v, k) => parts.push('<circle cx="' + x(sx[k]) + '" cy="' + y(v) + '" r="3" fill="' + s.colour + '"><title>' +
          esc(s.name + ": " + xName + " " + (integerX ? sx[k] : compact(sx[k])) + ": " + fmt(v, 4)) + "</title></circle>"));
      }
      const lx = m.l + (si % 2) * (W - m.l - m.r) / 2, ly = H - 12 - Math.floor(si / 2) * 14;
      parts.push('<line x1="' + lx + '" x2="' + (lx + 18) + '" y1="' + (ly - 4) + '" y2="' + (ly - 4) + '" stroke="' + s.colour + '" stroke-width="2"' + (s.dash ? ' stroke-dasharray="4 4"' : "") + "/>");
      parts.push('<text x="' + (lx + 24) + '" y="' + ly + '">' + esc(s.name) + "</text>");
    });
    parts.push("</svg>");
    el.innerHTML = parts.join("");
  }

  return { esc: esc, fmt: fmt, compact: compact, ticks: ticks, PALETTE: PALETTE, lineChart: lineChart };
})();
