"""Look inside one ALBERT forward pass: the numbers first, the pictures second.

    from minialbert.inspect import analyze
    report = analyze("albert-base-v2", "The cat sat on the mat.")
    report.pieces, report.ids, report.spans      # what the tokenizer made of the text
    report.figure1.l2, report.figure1.angle      # the paper's Figure 1 for this text, (layer calls,)
    report.attentions                            # (layer calls, heads, n, n) softmax probabilities
    report.similarity                            # (layer calls + 1, n, n) token-to-token cosine per depth
    report.save("inspect-report")                # report.html, figure1.csv/.json, PNGs with matplotlib
    report                                       # in Jupyter: the interactive report, inline

The numbers (`analysis`) need only torch and numpy, and import none of the renderers; `report`
joins them: `Report` is the analysis plus its output methods. `render` writes the self-contained HTML
page (inline JS and SVG, no network); `plots` draws PNGs with matplotlib (the `viz` extra).
"""

from .analysis import (
    GRID_TOKEN_LIMIT,
    Analysis,
    CodeRef,
    Figure1,
    ParameterPart,
    Stage,
    figure1_numbers,
)
from .report import Report, analyze, make_report

__all__ = [
    "GRID_TOKEN_LIMIT", "Analysis", "CodeRef", "Figure1", "ParameterPart", "Report", "Stage", "analyze", "figure1_numbers",
    "make_report",
]
