"""The `minialbert` command. It only parses arguments and calls the library.

Mistakes a user can fix (MinialbertError, a missing file, ...) are printed as one line on
stderr with exit status 1 (2 for bad arguments, from argparse); anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from .errors import MinialbertError


def _model_args(p: argparse.ArgumentParser, default: str | None = "albert-base-v2") -> None:
    p.add_argument("--model", "-m", default=default,
                   help="local checkpoint directory or Hub repo id (default: %(default)s)")
    p.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    p.add_argument("--offline", action="store_true",
                   help="use only the local Hugging Face cache (same as HF_HUB_OFFLINE=1)")


# ------------------------------------------------------------------------------- info
def cmd_info(args: argparse.Namespace) -> int:
    from .config import PRESETS, AlbertConfig
    from .hub import ModelSource, looks_like_path
    from .params import describe

    name = args.model_pos or args.model
    if name in PRESETS or (name.startswith("albert/") and name.split("/", 1)[1] in PRESETS):
        if looks_like_path(name):  # a local folder that happens to carry a preset's name
            config = AlbertConfig.from_json(ModelSource(name).file("config.json"))
        else:
            config = AlbertConfig.from_preset(name)  # no download needed for the official configs
    else:
        source = ModelSource(name, revision=args.revision, local_files_only=args.offline)
        config = AlbertConfig.from_json(source.file("config.json"))
    changes = {}
    if args.embedding_size is not None:
        changes["embedding_size"] = args.embedding_size
    if args.sharing is not None:
        changes["sharing"] = args.sharing
        if args.sharing != "all":
            changes.update(num_hidden_groups=1, inner_group_num=1)
    if changes:
        config = AlbertConfig.from_dict({**config.to_dict(), **{k: v for k, v in changes.items() if k != "sharing"},
                                         "minialbert_sharing": changes.get("sharing", config.sharing)})
    print(describe(config, name))
    return 0


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minialbert",
        description="ALBERT embeddings without transformers: inspect, embed, search, fill masks.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("info", help="print a model's config and its parameter count, broken down")
    p.add_argument("model_pos", nargs="?", metavar="MODEL", help="checkpoint directory, Hub repo id or preset")
    _model_args(p)
    p.add_argument("--embedding-size", type=int, default=None, help="override E (ablation)")
    p.add_argument("--sharing", choices=["all", "attention", "ffn", "none"], default=None,
                   help="override the cross-layer sharing strategy (ablation)")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MinialbertError as e:
        print(f"minialbert {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"minialbert {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `minialbert ... | head`
        return 0


if __name__ == "__main__":  # python -m minialbert.cli
    sys.exit(main())
