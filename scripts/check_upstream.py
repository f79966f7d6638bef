"""Compare minialbert's tokenizer with the newest transformers release (issue 25).

    python scripts/check_upstream.py                  # newest release, default compat mode
    python scripts/check_upstream.py --transformers 5.26.0 --with-deps

pip-installs the release into a temporary folder (this Python's packages are not touched; with
--with-deps its dependencies too, e.g. a newer tokenizers), runs its AlbertTokenizer there on
every hard case of tests/tokenizer_cases.py for each fixture folder and setting
(scripts/tokenizer_reference.py), runs minialbert's AlbertTokenizer (compat mode --compat) on
the same, prints a table of the differences with examples, and exits 1 when there are any
(0 when none). The test suite compares with the pinned release (pyproject.toml's test extra);
this is the scheduled-style job that finds the next upstream change before users do. It needs
pip access to PyPI; run it by hand or on a schedule, not in the offline test suite.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import tokenizer_reference as reference  # noqa: E402

from minialbert.tokenizer import AlbertTokenizer  # noqa: E402
from minialbert.tokenizer.symbols import COMPAT_MODES  # noqa: E402


def differences(upstream: dict, compat: str, show: int) -> list[tuple[str, str, int, dict[str, int], list[str]]]:
    """(config, set, number of cases, {field: differing cases}, examples) for every config and set."""
    cases = reference.cases()
    rows = []
    for folder, kwargs in reference.CONFIGS:
        name = reference.config_name(folder, kwargs)
        tok = AlbertTokenizer.from_pretrained(reference.FIXTURES / folder, compat=compat, **kwargs)
        mine = reference.encode_all(lambda texts, pairs=None, tok=tok, **kw: tok(texts, pairs, **kw))
        theirs = upstream["configs"][name]
        for set_name, fields in theirs.items():
            counts = {f: sum(a != b for a, b in zip(mine[set_name][f], fields[f], strict=True)) for f in fields}
            bad = [k for k in range(len(cases[set_name]))
                   if any(mine[set_name][f][k] != fields[f][k] for f in fields)]
            examples = []
            for k in bad[:show]:
                text = cases[set_name][k]
                if set_name != "pairs":
                    ours = tok.convert_ids_to_tokens(mine[set_name]["input_ids"][k])
                    upstream_tokens = tok.convert_ids_to_tokens(fields["input_ids"][k])
                    examples.append(f"{text!r}: minialbert {' '.join(ours)} | transformers {' '.join(upstream_tokens)}")
                else:
                    examples.append(f"{tuple(text)!r}")
            rows.append((name, set_name, len(cases[set_name]), {f: n for f, n in counts.items()}, examples))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--transformers", default="latest",
                   help="release to compare with: 'latest' (default), a number such as 5.26.0, or 'installed'")
    p.add_argument("--with-deps", action="store_true", help="install its dependencies into the folder too")
    p.add_argument("--target", help="install folder to use (and keep) instead of a temporary one")
    p.add_argument("--compat", default="transformers", choices=COMPAT_MODES, help="minialbert's mode to compare")
    p.add_argument("--show", type=int, default=3, help="examples per differing row (default 3)")
    args = p.parse_args(argv)
    try:
        upstream = reference.record(args.transformers, args.target, deps=args.with_deps)
    except subprocess.CalledProcessError as e:  # pip or the subprocess failed: say so in one line
        what = "pip install" if "pip" in e.cmd else "running it"
        print(f"check_upstream: transformers {args.transformers}: {what} failed (exit {e.returncode}; "
              "no PyPI access? a newer dependency needed? try --with-deps)", file=sys.stderr)
        return 2
    import tokenizers

    print(f"transformers {upstream['transformers']} (tokenizers {upstream['tokenizers']}) vs minialbert "
          f"compat={args.compat!r} (tokenizers {tokenizers.__version__} here)\n")
    rows = differences(upstream, args.compat, args.show)
    fields = ["input_ids", "token_type_ids", "attention_mask", "offset_mapping"]
    print("| folder-settings | set | cases | " + " | ".join(f"differ: {f}" for f in fields) + " |")
    print("|---|---|---:|" + "---:|" * len(fields))
    for name, set_name, n, counts, _ in rows:
        print(f"| {name} | {set_name} | {n} | " + " | ".join(str(counts.get(f, "")) for f in fields) + " |")
    total = sum(sum(c.values()) for _, _, _, c, _ in rows)
    for name, set_name, _, _counts, examples in rows:
        if examples:
            print(f"\n{name} / {set_name}:")
            for e in examples:
                print("  " + e)
    print(f"\n{'no differences' if not total else f'{total} differing fields'}: transformers "
          f"{upstream['transformers']} vs minialbert compat={args.compat!r}")
    return 1 if total else 0


if __name__ == "__main__":
    raise SystemExit(main())
