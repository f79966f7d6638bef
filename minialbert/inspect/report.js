/* minialbert inspect: draws the report from the JSON in #report-data. Plain JS, no library, no network. */
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const $ = (id) => document.getElementById(id);
  const tokens = D.tokens;
  const n = tokens.length;
  const A = D.attention;
  const LINES_LIMIT = 128; // token-to-token lines are drawn up to this many tokens
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const tokenName = (k) => k + " " + tokens[k].piece;
  const fmt = (v, digits) => (Math.abs(v) >= 1e4 ? v.toExponential(2) : v.toFixed(digits));
  const short = (v) => (v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(3).replace(/^0/, ""));

  // ------------------------------------------------------------------ data
  // Arrays arrive as base64 little-endian unsigned integers: value = lo + q * (hi - lo) / (2^bits - 1).
  function decode(q) {
    const bin = atob(q.data);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const ints = q.bits === 16 ? new Uint16Array(bytes.buffer) : bytes;
    const step = (q.hi - q.lo) / (q.bits === 16 ? 65535 : 255);
    const out = new Float32Array(ints.length);
    for (let i = 0; i < ints.length; i++) out[i] = q.lo + ints[i] * step;
    return out;
  }
  const att = decode(A);
  const sim = decode(D.similarity);
  const vecE = decode(D.vectors.e);
  const vecH = decode(D.vectors.h0);
  const depths = D.similarity.shape[0];

  // ---------------------------------------------------------------- colours
  function sequential(t) { // 0 white -> 1 dark blue
    t = Math.max(0, Math.min(1, t));
    return [Math.round(255 - t * 247), Math.round(255 - t * 207), Math.round(255 - t * 148)];
  }
  function diverging(t) { // -1 blue, 0 white, +1 red
    t = Math.max(-1, Math.min(1, t));
    if (t >= 0) return [255, Math.round(255 - t * 205), Math.round(255 - t * 215)];
    return [Math.round(255 + t * 215), Math.round(255 + t * 150), 255];
  }
  const css = (c) => "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")";

  function paint(canvas, rows, cols, value, colour) { // one canvas pixel per cell; CSS scales it up
    canvas.width = cols;
    canvas.height = rows;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(cols, rows);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        const c = colour(value(i, j));
        const o = 4 * (i * cols + j);
        img.data[o] = c[0]; img.data[o + 1] = c[1]; img.data[o + 2] = c[2]; img.data[o + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
  }

  function maxOf(a) { let m = 0; for (let i = 0; i < a.length; i++) if (a[i] > m) m = a[i]; return m || 1; }

  // SVG charts: charts.js, shared with the `minialbert compare` report
  const { PALETTE, lineChart } = window.MiniCharts;

  // --------------------------------------------------------- 2. Figure 1
  const curves = D.figure1.map((f, k) => ({ name: f.model, colour: PALETTE[k % PALETTE.length], l2: f.l2, angle: f.angle }));
  lineChart($("chart-l2"), "L2 distance between a layer call's input and output", "mean ‖h_l − h_(l−1)‖₂",
    curves.map((c) => ({ name: c.name, colour: c.colour, values: c.l2 })), "layer call l");
  lineChart($("chart-angle"), "Angle between a layer call's input and output", "mean angle (degrees)",
    curves.map((c) => ({ name: c.name, colour: c.colour, values: c.angle })), "layer call l");

  // ------------------------------------------------------------- 3. attention
  const heads = A.heads, calls = A.calls;
  const byHead = A.mode === "heads";
  const meanCache = {};
  function attMap(layer, head) { // Float32Array of n*n, rows = queries
    if (!byHead) return att.subarray(layer * n * n, (layer + 1) * n * n);
    if (head >= 0) { const o = (layer * heads + head) * n * n; return att.subarray(o, o + n * n); }
    if (!meanCache[layer]) {
      const m = new Float32Array(n * n);
      for (let h = 0; h < heads; h++) { const o = (layer * heads + h) * n * n; for (let i = 0; i < n * n; i++) m[i] += att[o + i] / heads; }
      meanCache[layer] = m;
    }
    return meanCache[layer];
  }
  const weightsLabel = (l) => "call " + (l + 1) + " · weights " + A.weights[l];
  // One colour scale for every map (white 0 -> dark = the largest probability in any map), so maps
  // compare at a glance; the hover text gives exact values.
  const attMax = maxOf(att);
  const resolution = (q) => q.bits + "-bit values, step " + ((q.hi - q.lo) / (q.bits === 16 ? 65535 : 255)).toExponential(1);
  $("resolution").textContent = "Stored in this page as " + resolution(A) + " (attention) and " + resolution(D.similarity) +
    " (cosine); minialbert.inspect.analyze() returns the exact numbers.";

  const grid = $("grid");
  const cells = [];
  function addLabel(text, cls) { const d = document.createElement("div"); d.className = cls; d.textContent = text; grid.appendChild(d); }
  function addCell(layer, head, title) {
    const c = document.createElement("canvas");
    c.className = "cell";
    c.dataset.layer = layer; c.dataset.head = head;
    c.title = title;
    const map = attMap(layer, head);
    paint(c, n, n, (i, j) => map[i * n + j] / attMax, sequential);
    c.tabIndex = 0; // reachable with Tab; Enter or Space opens it like a click
    c.addEventListener("click", () => select(layer, head));
    c.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(layer, head); } });
    grid.appendChild(c);
    cells.push(c);
  }
  if (byHead) {
    $("grid-caption").textContent = "One heatmap per layer call (row) and head (column): " + calls + " × " + heads +
      ". Rows are query tokens, columns key tokens; white is 0, dark is " + attMax.toFixed(3) +
      " (the largest probability in any map). Click a map to open it below. Layer calls with the same weights number run the same parameters.";
    grid.style.gridTemplateColumns = "max-content repeat(" + heads + ", minmax(14px, 64px))";
    addLabel("", "collabel");
    for (let h = 0; h < heads; h++) addLabel("head " + h, "collabel");
    for (let l = 0; l < calls; l++) {
      addLabel(weightsLabel(l), "rowlabel");
      for (let h = 0; h < heads; h++) addCell(l, h, "layer call " + (l + 1) + ", head " + h);
    }
  } else {
    $("grid-caption").textContent = "Too many tokens (" + n + ") for one map per head: one map per layer call, the mean over its " +
      heads + " heads (white 0, dark " + attMax.toFixed(3) + "). Click a map to open it below; the per-head statistics further down cover every head.";
    grid.style.gridTemplateColumns = "max-content repeat(" + calls + ", minmax(14px, 64px))";
    addLabel("", "collabel");
    for (let l = 0; l < calls; l++) addLabel("call " + (l + 1), "collabel");
    addLabel("mean of heads", "rowlabel");
    for (let l = 0; l < calls; l++) addCell(l, -1, "layer call " + (l + 1) + ", mean of heads");
  }

  // the large view: selectors, lines, heatmap
  const selLayer = $("sel-layer"), selHead = $("sel-head");
  for (let l = 0; l < calls; l++) selLayer.add(new Option(weightsLabel(l), String(l)));
  selHead.add(new Option("mean of heads", "-1"));
  if (byHead) for (let h = 0; h < heads; h++) selHead.add(new Option("head " + h, String(h)));
  selHead.disabled = !byHead;

  const showLines = n <= LINES_LIMIT;
  const ROW = 18, LINE_W = 170;
  const left = $("lines-left"), right = $("lines-right"), linesCanvas = $("lines-canvas");
  const leftSpans = [], rightSpans = [];
  if (showLines) {
    for (let k = 0; k < n; k++) {
      for (const [col, list, side] of [[left, leftSpans, "left"], [right, rightSpans, "right"]]) {
        const s = document.createElement("span");
        s.textContent = tokens[k].piece;
        s.style.height = s.style.lineHeight = ROW + "px";
        s.addEventListener("mouseenter", () => focusToken(side, k));
        s.addEventListener("mouseleave", () => focusToken(null, -1));
        col.appendChild(s);
        list.push(s);
      }
    }
    linesCanvas.width = LINE_W;
    linesCanvas.height = n * ROW;
    linesCanvas.style.width = LINE_W + "px";
    linesCanvas.style.height = n * ROW + "px";
  } else {
    $("lines").classList.add("hidden");
  }

  let current = { layer: 0, head: byHead ? 0 : -1, map: null };
  function drawLines(focusSide, focusK) {
    if (!showLines) return;
    const ctx = linesCanvas.getContext("2d");
    ctx.clearRect(0, 0, linesCanvas.width, linesCanvas.height);
    ctx.lineWidth = 1.5;
    const map = current.map, mx = attMax;
    for (let i = 0; i < n; i++) {
      if (focusSide === "left" && i !== focusK) continue;
      for (let j = 0; j < n; j++) {
        if (focusSide === "right" && j !== focusK) continue;
        const a = map[i * n + j] / mx;
        if (a < 0.02) continue;
        ctx.strokeStyle = focusSide ? "rgba(214,98,20," + a.toFixed(3) + ")" : "rgba(31,95,191," + a.toFixed(3) + ")";
        ctx.beginPath();
        ctx.moveTo(0, i * ROW + ROW / 2);
        ctx.lineTo(LINE_W, j * ROW + ROW / 2);
        ctx.stroke();
      }
    }
  }
  function focusToken(side, k) {
    leftSpans.forEach((s) => s.classList.remove("hot", "dim"));
    rightSpans.forEach((s) => s.classList.remove("hot", "dim"));
    if (side) {
      const [own, other] = side === "left" ? [leftSpans, rightSpans] : [rightSpans, leftSpans];
      own.forEach((s, i) => s.classList.add(i === k ? "hot" : "dim"));
      let best = 0;
      for (let j = 1; j < n; j++) if (weight(side, k, j) > weight(side, k, best)) best = j;
      other[best].classList.add("hot");
      $("big-status").textContent = (side === "left" ? "query " : "key ") + tokenName(k) + ": strongest link " +
        tokenName(best) + " (" + weight(side, k, best).toFixed(4) + ")";
    } else {
      $("big-status").textContent = "";
    }
    drawLines(side, k);
  }
  const weight = (side, k, j) => (side === "left" ? current.map[k * n + j] : current.map[j * n + k]);

  const big = $("big-heatmap");
  function drawBig() {
    current.map = attMap(current.layer, current.head);
    paint(big, n, n, (i, j) => current.map[i * n + j] / attMax, sequential);
    big.style.width = big.style.height = Math.min(480, Math.max(240, n * 8)) + "px";
    big.dataset.layer = current.layer; big.dataset.head = current.head;
    $("big-max").textContent = attMax.toFixed(4) + " (the largest probability in any map, as in the grid); this map's largest is " +
      maxOf(current.map).toFixed(4);
    drawLines(null, -1);
  }
  big.addEventListener("mousemove", (ev) => {
    const r = big.getBoundingClientRect();
    const j = Math.min(n - 1, Math.floor((ev.clientX - r.left) / r.width * n));
    const i = Math.min(n - 1, Math.floor((ev.clientY - r.top) / r.height * n));
    if (i < 0 || j < 0) return;
    $("big-status").textContent = "query " + tokenName(i) + " → key " + tokenName(j) + ": " + current.map[i * n + j].toFixed(4);
    leftSpans.forEach((s, k) => s.classList.toggle("hot", k === i));
    rightSpans.forEach((s, k) => s.classList.toggle("hot", k === j));
  });
  big.addEventListener("mouseleave", () => focusToken(null, -1));

  function select(layer, head) {
    current.layer = layer; current.head = head;
    selLayer.value = String(layer); selHead.value = String(head);
    cells.forEach((c) => c.classList.toggle("selected", +c.dataset.layer === layer && +c.dataset.head === head));
    drawBig();
  }
  selLayer.addEventListener("change", () => select(+selLayer.value, current.head));
  selHead.addEventListener("change", () => select(current.layer, +selHead.value));

  // [CLS] / [SEP] share per layer call
  const meanOverHeads = (rows) => rows.map((r) => r.reduce((a, b) => a + b, 0) / r.length);
  lineChart($("chart-special"), "Share of attention on [CLS] and [SEP]", "mean attention probability", [
    { name: "[CLS]", colour: PALETTE[0], values: meanOverHeads(D.stats.cls) },
    { name: "[SEP]", colour: PALETTE[1], values: meanOverHeads(D.stats.sep) },
    { name: "uniform (1/n)", colour: "#8a93a3", dash: true, values: D.stats.cls.map(() => 1 / n) },
  ], "layer call l");

  // per-head statistics
  const statGrid = $("stat-grid");
  function drawStats() {
    const key = $("sel-stat").value;
    const rows = D.stats[key];
    let lo = Infinity, hi = -Infinity;
    rows.forEach((r) => r.forEach((v) => { lo = Math.min(lo, v); hi = Math.max(hi, v); }));
    statGrid.innerHTML = "";
    statGrid.style.gridTemplateColumns = "max-content repeat(" + heads + ", minmax(18px, 44px))";
    const add = (text, cls, t, title) => {
      const d = document.createElement("div");
      d.textContent = text;
      if (cls) d.className = cls;
      if (t !== undefined) { d.style.background = css(sequential(t)); d.style.color = t > 0.55 ? "#fff" : "#1d2330"; }
      if (title) d.title = title;
      statGrid.appendChild(d);
    };
    add("", "label");
    for (let h = 0; h < heads; h++) add("h" + h, "label");
    rows.forEach((r, l) => {
      add("call " + (l + 1), "label");
      r.forEach((v, h) => add(heads <= 24 ? short(v) : "", "", (v - lo) / ((hi - lo) || 1),
        "layer call " + (l + 1) + ", head " + h + ": " + v.toFixed(4)));
    });
    $("stat-status").textContent = "from " + lo.toFixed(3) + " (white) to " + hi.toFixed(3) + " (dark)";
  }
  $("sel-stat").addEventListener("change", drawStats);

  // --------------------------------------------- 1 + 4. the chosen token
  const cfg = D.config;
  function strip(canvas, data, offset, width, normEl) {
    let mx = 0, sq = 0;
    for (let d = 0; d < width; d++) { const v = data[offset + d]; mx = Math.max(mx, Math.abs(v)); sq += v * v; }
    paint(canvas, 1, width, (i, d) => data[offset + d] / (mx || 1), diverging);
    normEl.textContent = "‖·‖ = " + Math.sqrt(sq).toFixed(3);
  }

  const selToken = $("sel-token");
  tokens.forEach((t, k) => selToken.add(new Option(tokenName(k), String(k))));
  const simCanvas = $("sim-heatmap");
  const LABEL_W = 96;
  let simGeom = { cw: 8, rh: 18, top: 0 };
  function drawSimilarity(k) {
    const cw = Math.max(4, Math.min(28, Math.floor(960 / n)));
    const rh = 18, top = cw >= 12 ? 70 : 4;
    simGeom = { cw: cw, rh: rh, top: top };
    simCanvas.width = LABEL_W + n * cw;
    simCanvas.height = top + depths * rh;
    const ctx = simCanvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, simCanvas.width, simCanvas.height);
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#1d2330";
    for (let d = 0; d < depths; d++) {
      ctx.fillText(d === 0 ? "0 projection" : "call " + d, 4, top + d * rh + 13);
      for (let j = 0; j < n; j++) {
        ctx.fillStyle = css(diverging(sim[(d * n + k) * n + j]));
        ctx.fillRect(LABEL_W + j * cw, top + d * rh, cw, rh);
      }
      ctx.fillStyle = "#1d2330";
    }
    ctx.strokeStyle = "#1d2330";
    ctx.strokeRect(LABEL_W + k * cw + 0.5, top + 0.5, cw - 1, depths * rh - 1);
    if (cw >= 12) {
      for (let j = 0; j < n; j++) {
        ctx.save();
        ctx.translate(LABEL_W + j * cw + cw / 2 + 4, top - 4);
        ctx.rotate(-Math.PI / 3);
        ctx.fillStyle = j === k ? "#d1495b" : "#1d2330";
        ctx.fillText(tokens[j].piece.slice(0, 10), 0, 0);
        ctx.restore();
      }
    }
  }
  simCanvas.addEventListener("mousemove", (ev) => {
    const r = simCanvas.getBoundingClientRect();
    const px = (ev.clientX - r.left) * simCanvas.width / r.width, py = (ev.clientY - r.top) * simCanvas.height / r.height;
    const j = Math.floor((px - LABEL_W) / simGeom.cw), d = Math.floor((py - simGeom.top) / simGeom.rh);
    if (j < 0 || j >= n || d < 0 || d >= depths) { $("sim-status").textContent = ""; return; }
    const k = +selToken.value;
    $("sim-status").textContent = "depth " + d + ": cos(" + tokenName(k) + ", " + tokenName(j) + ") = " + sim[(d * n + k) * n + j].toFixed(4);
  });

  const tokenRows = Array.from(document.querySelectorAll("#tokens tbody tr"));
  function chooseToken(k) {
    selToken.value = String(k);
    tokenRows.forEach((tr, i) => tr.classList.toggle("chosen", i === k));
    $("vec-token").textContent = tokenName(k);
    strip($("strip-e"), vecE, k * cfg.E, cfg.E, $("norm-e"));
    strip($("strip-h"), vecH, k * cfg.H, cfg.H, $("norm-h"));
    drawSimilarity(k);
  }
  tokenRows.forEach((tr, i) => tr.addEventListener("click", () => chooseToken(i)));
  selToken.addEventListener("change", () => chooseToken(+selToken.value));

  // -------------------------------------------------------- 5. parameters
  function paramChart(el) {
    const parts = D.params;
    const W = 900, H = 170, m = { l: 100, r: 110 };
    const totals = [parts.reduce((a, p) => a + p.albert, 0), parts.reduce((a, p) => a + p.bert, 0)];
    const scale = (W - m.l - m.r) / Math.max(...totals);
    const out = ['<svg viewBox="0 0 ' + W + " " + H + '" role="img">'];
    [["ALBERT", "albert"], ["BERT-style", "bert"]].forEach(([name, key], row) => {
      const yy = 16 + row * 44;
      let xx = m.l;
      out.push('<text x="' + (m.l - 8) + '" y="' + (yy + 18) + '" text-anchor="end" font-weight="600">' + name + "</text>");
      parts.forEach((p, k) => {
        const w = p[key] * scale;
        if (w > 0) out.push('<rect x="' + xx + '" y="' + yy + '" width="' + Math.max(w, 0.5) + '" height="28" fill="' + PALETTE[k % PALETTE.length] +
          '"><title>' + esc(name + ": " + p.name + ": " + p[key].toLocaleString("en-US")) + "</title></rect>");
        xx += w;
      });
      out.push('<text x="' + (xx + 6) + '" y="' + (yy + 18) + '">' + totals[row].toLocaleString("en-US") + "</text>");
    });
    parts.forEach((p, k) => {
      const lx = m.l + (k % 3) * 260, ly = 122 + Math.floor(k / 3) * 20;
      out.push('<rect x="' + lx + '" y="' + (ly - 10) + '" width="12" height="12" fill="' + PALETTE[k % PALETTE.length] + '"/>');
      out.push('<text x="' + (lx + 18) + '" y="' + ly + '">' + esc(p.name) + "</text>");
    });
    out.push("</svg>");
    el.innerHTML = out.join("");
  }

  // ----------------------------------------------------------------- go
  select(current.layer, current.head);
  drawStats();
  chooseToken(D.token);
  paramChart($("chart-params"));
})();
