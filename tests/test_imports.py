"""No import circles inside minialbert (scripts/import_graph.py: every import, lazy ones included,
except those under `if TYPE_CHECKING:`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).parents[1]

# No circle is tolerated (the trainers' shared helpers live in training.py and argv.py, not cli.py).
KNOWN: list[list[str]] = []


def test_no_import_circles():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    graph = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(graph)
    edges = graph.graph()
    assert "minialbert.inspect.render" in edges["minialbert.inspect.report"]  # the graph sees lazy and eager imports
    circles = [c for c in graph.circles(edges) if c not in KNOWN]
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)
