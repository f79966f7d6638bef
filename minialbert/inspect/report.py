"""`Report`: the numbers of `analysis`, plus the ways to look at them (page, files, notebook).

The numbers are computed in `analysis` (torch + numpy, no drawing); this module joins them to
the renderers (`render`: the HTML page; `output`: files on disk; `plots`: PNGs). The arrows point
one way: the renderers read an `analysis.Analysis`, and `analysis` imports none of them.
"""

from __future__ import annotations

import dataclasses
import html
import os
from pathlib import Path

from ..errors import MinialbertError
from .analysis import Analysis, _check_text, compute
from .output import _check_png, check_directory, write_html, write_report
from .render import render_html


class Report(Analysis):
    """Everything `minialbert inspect` shows, as arrays (see `Analysis` for the fields), and the
    ways to see it: `to_html`, `save`, `save_html`, inline in Jupyter (`show`, `_repr_html_`)."""

    @classmethod
    def of(cls, analysis: Analysis) -> Report:
        return cls(**{f.name: getattr(analysis, f.name) for f in dataclasses.fields(analysis)})

    def to_html(self) -> str:
        """The self-contained report page (inline JS/CSS/data; it requests nothing)."""
        return render_html(self)

    def save(self, directory: str | os.PathLike, *, png: bool | None = None) -> list[Path]:
        """Write report.html, figure1.csv, figure1.json and (with matplotlib) PNGs into `directory`.

        png=None draws PNGs when matplotlib is installed, and otherwise skips them with a
        `VizWarning`; png=True requires matplotlib; png=False skips them. Returns the paths written.
        """
        return write_report(self, directory, png=png)

    def save_html(self, path: str | os.PathLike) -> Path:
        """Write only the HTML page to `path` (a file name, or a directory to hold report.html)."""
        return write_html(self, path)

    def _repr_html_(self) -> str:
        # An iframe with srcdoc: notebooks (Jupyter, VS Code, Colab) run scripts inside it, which
        # they do not do for script tags inserted into the output cell itself.
        return (f'<iframe srcdoc="{html.escape(self.to_html(), quote=True)}" '
                'style="width:100%;height:900px;border:1px solid #ccc" sandbox="allow-scripts"></iframe>')

    def show(self):
        """Display the report inline in Jupyter (IPython needed); returns the display object."""
        try:
            from IPython.display import HTML, display
        except ImportError:
            raise MinialbertError("show() needs IPython (a Jupyter notebook); use report.save(DIR) "
                                  "and open report.html instead") from None
        obj = HTML(self._repr_html_())
        display(obj)
        return obj


def analyze(model, text: str, **kwargs) -> Report:
    """Run `text` through `model` once and return every number the report shows, as a `Report`.

    model: a checkpoint directory or Hub repo id, an `Embedder`, or an `AlbertModel` /
      `AlbertForPreTraining` (then pass `tokenizer`).
    Keyword arguments (`tokenizer`, `name`, `token`, `compare`, `max_length`, `revision`,
    `cache_dir`, `local_files_only`, `device`) are those of `analysis.compute`.
    """
    return Report.of(compute(model, text, **kwargs))


def make_report(model, text: str, directory: str | os.PathLike, *, png: bool | None = None,
                **analyze_kwargs) -> tuple[Report, list[Path]]:
    """analyze() + save() in one call, checking the text and the directory before loading the model.

    This is what `minialbert inspect` runs. Returns the report and the paths written.
    """
    _check_text(text)
    check_directory(directory)
    _check_png(png)
    report = analyze(model, text, **analyze_kwargs)
    return report, write_report(report, directory, png=png)
