"""The report page: one self-contained HTML file (inline CSS, JS and data; no network at all).

Tables are written here as plain HTML, so the page says what it says even with scripts off;
`report.js` (plain JS, no framework) draws the charts and heatmaps and makes them interactive.
Large arrays travel as base64 integers: attention and cosine values quantized to 16 bits
(8 bits for very large reports), which the page states next to the numbers it shows.
"""

from __future__ import annotations

import base64
import html
import json
import re
from importlib import resources

import numpy as np

from .analysis import Analysis

# Arrays with more entries than this are stored with 8 bits instead of 16 to keep the page small.
SIXTEEN_BIT_LIMIT = 2_500_000  # 12 layers x 12 heads x 128 x 128 = 2.36 M still gets 16 bits

# The page may load nothing from anywhere: the Content-Security-Policy makes the browser refuse
# any request a bug might add, and the icon link stops the automatic favicon request.
CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def quantize(array: np.ndarray, lo: float, hi: float, bits: int | None = None) -> dict:
    """float array -> {"lo", "hi", "bits", "shape", "data"}: little-endian unsigned ints, base64.

    The page decodes value = lo + q * (hi - lo) / (2**bits - 1); the error is at most half a step.
    """
    a = np.asarray(array, dtype=np.float64)
    if bits is None:
        bits = 16 if a.size <= SIXTEEN_BIT_LIMIT else 8
    top = (1 << bits) - 1
    span = (hi - lo) or 1.0
    q = np.rint((np.clip(a, lo, hi) - lo) / span * top).astype("<u2" if bits == 16 else "u1")
    return {"lo": lo, "hi": lo + span, "bits": bits, "shape": list(a.shape),
            "data": base64.b64encode(q.tobytes()).decode("ascii")}


def _payload(r: Analysis) -> dict:
    c = r.config
    heads, calls = r.attentions.shape[1], r.attentions.shape[0]
    # The quantization range is the data's own (attention rarely reaches 1 over long texts), so the
    # steps are as fine as the bits allow where the values are.
    maps = r.attentions.mean(axis=1) if r.aggregated else r.attentions
    attention = {"mode": "layers" if r.aggregated else "heads", **quantize(maps, 0.0, float(maps.max()))}
    bound = lambda a: float(np.abs(a).max()) or 1.0  # noqa: E731  symmetric range of a vector array
    h0 = r.hidden_states[0]
    return {
        "model": r.model, "text": r.text, "notices": r.notices, "token": r.token,
        "config": {"E": c.embedding_size, "H": c.hidden_size, "L": c.num_hidden_layers, "heads": heads,
                   "calls": calls, "groups": c.num_hidden_groups, "inner": c.inner_group_num,
                   "sharing": c.sharing, "vocab": c.vocab_size},
        "tokens": [{"piece": p, "id": int(i), "special": bool(s), "span": list(sp) if sp else None}
                   for p, i, s, sp in zip(r.pieces, r.ids, r.special, r.spans)],
        "figure1": [{"model": f.model, "l2": f.l2.tolist(), "angle": f.angle.tolist()} for f in [r.figure1, *r.compare]],
        "attention": {**attention, "calls": calls, "heads": heads, "n": r.n_tokens, "weights": r.weights_of_call},
        "stats": {"cls": r.cls_share.tolist(), "sep": r.sep_share.tolist(), "entropy": r.entropy.tolist(),
                  "distance": r.distance.tolist()},
        "similarity": quantize(r.similarity, float(r.similarity.min()), float(r.similarity.max())),
        "vectors": {"e": quantize(r.embeddings, -bound(r.embeddings), bound(r.embeddings)),
                    "h0": quantize(h0, -bound(h0), bound(h0))},
        "params": [p.__dict__ for p in r.parameters],
    }


def _json_for_script(obj) -> str:
    # Inside <script>, "</" could end the element early and "<!--" could open a comment: escape "<".
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _source_block(code) -> str:
    lines = code.source.rstrip("\n").split("\n")
    rows = []
    for k, text in enumerate(lines):
        number = code.start + k
        mark = ' class="focus"' if number == code.line else ""
        rows.append(f'<span{mark}><i>{number:>4}</i> {_e(text)}</span>')
    return "\n".join(rows)


def _tokens_table(r: Analysis) -> str:
    rows = []
    for k, (piece, i, span) in enumerate(zip(r.pieces, r.ids, r.spans)):
        chars = r.text[span[0]:span[1]] if span else ""
        where = f"{span[0]}–{span[1]}" if span else "—"
        rows.append(f'<tr data-token="{k}"><td>{k}</td><td class="piece">{_e(piece)}</td><td>{int(i)}</td>'
                    f"<td>{where}</td><td class=\"piece\">{_e(repr(chars)) if span else ''}</td></tr>")
    return "\n".join(rows)


def _stages_table(r: Analysis) -> str:
    rows = []
    for s in r.stages:
        code = s.code
        where = f"{code.path} L{code.line}" if code.line else f"{code.path} L{code.start}–{code.end}"
        note = f'<div class="note">{_e(s.note)}</div>' if s.note else ""
        rows.append(
            f"<tr><td>{_e(s.name)}{note}</td><td class=\"eq\">{_e(s.equation)}</td><td class=\"shape\">{_shape(s.shape)}</td>"
            f'<td><details><summary>{_e(where)}</summary><div class="where">{_e(code.qualname)}, lines '
            f"{code.start}–{code.end}</div><pre class=\"src\">{_source_block(code)}</pre></details></td></tr>")
    return "\n".join(rows)


def _figure1_table(r: Analysis) -> str:
    return figure1_table([r.figure1, *r.compare])


def figure1_table(curves) -> str:
    """The Figure 1 numbers of several models (Figure1 objects) as one HTML table."""
    depth = max(len(f.l2) for f in curves)
    head = "".join(f'<th colspan="2">{_e(f.model)}</th>' for f in curves)
    sub = "<th>L2</th><th>angle (°)</th>" * len(curves)
    rows = []
    for k in range(depth):
        cells = "".join(f"<td>{f.l2[k]:.4f}</td><td>{f.angle[k]:.3f}</td>" if k < len(f.l2) else "<td></td><td></td>"
                        for f in curves)
        rows.append(f"<tr><td>{k + 1}</td>{cells}</tr>")
    return (f'<table class="numbers"><thead><tr><th rowspan="2">layer call</th>{head}</tr><tr>{sub}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _params_table(r: Analysis) -> str:
    rows = [f"<tr><td>{_e(p.name)}</td><td>{_e(p.albert_formula)}</td><td>{p.albert:,}</td>"
            f"<td>{_e(p.bert_formula)}</td><td>{p.bert:,}</td></tr>" for p in r.parameters]
    albert, bert = sum(p.albert for p in r.parameters), sum(p.bert for p in r.parameters)
    rows.append(f"<tr class=\"total\"><td>total</td><td></td><td>{albert:,}</td><td></td><td>{bert:,}</td></tr>")
    return "\n".join(rows)


def render_html(r: Analysis) -> str:
    c = r.config
    calls, heads = r.attentions.shape[:2]
    notices = "".join(f'<p class="notice">{_e(n)}</p>' for n in r.notices)
    albert, bert = sum(p.albert for p in r.parameters), sum(p.bert for p in r.parameters)
    shared = ("one shared layer" if len(set(r.weights_of_call)) == 1
              else f"{len(set(r.weights_of_call))} distinct layers")
    sizes = {"E": c.embedding_size, "H": c.hidden_size, "L": calls, "heads": heads, "n": r.n_tokens}
    fill = {
        "title": _e(f"minialbert inspect: {r.model}"),
        "csp": CSP,
        "css": _asset("report.css"),
        "charts_js": _asset("charts.js"),
        "js": _asset("report.js"),
        "data": _json_for_script(_payload(r)),
        "model": _e(r.model),
        "text": _e(r.text if len(r.text) <= 2000 else r.text[:2000] + " …"),
        "summary": _e(f"{r.n_tokens} tokens · E = {sizes['E']} → H = {sizes['H']} · {calls} layer calls of "
                      f"{shared} · {heads} heads"),
        "notices": notices,
        "tokens": _tokens_table(r),
        "stages": _stages_table(r),
        "figure1_table": _figure1_table(r),
        "params_table": _params_table(r),
        "params_summary": _e(f"ALBERT: {albert:,} parameters; the same H and L with V × H embeddings and "
                             f"{c.num_hidden_layers} separate layers: {bert:,} ({albert / bert:.1%})."),
        "E": sizes["E"], "H": sizes["H"],
    }
    # One pass over the template only: text substituted in is never scanned for placeholders again.
    return re.sub(r"\{\{(\w+)\}\}", lambda m: str(fill[m.group(1)]), _asset("report.html"))


# Shared with `minialbert compare` (minialbert/compare/): its page uses the same CSP, stylesheet,
# charts (charts.js), escaping and Figure 1 table as this one.
asset = _asset
escape = _e
json_for_script = _json_for_script
