"""Fine-tuning ALBERT on labelled data: readers, metrics, SQuAD windows and the trainer.

    minialbert finetune --task classify --model albert-base-v2 --train train.tsv --dev dev.tsv \
        --text-column sentence --output-dir sst2 --lr 1e-5 --batch-size 32 --max-steps 20935

Modules: data.py (CSV/TSV/JSONL and token-tagging readers, encoding), squad.py (SQuAD v1.1/v2.0
reading, doc_stride windows, span decoding), metrics.py, train.py (the trainer and its CLI).
The heads themselves are in minialbert/model.py, section 7.
"""

from ..errors import MinialbertError


class FinetuneError(MinialbertError):
    """A fine-tuning input or option a user can fix (missing column, unknown label, bad file)."""
