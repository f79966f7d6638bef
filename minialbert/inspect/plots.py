"""PNG versions of the report's charts, drawn with matplotlib (the optional `viz` extra).

No pyplot: figures are built with `matplotlib.figure.Figure`, so drawing here never changes
the backend or the global state of a notebook that imports this module.
"""

from __future__ import annotations

import io

import numpy as np

from .analysis import Analysis

VIZ_HINT = "pip install 'minialbert[viz]'"


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def figure1(report: Analysis) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8))
    ax_l2, ax_angle = fig.subplots(1, 2)
    for f in [report.figure1, *report.compare]:
        ax_l2.plot(f.layer_calls, f.l2, marker="o", markersize=3, label=f.model)
        ax_angle.plot(f.layer_calls, f.angle, marker="o", markersize=3, label=f.model)
    ax_l2.set(title="L2 distance, input vs output of each layer call", xlabel="layer call l",
              ylabel="mean ‖h_l − h_(l−1)‖₂")
    ax_angle.set(title="Angle, input vs output of each layer call", xlabel="layer call l", ylabel="mean angle (degrees)")
    for ax in (ax_l2, ax_angle):
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


def _mosaic(maps: np.ndarray) -> np.ndarray:
    """(rows, cols, n, n) maps, each scaled to its maximum, tiled with a one-pixel NaN gap."""
    rows, cols, n, _ = maps.shape
    top = maps.reshape(rows, cols, -1).max(-1)[..., None, None]
    scaled = maps / np.where(top > 0, top, 1.0)
    out = np.full((rows * (n + 1) - 1, cols * (n + 1) - 1), np.nan)
    for r in range(rows):
        for c in range(cols):
            out[r * (n + 1):r * (n + 1) + n, c * (n + 1):c * (n + 1) + n] = scaled[r, c]
    return out


def attention_grid(report: Analysis) -> bytes:
    from matplotlib.figure import Figure

    att = report.attentions
    calls, heads, n, _ = att.shape
    maps = att.mean(axis=1)[None] if report.aggregated else att
    rows, cols = maps.shape[:2]
    image = _mosaic(maps)
    fig = Figure(figsize=(min(2 + 0.9 * cols, 40), min(1 + 0.9 * rows, 40)))
    ax = fig.subplots()
    ax.imshow(image, cmap="Blues", interpolation="nearest")
    centers = lambda k: np.arange(k) * (n + 1) + (n - 1) / 2  # noqa: E731
    ax.set_xticks(centers(cols), [f"call {c + 1}" for c in range(cols)] if report.aggregated else [f"h{c}" for c in range(cols)],
                  fontsize=7)
    ax.set_yticks(centers(rows), ["mean of heads"] if report.aggregated else [f"call {r + 1}" for r in range(rows)], fontsize=7)
    ax.set_title("attention per layer call (mean over heads)" if report.aggregated else
                 "attention per layer call and head (rows: queries, columns: keys; each map scaled to its maximum)",
                 fontsize=9)
    return _png(fig)


def special_tokens(report: Analysis) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    calls = np.arange(1, len(report.cls_share) + 1)
    ax.plot(calls, report.cls_share.mean(1), marker="o", markersize=3, label="[CLS]")
    ax.plot(calls, report.sep_share.mean(1), marker="o", markersize=3, label="[SEP]")
    ax.axhline(1 / report.n_tokens, color="gray", linestyle=":", label="uniform (1/n)")
    ax.set(title="share of attention on [CLS] and [SEP]", xlabel="layer call l", ylabel="mean attention probability")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def similarity(report: Analysis) -> bytes:
    from matplotlib.figure import Figure

    k = report.token
    sim = report.similarity[:, k, :]  # (depths, n)
    depths, n = sim.shape
    fig = Figure(figsize=(min(3 + 0.22 * n, 40), 1.5 + 0.28 * depths))
    ax = fig.subplots()
    im = ax.imshow(sim, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(depths), ["0 projection"] + [f"call {d}" for d in range(1, depths)], fontsize=7)
    if n <= 96:
        ax.set_xticks(range(n), report.pieces, rotation=90, fontsize=7)
    ax.set_title(f"cosine similarity of token {k} {report.pieces[k]!r} to every token, per depth", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03)
    return _png(fig)


def parameters(report: Analysis) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 2.8))
    ax = fig.subplots()
    for row, key in enumerate(("albert", "bert")):
        left = 0
        for k, part in enumerate(report.parameters):
            value = getattr(part, key)
            ax.barh(row, value, left=left, color=f"C{k}", label=part.name if row == 0 else None)
            left += value
        ax.text(left, row, f"  {left:,}", va="center", fontsize=8)
    ax.set_yticks([0, 1], ["ALBERT", "BERT-style"])
    ax.invert_yaxis()
    ax.set_xlabel("parameters")
    ax.set_title("where the parameters are: ALBERT vs unfactorized, unshared BERT of the same H and L", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


CHARTS = {
    "figure1.png": figure1,
    "attention.png": attention_grid,
    "special_tokens.png": special_tokens,
    "similarity.png": similarity,
    "parameters.png": parameters,
}


def render_pngs(report: Analysis) -> dict[str, bytes]:
    """File name -> PNG bytes for every chart (matplotlib must be installed)."""
    return {name: draw(report) for name, draw in CHARTS.items()}
