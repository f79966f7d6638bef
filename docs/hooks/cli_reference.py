"""MkDocs hook: docs/reference/cli.md, generated from the argparse definitions at every build.

Each command's `--help`, exactly as argparse formats it (80 columns), from `minialbert.cli.build_parser()`
and, for the commands that own their parser (`pretrain`, `finetune`), from theirs. Nothing is copied by
hand, so the page always lists the options the installed code accepts.
"""

from __future__ import annotations

import argparse
import importlib
import os

from mkdocs.structure.files import File

PAGE = "reference/cli.md"
# Commands whose options are parsed by another module's build_parser() (cli.PASSTHROUGH).
OWN_PARSERS = {"pretrain": "minialbert.pretrain.train", "finetune": "minialbert.finetune.train"}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help(parser: argparse.ArgumentParser) -> str:
    return parser.format_help().rstrip()


def generate() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal; fix it so the page is reproducible
    from minialbert import cli

    top = cli.build_parser()
    md = ["# Command line", "",
          "Generated from the argparse definitions (`minialbert/cli.py`, and the trainers' own parsers) by "
          "`docs/hooks/cli_reference.py` at every build: this is exactly what `--help` prints.", "",
          "```text", f"$ minialbert --help\n{_help(top)}", "```", ""]
    for name, sub in _subcommands(top).items():
        md += [f"## `minialbert {name}`", ""]
        if name in OWN_PARSERS:
            sub = importlib.import_module(OWN_PARSERS[name]).build_parser()
        nested = _subcommands(sub)
        md += ["```text", f"$ minialbert {name} --help\n{_help(sub)}", "```", ""]
        for inner, parser in nested.items():
            md += [f"### `minialbert {name} {inner}`", "", "```text",
                   f"$ minialbert {name} {inner} --help\n{_help(parser)}", "```", ""]
    return "\n".join(md)


def on_files(files, config):
    files.append(File.generated(config, PAGE, content=generate()))
    return files
