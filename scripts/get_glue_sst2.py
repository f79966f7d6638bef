#!/usr/bin/env python
"""Download GLUE's SST-2 (Socher et al. 2013, binary sentiment) as train.tsv and dev.tsv.

    python scripts/get_glue_sst2.py glue/SST-2                  # the GLUE zip, Python's standard library only
    python scripts/get_glue_sst2.py glue/SST-2 --from-datasets  # or through `pip install datasets`

Both give TSV files with the header `sentence<TAB>label` (label 0 = negative, 1 = positive):
67,349 training and 872 dev sentences, the dev set the published ALBERT scores use. Needs network
access; minialbert itself never downloads data.
"""

from __future__ import annotations

import argparse
import io
import sys
import urllib.request
import zipfile
from pathlib import Path

GLUE_URL = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"


def from_zip(out: Path) -> None:
    with urllib.request.urlopen(GLUE_URL, timeout=120) as r:
        archive = zipfile.ZipFile(io.BytesIO(r.read()))
    for name in ("train.tsv", "dev.tsv"):
        (out / name).write_bytes(archive.read(f"SST-2/{name}"))


def from_datasets(out: Path) -> None:
    from datasets import load_dataset

    ds = load_dataset("nyu-mll/glue", "sst2")
    for split, name in (("train", "train.tsv"), ("validation", "dev.tsv")):
        with open(out / name, "w", encoding="utf-8", newline="") as f:
            f.write("sentence\tlabel\n")  # GLUE's layout: no quoting, sentences hold no tabs
            for row in ds[split]:
                f.write(f"{' '.join(row['sentence'].split())}\t{row['label']}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="directory for train.tsv and dev.tsv")
    ap.add_argument("--from-datasets", action="store_true", help="use the Hugging Face `datasets` copy")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (from_datasets if args.from_datasets else from_zip)(out)
    for name in ("train.tsv", "dev.tsv"):
        n = sum(1 for _ in open(out / name, encoding="utf-8")) - 1
        print(f"{out / name}: {n} sentences", file=sys.stderr)


if __name__ == "__main__":
    main()
