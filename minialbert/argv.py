"""Argument-list helpers shared by the CLI and the trainers (no torch, no minialbert imports), so
that the CLI imports the trainers and never the reverse."""

from __future__ import annotations

import argparse
import re

# A value that starts like a negative number: "-1", "-1,-2", "-.5", "-1e-3".
_NEGATIVE_VALUE = re.compile(r"-\.?[0-9]")


def attach_negative_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """Rewrite `--layer -1,-2` as `--layer=-1,-2` for every option of `parser` that takes a value.

    argparse reads a word that starts with "-" as an option, unless it is exactly a negative
    number: so `--layer -1` works but `--layer -1,-2` (a list) and `--lr -1e-3` fail with
    "expected one argument". No option name starts with a digit, so a word such as "-1,-2"
    after an option that takes a value can only be that value. Words after "--" are left alone.
    Only full option names are rewritten (an abbreviation such as `--lay` needs `--lay=-1,-2`).
    """
    takes_value: set[str] = set()
    stack = [parser]
    while stack:
        p = stack.pop()
        for action in p._actions:
            if action.option_strings and action.nargs != 0:
                takes_value.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    out: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return out + argv[i:]
        if word in takes_value and i + 1 < len(argv) and _NEGATIVE_VALUE.match(argv[i + 1]):
            out.append(f"{word}={argv[i + 1]}")
            i += 2
            continue
        out.append(word)
        i += 1
    return out
