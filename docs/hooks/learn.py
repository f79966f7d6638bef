"""MkDocs hook: the "Learn ALBERT" page, generated from minialbert/model.py at every build.

model.py is cut at its section banners (the `# ----` comment blocks); each section becomes a part
of the page, and each top-level definition in it a row: the explanation on the left (the banner's
own words, then the equations typeset with KaTeX), the code on the right, with the lines that
compute each equation highlighted. The code is read from the file at build time, so it cannot
drift from what runs.

The typeset equations are the only thing written here, and each names the code that computes it
(`anchor`): if that code is no longer in the section, or a section appears or disappears, the
build fails (a warning, and `mkdocs build --strict` turns warnings into errors). So the page
either matches model.py or does not build.

The page also embeds, computed during the build: `minialbert info albert-base-v2` (the parameter
arithmetic, from the built-in config; no download) and the `minialbert inspect` report of a
sample text on the demo checkpoint (scripts/make_demo_checkpoint.py: albert-base-v2's shape,
random weights), as a table of the text's journey and the interactive page itself.
"""

from __future__ import annotations

import ast
import hashlib
import html
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "minialbert" / "model.py"
PAGE = "learn/albert.md"
REPORT = "learn/inspect-report.html"
SAMPLE_TEXT = "ALBERT shares one layer across all twelve calls."


@dataclass
class Eq:
    latex: str  # display math, KaTeX
    anchor: str  # a fragment of the code that computes it (must occur in the section)
    note: str = ""  # one line of Markdown under the equation


@dataclass
class Part:
    heading: str  # the page's heading for the section
    intro: str = ""  # Markdown shown before the first row's equations
    equations: list[Eq] = field(default_factory=list)


# Keyed by the start of each banner's first line in model.py. Every banner needs an entry, and
# every entry a banner.
PARTS: dict[str, Part] = {
    "Activations": Part(
        "Activations",
        "The nonlinearity of the feed-forward block, chosen by `hidden_act` in config.json.",
        [Eq(r"\mathrm{GELU}(x) \approx \tfrac12\,x\,\Bigl(1+\tanh\bigl(\sqrt{2/\pi}\,(x+0.044715\,x^3)\bigr)\Bigr)",
            "math.sqrt(2.0 / math.pi)", "`gelu_new`, ALBERT v2's: the tanh approximation of the original TF code."),
         Eq(r"\mathrm{GELU}(x) = x\,\Phi(x)", '"gelu": F.gelu',
            r"`gelu` (v1): exact, $\Phi$ the standard normal CDF.")],
    ),
    "Outputs": Part(
        "Outputs",
        "What a forward pass returns. $H$ is the hidden width (768 for base), $V$ the vocabulary (30,000).",
        [Eq(r"\texttt{last\_hidden\_state} \in \mathbb{R}^{\text{batch}\times\text{seq}\times H}",
            "last_hidden_state: torch.Tensor", "One contextual vector per token; row 0 is `[CLS]`.")],
    ),
    "1.": Part(
        "1. Factorized embedding",
        "Tokens first live in a small space of width $E$ (128), not $H$: the vocabulary table costs "
        r"$V\cdot E$ instead of $V\cdot H$ (Lan et al. 2019, section 3.1).",
        [Eq(r"e_t = \mathrm{LN}\bigl(W_{\text{word}}[x_t] + W_{\text{pos}}[t] + W_{\text{type}}[s_t]\bigr) \in \mathbb{R}^{E}",
            "self.word(input_ids) + self.token_type(token_type_ids) + self.position(position_ids)",
            "$x_t$ the token id, $t$ its position, $s_t$ its segment (0 or 1)."),
         Eq(r"\mathrm{LN}(x) = \gamma \odot \frac{x-\mu(x)}{\sqrt{\sigma^2(x)+\epsilon}} + \beta",
            "self.dropout(self.norm(x))", "LayerNorm over the $E$ features of each token.")],
    ),
    "2.": Part(
        "2. Multi-head self-attention, residual, LayerNorm",
        "Scaled dot-product attention, with $h$ heads of width $d_k = H/h$ (Vaswani et al. 2017, eq. 1 and 3.2.2).",
        [Eq(r"\mathrm{head}_i = \mathrm{Attention}(XW_i^Q,\; XW_i^K,\; XW_i^V)", "q = self.split_heads(self.query(x))",
            r"The $h$ matrices $W_i^Q$ side by side are one $H\times H$ `Linear`."),
         Eq(r"\mathrm{Attention}(Q,K,V) = \mathrm{softmax}\!\Bigl(\frac{QK^\top}{\sqrt{d_k}} + M\Bigr)V",
            "torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)",
            "$M$ is 0 for real tokens and the most negative float for padding."),
         Eq(r"\mathrm{MultiHead}(X) = \mathrm{Concat}(\mathrm{head}_1,\dots,\mathrm{head}_h)\,W^O",
            "concat = context.transpose(1, 2).reshape(batch, seq, -1)"),
         Eq(r"X' = \mathrm{LN}\bigl(X + \mathrm{MultiHead}(X)\bigr)", "return self.norm(x + attended), probs",
            "Post-LN residual, as BERT and ALBERT.")],
    ),
    "3.": Part(
        "3. Feed-forward network, residual, LayerNorm",
        "A two-layer network applied to every token on its own, then the residual and LayerNorm.",
        [Eq(r"\mathrm{FFN}(x) = \mathrm{act}(xW_1 + b_1)\,W_2 + b_2,\qquad x' = \mathrm{LN}\bigl(x + \mathrm{FFN}(x)\bigr)",
            "self.norm(x + self.dropout(self.down(self.act(self.up(x)))))",
            "Vaswani et al. write ReLU; ALBERT uses GELU. $W_1$ is $H\\times I$ ($I$ = 3072 for base)."),
         Eq(r"\mathrm{Layer}(X) = \mathrm{FFN\text{-}block}\bigl(\mathrm{Attention\text{-}block}(X)\bigr)",
            "x, probs = self.attention(x, additive_mask")],
    ),
    "4.": Part(
        "4. The encoder: projection and shared layers",
        "Cross-layer parameter sharing (Lan et al., 3.1): $L$ layer calls, $G$ groups of weights.",
        [Eq(r"h^0 = e\,W_{\text{proj}} + b_{\text{proj}} \in \mathbb{R}^{H}", "h = self.project(embedded)",
            r"The $E\to H$ projection: the second half of the factorized embedding."),
         Eq(r"h^{i+1} = \mathrm{Layer}_{g(i)}\bigl(h^{i}\bigr),\qquad g(i) = \Bigl\lfloor \frac{i}{L/G} \Bigr\rfloor",
            "calls.extend(self.groups[self.config.group_index(i)])",
            "albert-base: $G = 1$, so one layer runs 12 times. A loop, never a copy."),
         Eq(r"M_{k} = \begin{cases} 0 & \text{token } k \text{ is real} \\ \min_{\text{float}} & \text{padding} \end{cases}",
            "masked_fill(~keep, torch.finfo(dtype).min)")],
    ),
    "5.": Part(
        "5. AlbertModel and its pooler",
        "The model: embeddings, encoder, and the pooler, a dense layer on the `[CLS]` vector.",
        [Eq(r"\mathrm{pooler} = \tanh\bigl(W_p\, h^L_{[\mathrm{CLS}]} + b_p\bigr)", "torch.tanh(self.pooler(h[:, 0]))",
            "Trained for sentence order, not similarity: prefer mean pooling for sentence vectors.")],
    ),
    "6.": Part(
        "6. Pre-training heads",
        "Pre-training: masked-language modelling (Devlin et al. 2018) and sentence-order prediction, "
        "ALBERT's replacement for next-sentence prediction.",
        [Eq(r"\mathrm{logits} = \mathrm{LN}\bigl(\mathrm{act}(hW_d + b_d)\bigr)\,W_{\text{word}}^\top + b",
            "F.linear(self.norm(self.act(self.dense(h))), word_embeddings, self.bias)",
            r"The decoder is tied to the $V\times E$ word table."),
         Eq(r"\mathcal{L} = -\tfrac1N \sum_{\text{masked } i} \log P(x_i \mid x_{\setminus \text{masked}})"
            r" \;-\; \tfrac1M \sum_j \log P(y_j \mid \text{pair}_j)",
            "loss = sop_loss if loss is None else loss + sop_loss", "MLM + SOP cross-entropies.")],
    ),
    "7.": Part(
        "7. Task heads",
        "Fine-tuning heads, with transformers' parameter names so the Hub's fine-tuned checkpoints load.",
        [Eq(r"\mathrm{logits} = W_c\,\mathrm{dropout}(\mathrm{pooler}) + b_c", "logits = self.classifier(self.dropout(out.pooler_output))",
            "Sequence classification (and, with one output per choice, multiple choice)."),
         Eq(r"\mathrm{logits}_t = W_c\,\mathrm{dropout}(h_t) + b_c", "logits = self.classifier(self.dropout(out.last_hidden_state))",
            "Token classification."),
         Eq(r"[s_t,\, e_t] = W_{qa}\, h_t + b_{qa}", "start_logits, end_logits = self.qa_outputs(out.last_hidden_state).unbind(dim=-1)",
            "Question answering: start and end score of every token.")],
    ),
    "The methods of the classes above": Part(
        "The record the engine checks",
        "Not part of the model's arithmetic: a snapshot of every method of the classes above, taken when "
        "model.py is imported. `fast.InferenceEngine` compares the live classes with it before each call, "
        "and steps aside (calling the model's own forward) when anything was changed: so calling a model "
        "always runs the code on this page.",
        [Eq(r"\text{fused path} \iff 	ext{every method} = 	ext{its recorded original}",
            "STOCK_METHODS = {")],
    ),
}


@dataclass
class Section:
    title: str
    banner: list[str]  # the banner's comment text, "# " stripped
    start: int  # first code line (1-based)
    end: int  # last line (inclusive)


def sections(lines: list[str]) -> list[Section]:
    rule = re.compile(r"^# -{20,}\s*$")
    bounds = [i for i, line in enumerate(lines) if rule.match(line)]
    out = []
    for k in range(0, len(bounds) - 1, 2):
        open_, close = bounds[k], bounds[k + 1]
        banner = [re.sub(r"^# ?", "", line) for line in lines[open_ + 1:close]]
        nxt = bounds[k + 2] if k + 2 < len(bounds) else len(lines)
        out.append(Section(banner[0].strip(), banner, close + 2, nxt))
    return out


def _key(title: str) -> str | None:
    return next((k for k in PARTS if title.startswith(k)), None)


def chunks(tree: ast.Module, start: int, end: int) -> list[tuple[int, int, str]]:
    """(first line, last line, name) of each top-level definition between start and end."""
    out = []
    for node in tree.body:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        if start <= first <= end:
            name = getattr(node, "name", None) or ast.unparse(node).split("=")[0].strip()
            out.append((first, node.end_lineno, name))
    return out


def _code(lines: list[str], first: int, last: int, highlight: list[int]) -> str:
    text = "\n".join(lines[first - 1:last])
    hl = " ".join(str(n - first + 1) for n in highlight)
    opts = f'linenums="{first}"' + (f' hl_lines="{hl}"' if hl else "")
    return f"``` python {opts}\n{text}\n```"


def _row(left: str, right: str) -> str:
    return (f'<div class="learn-row" markdown>\n<div class="learn-text" markdown>\n\n{left}\n\n</div>\n'
            f'<div class="learn-code" markdown>\n\n{right}\n\n</div>\n</div>\n')


def _equation(eq: Eq) -> str:
    return f"$$\n{eq.latex}\n$$\n" + (f"\n{eq.note}\n" if eq.note else "")


def generate(problems: list[str]) -> str:
    source = MODEL.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    found = sections(lines)
    keys = [_key(s.title) for s in found]
    for s, k in zip(found, keys):
        if k is None:
            problems.append(f"model.py section {s.title!r} has no explanation in docs/hooks/learn.py PARTS")
    for k in PARTS:
        if k not in keys:
            problems.append(f"docs/hooks/learn.py explains section {k!r}, which model.py no longer has")

    doc = ast.get_docstring(tree) or ""
    md = [
        "---",
        "hide:",
        "  - toc",
        "---",
        "",
        "# Learn ALBERT, from the code",
        "",
        '!!! info "Generated from `minialbert/model.py`"',
        f"    This page is built from the file itself (sha256 `{digest}`…) by `docs/hooks/learn.py` at every "
        "`mkdocs build`: the code on the right is what runs when you call a model, and each equation on the left "
        "names the line that computes it (highlighted). If the code changes so that an equation no longer has "
        "its line, the build fails. The same path, runnable, is the notebook "
        "[`docs/learn/albert.ipynb`](albert.ipynb).",
        "",
        "Read it top to bottom: ids → factorized embedding → $E\\to H$ projection → one shared layer called "
        "$L$ times → pooler and heads. Then see the numbers for a real text in "
        "[the inspect report](#one-text-through-the-model) and [where the parameters are](#parameter-arithmetic).",
        "",
        "## Overview",
        "",
        _row("The module docstring: the whole model in one picture, and the two ideas ALBERT adds to BERT.",
             f"```text\n{doc}\n```"),
    ]
    for s, key in zip(found, keys):
        part = PARTS.get(key) if key else None
        md += ["", f"## {part.heading if part else s.title}", ""]
        defs = chunks(tree, s.start, s.end)
        section_code = "\n".join(lines[s.start - 1:s.end])
        placed: dict[int, list[Eq]] = {}
        for eq in (part.equations if part else []):
            if eq.anchor not in section_code:
                problems.append(f"model.py section {s.title!r}: no line contains {eq.anchor!r} any more; "
                                "update the equation's anchor in docs/hooks/learn.py (or the equation)")
                continue
            line = s.start + next(k for k, text in enumerate(lines[s.start - 1:s.end]) if eq.anchor in text)
            owner = next((k for k, (a, b, _) in enumerate(defs) if a <= line <= b), 0)
            placed.setdefault(owner, []).append((eq, line))
        banner = "\n".join(s.banner).strip()
        for k, (first, last, name) in enumerate(defs):
            left = []
            if k == 0:
                if part and part.intro:
                    left.append(part.intro)
                if banner:
                    left.append(f"The section's banner in model.py:\n\n```text\n{banner}\n```")
            here = placed.get(k, [])
            left.append(f"**`{name}`**, lines {first}–{last}")
            left += [_equation(eq) for eq, _ in here]
            md.append(_row("\n\n".join(left), _code(lines, first, last, [line for _, line in here])))
    return "\n".join(md) + "\n"


def parameter_section() -> str:
    from minialbert.config import AlbertConfig
    from minialbert.inspect.analysis import parameter_map
    from minialbert.params import count_parameters

    config = AlbertConfig.from_preset("albert-base-v2")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "COLUMNS": "100"}
    info = subprocess.run([sys.executable, "-m", "minialbert", "info", "albert-base-v2"], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)
    if info.returncode != 0:
        raise RuntimeError(f"minialbert info failed: {info.stderr}")
    rows = ["| part | ALBERT formula | ALBERT | BERT-style formula | BERT-style |", "|---|---|---:|---|---:|"]
    for p in parameter_map(config):
        rows.append(f"| {p.name} | {p.albert_formula} | {p.albert:,} | {p.bert_formula} | {p.bert:,} |")
    n = count_parameters(config)
    rows.append(f"| **AlbertModel** | | **{n.model:,}** | | **{n.bert_equivalent:,}** |")
    c = config
    return "\n".join([
        "## Parameter arithmetic",
        "",
        f"albert-base-v2: $V = {c.vocab_size:,}$, $E = {c.embedding_size}$, $H = {c.hidden_size}$, "
        f"$L = {c.num_hidden_layers}$, $I = {c.intermediate_size}$, $P = {c.max_position_embeddings}$ positions, "
        f"$T = {c.type_vocab_size}$ token types. One layer has $4(H^2 + H) + 2H$ attention parameters and "
        "$2HI + I + H + 2H$ feed-forward ones; ALBERT stores it once, the BERT-style column twelve times, and "
        "spends $V\\cdot H$ on the vocabulary instead of $V\\cdot E + E\\cdot H$. Computed at build time by "
        "`minialbert.inspect.analysis.parameter_map` (the BERT-style column: the same $H$ and $L$ without the two ideas):",
        "",
        *rows,
        "",
        "`minialbert info albert-base-v2`, run during the build (the config is built in; nothing is downloaded):",
        "",
        f"```text\n$ minialbert info albert-base-v2\n{info.stdout.rstrip()}\n```",
    ])


def inspect_section(config) -> tuple[str, str]:
    """(Markdown, report HTML) for the sample text on the demo checkpoint."""
    from minialbert.inspect import analyze

    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo-albert"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        made = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_demo_checkpoint.py"), str(demo)],
                              capture_output=True, text=True, env=env, timeout=600)
        if made.returncode != 0:
            raise RuntimeError(f"make_demo_checkpoint.py failed: {made.stderr}")
        report = analyze(str(demo), SAMPLE_TEXT, name="demo checkpoint (random weights)")
        page = report.to_html()
    rows = ["| stage | equation | shape (this run) | code |", "|---|---|---|---|"]
    for st in report.stages:
        where = f"`{st.code.path}`, `{st.code.qualname}`, line {st.code.line or st.code.start}"
        rows.append(f"| {st.name} | {html.escape(st.equation)} | {tuple(st.shape)} | {where} |")
    pieces = " ".join(f"`{p}`" for p in report.pieces)
    md = "\n".join([
        "## One text through the model",
        "",
        f"`minialbert inspect` on the text *{SAMPLE_TEXT}*, run during the build on the demo checkpoint "
        "(`scripts/make_demo_checkpoint.py`: albert-base-v2's shape with **random** weights and a small "
        "test tokenizer, since the build must work offline). The shapes are measured; the attention and "
        "Figure 1 curves show random weights, not ALBERT's (see [the inspect guide](../guides/inspect.md)).",
        "",
        f"Pieces: {pieces}",
        "",
        *rows,
        "",
        "The interactive report of the same run ([open it on its own](inspect-report.html)):",
        "",
        '<iframe class="learn-report" src="../inspect-report.html" title="minialbert inspect report"></iframe>',
        "",
        "Make it yourself (with real weights wherever the Hub is reachable):",
        "",
        "```text",
        f'minialbert inspect "{SAMPLE_TEXT}" --model albert-base-v2 --output report',
        "```",
    ])
    return md, page


def on_files(files, config):
    problems: list[str] = []
    body = generate(problems)
    if problems:  # the page and model.py disagree: no page rather than a wrong one
        raise PluginError("Learn ALBERT page out of date:\n  " + "\n  ".join(problems))
    params = parameter_section()
    inspect_md, report_html = inspect_section(config)
    page = body + "\n" + inspect_md + "\n\n" + params + "\n"
    files.append(File.generated(config, PAGE, content=page))
    files.append(File.generated(config, REPORT, content=report_html))
    return files
