"""The nine GLUE tasks: where their data is, what it holds, how each is scored and trained.

Fine-tuning defaults are the ALBERT paper's (Lan et al., 2020, "ALBERT: A Lite BERT for
Self-supervised Learning of Language Representations", ICLR 2020, Appendix A.4, the table of
hyperparameters for downstream tasks), which google-research/albert's run_glue.sh also uses:
LR learning rate, BSZ batch size, ALBERT DR dropout inside the model, Classifier DR dropout before
the head, TS training steps, WS warm-up steps, MSL maximum sequence length. EVAL is how often
(in steps) run_glue.sh saves a checkpoint; every one is scored on dev (see `select`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import MinialbertError


class GlueError(MinialbertError):
    """GLUE data, options or a model the harness cannot use; the message names the file."""


@dataclass(frozen=True)
class Hyperparameters:
    lr: float
    batch_size: int
    dropout: float  # ALBERT DR
    classifier_dropout: float  # Classifier DR
    steps: int  # TS
    warmup: int  # WS
    max_length: int  # MSL
    eval_every: int  # run_glue.sh's save_checkpoints_steps

    KEYS = ("lr", "batch_size", "dropout", "classifier_dropout", "steps", "warmup", "max_length", "eval_every")


@dataclass(frozen=True)
class Official:
    """The task in the GLUE distribution (download_glue_data.py): DIR/{train,dev,test}.tsv."""

    directory: str
    text: str | int  # column name, or index when the file has no header
    pair: str | int | None
    label: str | int | None
    header: bool = True  # train/dev files (CoLA's have none; its test.tsv has one)
    test_text: str = "sentence"
    test_pair: str | None = None
    test_index: str = "index"


@dataclass(frozen=True)
class Task:
    key: str  # cola, sst2, ...
    name: str  # CoLA, SST-2, ...
    kind: str  # classify or regression (minialbert finetune --task)
    labels: tuple[str, ...]  # label names as the official files write them, in the HF datasets' id order
    metrics: tuple[str, ...]  # reported metrics; the task score is their mean
    official: Official
    hf_columns: tuple[str, str | None]  # text and pair column of the Hugging Face `glue` export
    defaults: Hyperparameters
    select_metric: str  # what `finetune --metric` picks the best checkpoint by
    # dev/test splits: (name, official file, HF split); MNLI has two of each
    dev: tuple[tuple[str, str, str], ...] = (("dev", "dev.tsv", "validation"),)
    test: tuple[tuple[str, str, str], ...] = (("test", "test.tsv", "test"),)
    server_files: dict = field(default_factory=lambda: {"test": None})  # split -> GLUE server file name

    @property
    def aliases(self) -> set[str]:
        return {self.key, self.name.lower(), self.official.directory.lower(), self.name.lower().replace("-", "")}

    def server_name(self, split: str) -> str:
        return self.server_files.get(split) or self.name


H = Hyperparameters
TASKS: dict[str, Task] = {t.key: t for t in (
    Task("cola", "CoLA", "classify", ("0", "1"), ("mcc",),
         Official("CoLA", text=3, pair=None, label=1, header=False),
         ("sentence", None), H(1e-5, 16, 0.0, 0.1, 5336, 320, 512, 100), "mcc"),
    Task("sst2", "SST-2", "classify", ("0", "1"), ("accuracy",),
         Official("SST-2", "sentence", None, "label"),
         ("sentence", None), H(1e-5, 32, 0.0, 0.1, 20935, 1256, 512, 100), "accuracy"),
    Task("mrpc", "MRPC", "classify", ("0", "1"), ("f1", "accuracy"),
         Official("MRPC", "#1 String", "#2 String", "Quality", test_text="#1 String", test_pair="#2 String"),
         ("sentence1", "sentence2"), H(2e-5, 32, 0.0, 0.1, 800, 200, 512, 100), "accuracy"),
    Task("stsb", "STS-B", "regression", (), ("pearson", "spearman"),
         Official("STS-B", "sentence1", "sentence2", "score", test_text="sentence1", test_pair="sentence2"),
         ("sentence1", "sentence2"), H(2e-5, 16, 0.0, 0.1, 3598, 214, 512, 100), "pearson"),
    Task("qqp", "QQP", "classify", ("0", "1"), ("f1", "accuracy"),
         Official("QQP", "question1", "question2", "is_duplicate", test_text="question1", test_pair="question2",
                  test_index="id"),
         ("question1", "question2"), H(5e-5, 128, 0.1, 0.1, 14000, 1000, 512, 100), "accuracy"),
    Task("mnli", "MNLI", "classify", ("entailment", "neutral", "contradiction"), ("matched", "mismatched"),
         Official("MNLI", "sentence1", "sentence2", "gold_label", test_text="sentence1", test_pair="sentence2"),
         ("premise", "hypothesis"), H(3e-5, 128, 0.0, 0.1, 10000, 1000, 512, 100), "accuracy",
         dev=(("matched", "dev_matched.tsv", "validation_matched"),
              ("mismatched", "dev_mismatched.tsv", "validation_mismatched")),
         test=(("matched", "test_matched.tsv", "test_matched"), ("mismatched", "test_mismatched.tsv", "test_mismatched")),
         server_files={"matched": "MNLI-m", "mismatched": "MNLI-mm", "ax": "AX"}),  # AX: the diagnostic set
    Task("qnli", "QNLI", "classify", ("entailment", "not_entailment"), ("accuracy",),
         Official("QNLI", "question", "sentence", "label", test_text="question", test_pair="sentence"),
         ("question", "sentence"), H(1e-5, 32, 0.0, 0.1, 33112, 1986, 512, 200), "accuracy"),
    Task("rte", "RTE", "classify", ("entailment", "not_entailment"), ("accuracy",),
         Official("RTE", "sentence1", "sentence2", "label", test_text="sentence1", test_pair="sentence2"),
         ("sentence1", "sentence2"), H(3e-5, 32, 0.1, 0.1, 800, 200, 512, 100), "accuracy"),
    Task("wnli", "WNLI", "classify", ("0", "1"), ("accuracy",),
         Official("WNLI", "sentence1", "sentence2", "label", test_text="sentence1", test_pair="sentence2"),
         ("sentence1", "sentence2"), H(2e-5, 16, 0.1, 0.1, 2000, 250, 512, 100), "accuracy"),
)}

# The dev GLUE score leaves WNLI out, as the BERT and ALBERT papers do (its dev set is adversarial:
# a model that learns the training set scores below the majority class).
EXCLUDED_FROM_AVERAGE = ("wnli",)
SCORE_RULE = ("GLUE score = unweighted mean of the task scores; a task's score is the unweighted mean of its "
              "metrics (CoLA: MCC; STS-B: Pearson and Spearman; MRPC, QQP: F1 and accuracy; MNLI: matched and "
              "mismatched accuracy; SST-2, QNLI, RTE: accuracy), all in percent. WNLI is reported but left out of "
              "the dev average, as in the BERT and ALBERT papers.")
METRIC_NAMES = {"mcc": "Matthews corr.", "accuracy": "accuracy", "f1": "F1", "pearson": "Pearson",
                "spearman": "Spearman", "matched": "matched acc.", "mismatched": "mismatched acc."}


def parse_tasks(spec: str) -> list[Task]:
    """'all' or a comma-separated list of task names (cola, SST-2, sts-b, ...), in GLUE's order."""
    if spec.strip().lower() == "all":
        return list(TASKS.values())
    chosen = []
    for word in (w.strip() for w in spec.split(",")):
        if not word:
            continue
        task = next((t for t in TASKS.values() if word.lower() in t.aliases), None)
        if task is None:
            raise GlueError(f"unknown GLUE task {word!r}; choose from all, {', '.join(TASKS)}")
        if task not in chosen:
            chosen.append(task)
    if not chosen:
        raise GlueError("--tasks names no task")
    return [t for t in TASKS.values() if t in chosen]
