"""Small generated GLUE folders, in the official layout (with its quirks) or as a Hugging Face
export, for tests, the docs and trying `minialbert glue` offline. The texts are filler words of
the test tokenizer's vocabulary with a marker word that decides the label (so a model can learn
it); the numbers mean nothing.

    python -m minialbert.glue.toy glue_data               # official layout
    python -m minialbert.glue.toy glue_hf --layout parquet
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from ..finetune.toy import FILLER
from .tasks import TASKS

MARKERS = ("life", "time", "people")  # label 0, 1, 2 (regression: the score grows with the marker)


def _sentence(rng: random.Random, label: int) -> str:
    words = [rng.choice(FILLER) for _ in range(rng.randint(3, 8))]
    words.insert(rng.randint(0, len(words)), MARKERS[label % len(MARKERS)])
    return " ".join(words)


def task_rows(key: str, n: int, seed: int) -> list[dict]:
    """Rows {text, pair, label} (label: an id, or a float for STS-B) of one generated split."""
    task = TASKS[key]
    rng = random.Random(f"{key}-{seed}")
    rows = []
    for i in range(n):
        if task.kind == "regression":
            label = round(rng.uniform(0, 5), 3)
            k = min(2, int(label / 5 * 3))
        else:
            label = k = i % len(task.labels) if i < len(task.labels) else rng.randrange(len(task.labels))
        text = _sentence(rng, k)
        pair = _sentence(rng, k) if task.official.pair is not None else None
        rows.append({"text": text, "pair": pair, "label": label})
    if rows:  # GLUE's TSV files do not quote: a '"' is just a character
        rows[0]["text"] = '"' + rows[0]["text"] + '" she said'
    return rows


def _official_files(key: str, rows: dict[str, list[dict]]) -> dict[str, str]:
    """File name -> content, with each task's real header and quirks."""
    task = TASKS[key]
    out = {}
    labelled = {k: v for k, v in rows.items() if not k.startswith("test")}
    for split, items in labelled.items():
        name = f"{split}.tsv"
        lines = []
        for i, r in enumerate(items):
            lab = f"{r['label']:.3f}" if task.kind == "regression" else task.labels[r["label"]]
            t, p = r["text"], r["pair"]
            lines.append({
                "cola": f"gj04\t{lab}\t{'' if lab == '1' else '*'}\t{t}",  # no header; original label column
                "sst2": f"{t}\t{lab}",
                "mrpc": f"{lab}\t{1000 + i}\t{2000 + i}\t{t}\t{p}",
                "stsb": f"{i}\tmain-news\tMSRvid\t2012test\t{i:04d}\tnone\tnone\t{t}\t{p}\t{lab}",
                "qqp": f"{i}\t{2 * i}\t{2 * i + 1}\t{t}\t{p}\t{lab}",
                "mnli": (f"{i}\t{3 * i}\t{3 * i}e\tfiction\t( {t} )\t( {p} )\t(ROOT {t})\t(ROOT {p})\t{t}\t{p}\t{lab}"
                         + (f"\t{lab}\t{lab}\t{lab}\t{lab}" if split != "train" else "") + f"\t{lab}"),
                "qnli": f"{i}\t{t}\t{p}\t{lab}",
            }.get(key, f"{i}\t{t}\t{p}\t{lab}"))
        header = {
            "cola": None, "sst2": "sentence\tlabel", "mrpc": "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String",
            "stsb": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
            "qqp": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
            "mnli": "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
                    "sentence2_parse\tsentence1\tsentence2\tlabel1" + ("\tlabel2\tlabel3\tlabel4\tlabel5"
                                                                       if split != "train" else "") + "\tgold_label",
            "qnli": "index\tquestion\tsentence\tlabel",
        }.get(key, "index\tsentence1\tsentence2\tlabel")
        if key == "qqp" and split == "train":
            lines.insert(1, "99999\t7\t8\tonly a question")  # QQP's rows with missing fields
        out[name] = "".join(f"{line}\n" for line in ([header] if header else []) + lines)
    for split, items in rows.items():
        if not split.startswith("test"):
            continue
        text_cols = [task.official.test_text] + ([task.official.test_pair] if task.official.test_pair else [])
        head = "\t".join([task.official.test_index] + text_cols)
        body = "".join(f"{i}\t{r['text']}" + (f"\t{r['pair']}" if r["pair"] is not None else "") + "\n"
                       for i, r in enumerate(items))
        out[f"{split}.tsv"] = head + "\n" + body
    return out


def _splits(key: str, n_train: int, n_dev: int, n_test: int, seed: int) -> dict[str, list[dict]]:
    task = TASKS[key]
    out = {"train": task_rows(key, n_train, seed)}
    for k, (_name, file, _) in enumerate(task.dev):
        out[file[:-4]] = task_rows(key, n_dev, seed + 1 + k)
    if n_test:
        for k, (_name, file, _) in enumerate(task.test):
            out[file[:-4]] = task_rows(key, n_test, seed + 10 + k)
    return out


def write_glue(directory: str | Path, *, layout: str = "official", tasks=None, n_train: int = 24, n_dev: int = 12,
               n_test: int = 6, seed: int = 0) -> dict[str, dict[str, list[dict]]]:
    """Write every task (or `tasks`, keys) under `directory` in `layout` (official, parquet or
    jsonl). Returns {task: {split file stem: rows}} with the true labels, for tests to check."""
    root = Path(directory)
    written = {}
    for key in tasks or TASKS:
        task = TASKS[key]
        rows = _splits(key, n_train, n_dev, n_test, seed)
        written[key] = rows
        ax = task_rows("mnli", n_test, seed + 20) if key == "mnli" and n_test else []
        if layout == "official":
            folder = root / task.official.directory
            folder.mkdir(parents=True, exist_ok=True)
            for name, content in _official_files(key, rows).items():
                (folder / name).write_text(content, encoding="utf-8")
            if ax:  # the diagnostic set, predicted by the MNLI model
                (root / "diagnostic").mkdir(exist_ok=True)
                (root / "diagnostic" / "diagnostic.tsv").write_text("index\tsentence1\tsentence2\n" + "".join(
                    f"{i}\t{r['text']}\t{r['pair']}\n" for i, r in enumerate(ax)), encoding="utf-8")
            continue
        if ax:
            (root / "ax").mkdir(parents=True, exist_ok=True)
            (root / "ax" / "test.jsonl").write_text("".join(json.dumps(
                {"premise": r["text"], "hypothesis": r["pair"], "label": -1, "idx": i}) + "\n" for i, r in enumerate(ax)),
                encoding="utf-8")
        folder = root / key
        folder.mkdir(parents=True, exist_ok=True)
        hf_split = {f: s for _, f, s in (*task.dev, *task.test)}
        hf_split["train.tsv"] = "train"
        text_col, pair_col = task.hf_columns
        for stem, items in rows.items():
            split = hf_split[stem + ".tsv"]
            records = []
            for i, r in enumerate(items):
                rec = {text_col: r["text"]}
                if pair_col:
                    rec[pair_col] = r["pair"]
                rec["label"] = -1 if split.startswith("test") else r["label"]
                rec["idx"] = i
                records.append(rec)
            if layout == "parquet":
                import pyarrow as pa
                import pyarrow.parquet as pq

                pq.write_table(pa.Table.from_pylist(records), folder / f"{split}-00000-of-00001.parquet")
            elif layout == "jsonl":
                (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
            else:
                raise ValueError(f"unknown layout {layout!r}: official, parquet or jsonl")
    return written


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="write a small generated GLUE folder", allow_abbrev=False)
    ap.add_argument("directory")
    ap.add_argument("--layout", choices=("official", "parquet", "jsonl"), default="official")
    ap.add_argument("--train", type=int, default=24, help="training examples per task")
    ap.add_argument("--dev", type=int, default=12, help="dev examples per task (and per MNLI dev split)")
    a = ap.parse_args()
    write_glue(a.directory, layout=a.layout, n_train=a.train, n_dev=a.dev)
    print(f"wrote the nine GLUE tasks ({a.layout} layout) to {a.directory}/", file=sys.stderr)
