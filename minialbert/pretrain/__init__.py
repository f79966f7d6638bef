"""Pre-training ALBERT from scratch: the two objectives (MLM with n-gram masking, SOP), the data
pipeline (corpus -> SentencePiece ids -> segment pairs -> masked batches), LAMB/AdamW, and the trainer.

    python scripts/pretrain.py --corpus corpus.txt --output-dir out --hidden-size 256 ...
    torchrun --nproc_per_node 2 scripts/pretrain.py ...        # the same command, data-parallel

Modules: masking.py (n-gram masking), data.py (corpus, SOP pairs, sharded deterministic order),
objectives.py (the two losses, from their equations), optim.py (LAMB, AdamW, schedule),
train.py (the trainer; `main(argv)`).
"""

from ..errors import MinialbertError


class PretrainError(MinialbertError):
    """A pre-training mistake a user can fix: missing/empty corpus, bad flags, unusable checkpoint."""
