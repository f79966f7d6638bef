"""The compare page: one self-contained HTML file made like the inspect report, with its code.

The page shares inspect's Content-Security-Policy (nothing may load from anywhere), stylesheet,
SVG line charts (inspect/charts.js), escaping and Figure 1 table (minialbert.inspect.render);
only its template and the few lines of JS that feed the charts are its own.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

from ..config import AlbertConfig
from ..inspect.render import CSP, asset, escape, figure1_table, json_for_script
from ..params import count_parameters
from .runs import CompareError, Run, read_run

FIXED_TEXT = ("ALBERT uses two parameter reduction techniques: a factorized embedding and cross-layer parameter "
              "sharing.")
# Config keys that say nothing about the model itself.
_CONFIG_NOISE = {"architectures", "transformers_version", "torch_dtype", "dtype", "_name_or_path", "id2label",
                 "label2id", "problem_type", "finetuning_task"}
_ARGS_NOISE = {"output_dir", "resume", "overwrite", "quiet", "kill_after_step", "threads", "log_data", "device"}


def _own(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _value(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (dict, list)):
        import json

        return json.dumps(v, ensure_ascii=False, sort_keys=True)
    return str(v)


# -------------------------------------------------------------------------------- tables
def shared_parameters(c: AlbertConfig) -> int:
    """Parameters of the layer blocks that more than one of the L layers runs (0 without sharing)."""
    from ..params import attention_params, ffn_params

    n = count_parameters(c)
    L = c.num_hidden_layers
    return ((attention_params(c) * n.distinct_attention_blocks if n.distinct_attention_blocks < L else 0)
            + (ffn_params(c) * n.distinct_ffn_blocks if n.distinct_ffn_blocks < L else 0))


def runs_table(runs: list[Run]) -> str:
    head = ("<thead><tr><th>run</th><th>kind</th><th>folder</th><th>E / H / L</th><th>sharing</th><th>parameters "
            "(AlbertModel)</th><th>transformer layer weights</th><th>shared across layers</th><th>BERT-style "
            "equivalent</th></tr></thead>")
    rows = []
    for r in runs:
        if r.config is None:
            rows.append(f'<tr><td class="label">{escape(r.label)}</td><td class="label">{", ".join(r.kinds)}</td>'
                        f'<td class="label">{escape(r.path)}</td><td colspan="6">no config.json found</td></tr>')
            continue
        c = AlbertConfig.from_dict(r.config)
        n = count_parameters(c)
        shared = shared_parameters(c)
        rows.append(
            f'<tr><td class="label">{escape(r.label)}</td><td class="label">{", ".join(r.kinds)}</td>'
            f'<td class="label">{escape(r.path)}</td><td>{c.embedding_size} / {c.hidden_size} / {c.num_hidden_layers}</td>'
            f"<td>{escape(c.sharing)}</td><td>{n.model:,}</td><td>{n.layers:,}</td>"
            f"<td>{shared:,} ({shared / n.model:.1%})</td><td>{n.bert_equivalent:,}</td></tr>")
    return head + "<tbody>" + "\n".join(rows) + "</tbody>"


def glue_table(runs: list[Run]) -> tuple[str, str]:
    from ..glue.tasks import METRIC_NAMES, TASKS

    glue_runs = [r for r in runs if r.glue is not None]
    if not glue_runs:
        return '<p class="note" id="glue-none">No run here is a GLUE run.</p>', ""
    first = glue_runs[0]
    head = "<th>task</th><th>metrics</th>" + "".join(
        f'<th colspan="{1 if r is first else 2}">{escape(r.label)}</th>' for r in glue_runs)
    rows = []

    def cells(value, base, is_first):
        text = f"<td>{value:.1f}</td>" if value is not None else "<td>—</td>"
        if is_first:
            return text
        if value is None or base is None:
            return text + "<td></td>"
        d = value - base
        cls = "up" if d > 0.05 else "down" if d < -0.05 else "same"
        return text + f'<td class="{cls}">{d:+.1f}</td>'

    for key, task in TASKS.items():
        present = [r.glue["tasks"].get(key) for r in glue_runs]
        if not any(present):
            continue
        metrics = next(p for p in present if p)["metrics"]
        label = " / ".join(METRIC_NAMES.get(m, m) for m in metrics)
        base = present[0]["score"] if present[0] else None
        body = "".join(cells(p["score"] if p else None, base, r is first) for p, r in zip(present, glue_runs))
        name = task.name + (" (not in the average)" if key == "wnli" else "")
        rows.append(f'<tr data-task="{key}"><td class="label">{escape(name)}</td><td class="label">{escape(label)}</td>{body}</tr>')
    averages = [r.glue.get("glue_score") or {} for r in glue_runs]
    complete = all(a.get("value") is not None for a in averages)
    values = [a.get("value") if complete else a.get("partial") for a in averages]
    name = "GLUE score (WNLI excluded)" if complete else "average of the tasks each run has (not a GLUE score)"
    body = "".join(cells(v, values[0], r is first) for v, r in zip(values, glue_runs))
    rows.append(f'<tr class="total" data-task="average"><td class="label">{escape(name)}</td><td></td>{body}</tr>')
    quick = [r.label for r in glue_runs if r.glue.get("quick")]
    note = (f"Quick runs, not comparable to published scores: {', '.join(quick)}. " if quick else "") + escape(
        glue_runs[0].glue.get("score_rule", ""))
    return (f'<table class="numbers" id="glue-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>',
            note)


def differences_table(rows_by_run: list[dict], runs: list[Run], what: str, table_id: str) -> str:
    keys = sorted({k for d in rows_by_run for k in d})
    differing = [k for k in keys if len({_value(d.get(k)) for d in rows_by_run}) > 1]
    if len(runs) < 2:
        return f'<p class="note">One run: nothing to compare ({what}).</p>'
    if not differing:
        return f'<p class="note" id="{table_id}">The runs have the same {what}.</p>'
    head = "<th>key</th>" + "".join(f"<th>{escape(r.label)}</th>" for r in runs)
    body = "".join(f'<tr><td class="label">{escape(k)}</td>' + "".join(
        f'<td class="label">{escape(_value(d.get(k)))}</td>' for d in rows_by_run) + "</tr>" for k in differing)
    return f'<table class="numbers" id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def options_tables(runs: list[Run]) -> str:
    """The pre-training options (train_args.json) that differ between the pre-training runs, and the
    GLUE settings (run.json) that differ between the GLUE runs."""
    out = []
    for kind, title, prefix in (("pretrain", "pre-training options (train_args.json)", None),
                                ("glue", "GLUE settings (run.json)", "glue.")):
        group = [r for r in runs if kind in r.kinds]
        if not group:
            continue
        rows = []
        for r in group:
            items = {k: v for k, v in r.train_args.items() if (k.startswith("glue.") if prefix else not k.startswith("glue."))}
            rows.append({k[len(prefix):] if prefix else k: v for k, v in items.items()
                         if (k[len(prefix):] if prefix else k) not in _ARGS_NOISE})
        out.append(f"<h4>{escape(title)}</h4>" + differences_table(rows, group, title, f"{kind}-args-diff"))
    return "\n".join(out)


# --------------------------------------------------------------------------------- page
def _figure1(runs: list[Run], text: str, device) -> tuple[list, list[str]]:
    from ..inspect.report import analyze

    seen, models, notices = set(), [], []
    for r in runs:
        if r.model_path is None:
            notices.append(f"{r.label}: no local model folder, so no Figure 1 curve")
            continue
        key = Path(r.model_path).resolve()
        if key not in seen:
            seen.add(key)
            models.append((r.label, r.model_path))
    if not models:
        return [], notices
    (label, path), others = models[0], models[1:]
    report = analyze(str(path), text, name=label, compare={lab: str(p) for lab, p in others}, device=device)
    return [report.figure1, *report.compare], notices


def render_compare(runs: list[Run], *, text: str = FIXED_TEXT, device=None) -> str:
    curves_payload: dict[str, list] = {}
    for r in runs:
        for c in r.curves:
            curves_payload.setdefault(c.name, []).append(
                {"run": r.label, "steps": c.steps, "tokens": c.tokens, "values": c.values})
    estimated = [r.label for r in runs if r.curves and r.tokens_estimated]
    figure1, notices = _figure1(runs, text, device)
    glue_html, glue_note = glue_table(runs)
    payload = {"runs": [r.label for r in runs], "curves": curves_payload, "tokens_estimated": estimated,
               "figure1": [{"model": f.model, "l2": f.l2.tolist(), "angle": f.angle.tolist()} for f in figure1]}
    tokens_note = (f"Tokens of {', '.join(estimated)} are estimated from the logged tokens/s × time between log "
                   "records (their logs have no token count)." if estimated else "")
    glue_runs = [r for r in runs if r.glue is not None]
    fill = {
        "title": escape("minialbert compare: " + ", ".join(r.label for r in runs)),
        "csp": CSP, "css": asset("report.css"), "charts_js": asset("charts.js"), "js": _own("compare.js"),
        "data": json_for_script(payload),
        "summary": escape(f"{len(runs)} runs: " + "; ".join(f"{r.label} ({', '.join(r.kinds)})" for r in runs)),
        "notices": "".join(f'<p class="notice">{escape(n)}</p>' for n in notices),
        "runs_table": runs_table(runs),
        "tokens_note": escape(tokens_note),
        "first": escape(glue_runs[0].label) if glue_runs else "—",
        "glue_table": glue_html, "glue_note": glue_note,
        "text": escape(text),
        "figure1_table": figure1_table(figure1) if figure1 else "",
        "config_table": differences_table([{k: v for k, v in (r.config or {}).items() if k not in _CONFIG_NOISE}
                                           for r in runs], runs, "config.json", "config-diff"),
        "args_table": options_tables(runs),
    }
    return re.sub(r"\{\{(\w+)\}\}", lambda m: str(fill[m.group(1)]), _own("compare.html"))


def make_compare(paths, output: str | os.PathLike, *, labels=None, text: str = FIXED_TEXT, device=None) -> Path:
    """Read the run folders, write the page to `output` (atomically) and return its path."""
    from ..files import atomic_write

    out = Path(output)
    if out.is_dir() or str(output).endswith(("/", os.sep)):
        out = out / "report.html"
    if out.suffix.lower() not in (".html", ".htm"):
        raise CompareError(f"{out}: the report is an HTML file; give a name ending in .html")
    if not out.parent.is_dir():
        raise CompareError(f"cannot write {out}: directory {out.parent} does not exist")
    if not paths:
        raise CompareError("give at least one run folder")
    labels = list(labels or [])
    if len(labels) > len(paths):
        raise CompareError(f"{len(labels)} --label values for {len(paths)} runs")
    runs = [read_run(p, labels[k] if k < len(labels) else None) for k, p in enumerate(paths)]
    names = [r.label for r in runs]
    for r in runs:  # two folders with the same name: tell them apart by their path
        if names.count(r.label) > 1:
            r.label = str(r.path)
    if not text.strip():
        raise CompareError("--text is empty")
    page = render_compare(runs, text=text, device=device)
    atomic_write(out, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    return out

