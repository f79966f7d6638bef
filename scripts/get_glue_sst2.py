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
import os
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

GLUE_URL = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"
FILES = ("train.tsv", "dev.tsv")


class DownloadError(Exception):
    """Why the files could not be fetched (one line)."""


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def from_zip(url: str = GLUE_URL) -> dict[str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            archive = zipfile.ZipFile(io.BytesIO(r.read()))
        return {name: archive.read(f"SST-2/{name}") for name in FILES}
    except urllib.error.URLError as e:  # no network, DNS, refused, HTTP 404, ...
        raise DownloadError(f"cannot download {url}: {getattr(e, 'reason', e)} (this script needs network access)") from None
    except (OSError, zipfile.BadZipFile, KeyError) as e:
        raise DownloadError(f"cannot read GLUE's SST-2.zip from {url}: {_first_line(e)}") from None


def from_datasets() -> dict[str, bytes]:
    try:
        from datasets import load_dataset
    except ImportError:
        raise DownloadError("--from-datasets needs the `datasets` package: pip install datasets") from None
    try:
        ds = load_dataset("nyu-mll/glue", "sst2")
    except (OSError, ConnectionError) as e:
        raise DownloadError(f"cannot download nyu-mll/glue (sst2): {_first_line(e)}") from None
    files = {}
    for split, name in (("train", "train.tsv"), ("validation", "dev.tsv")):
        # GLUE's layout: a header, no quoting (sentences hold no tabs)
        rows = [f"{' '.join(row['sentence'].split())}\t{row['label']}\n" for row in ds[split]]
        files[name] = ("sentence\tlabel\n" + "".join(rows)).encode("utf-8")
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("out", help="directory for train.tsv and dev.tsv")
    ap.add_argument("--from-datasets", action="store_true", help="use the Hugging Face `datasets` copy")
    ap.add_argument("--url", default=GLUE_URL, help="where GLUE's SST-2.zip is (a mirror, or a file:// URL of a "
                    "downloaded copy; default: %(default)s)")
    args = ap.parse_args(argv)
    try:
        files = from_datasets() if args.from_datasets else from_zip(args.url)
    except DownloadError as e:
        print(f"get_glue_sst2.py: error: {e}", file=sys.stderr)
        return 1
    out = Path(args.out)  # created only once the data is here: a failed run leaves nothing behind
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        tmp = out / (name + ".partial")
        tmp.write_bytes(files[name])
        os.replace(tmp, out / name)
        n = files[name].decode("utf-8").count("\n") - 1
        print(f"{out / name}: {n} sentences", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
