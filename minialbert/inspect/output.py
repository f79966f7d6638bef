"""Writing a report to disk: the page, the Figure 1 numbers, and PNGs when matplotlib is there.

Everything is computed in memory first and each file is written atomically (temp file + rename,
`files.atomic_write`), so a failure leaves no half-written file behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from pathlib import Path

from ..errors import MinialbertError
from ..files import atomic_write
from . import plots
from .analysis import Analysis
from .render import render_html

FIGURE1_DEFINITION = (
    "for each layer call l: the mean over the text's tokens ([CLS] and [SEP] included) of ||h_l - h_(l-1)||_2 "
    "(l2) and of arccos(cos(h_l, h_(l-1))) in degrees (angle_deg); h_0 is the output of the E->H projection"
)


class VizWarning(UserWarning):
    """PNGs were skipped because matplotlib is not installed."""


def figure1_csv(report: Analysis) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["model", "layer_call", "l2", "angle_deg"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(report.figure1_rows())
    return buf.getvalue()


def figure1_json(report: Analysis) -> str:
    doc = {
        "text": report.text,
        "definition": FIGURE1_DEFINITION,
        "models": [{"model": f.model, "pieces": f.pieces, "n_tokens": len(f.pieces),
                    "layer_call": f.layer_calls.tolist(), "l2": f.l2.tolist(), "angle_deg": f.angle.tolist()}
                   for f in [report.figure1, *report.compare]],
    }
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def check_directory(path: str | os.PathLike) -> Path:
    """Fail early (before any model is loaded) when `path` cannot become the report directory."""
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise MinialbertError(f"cannot write the report to {directory}: it exists and is not a directory; "
                              "give a directory path (new or existing) with --output")
    return directory


def _directory(path: str | os.PathLike) -> Path:
    directory = check_directory(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MinialbertError(f"cannot create the report directory {directory}: {e.strerror}") from None
    return directory


def _check_png(png: bool | None) -> None:
    if png and not plots.available():
        raise MinialbertError(f"PNGs need matplotlib, which is not installed: {plots.VIZ_HINT}")


def _write(path: Path, data: bytes) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    atomic_write(path, write)


def write_report(report: Analysis, directory: str | os.PathLike, *, png: bool | None = None) -> list[Path]:
    """report.html, figure1.csv, figure1.json and the PNGs in `directory` (created if needed)."""
    _check_png(png)
    files = {
        "report.html": render_html(report).encode("utf-8"),
        "figure1.csv": figure1_csv(report).encode("utf-8"),
        "figure1.json": figure1_json(report).encode("utf-8"),
    }
    if png is None and not plots.available():
        warnings.warn(f"PNGs not written: matplotlib is not installed ({plots.VIZ_HINT}); report.html does not need it",
                      VizWarning, stacklevel=3)
    elif png is not False:
        files.update(plots.render_pngs(report))
    directory = _directory(directory)
    written = []
    for name, data in files.items():
        _write(directory / name, data)
        written.append(directory / name)
    return written


def write_html(report: Analysis, path: str | os.PathLike) -> Path:
    """The page alone: to `path`, or to `path`/report.html when `path` is a directory."""
    target = Path(path)
    if target.is_dir() or str(path).endswith(("/", os.sep)):
        target = _directory(target) / "report.html"
    _write(target, render_html(report).encode("utf-8"))
    return target
