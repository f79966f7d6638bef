"""GLUE: fine-tune and score a model on the nine tasks the way the papers do.

    minialbert glue --data glue_data --model albert-base-v2 --output glue-out
    minialbert glue --data glue_data --model my-run --output smoke --max-steps 20 --max-train-examples 200

    from minialbert.glue import run_glue
    results = run_glue("glue_data", "albert-base-v2", "glue-out", tasks="rte,mrpc", seeds=(1, 2, 3))

Modules: tasks.py (the nine tasks: files, columns, labels, metrics, the ALBERT paper's
hyperparameters), data.py (the official and the Hugging Face layouts, with their quirks),
metrics.py (official metrics, GLUE score), run.py (the harness: each task trained by
`minialbert finetune`'s own code, dev predictions, test submission files, results.json/.md).
"""

from .tasks import GlueError


def run_glue(*args, **kwargs):
    """See minialbert.glue.run.run_glue."""
    from .run import run_glue as run

    return run(*args, **kwargs)


__all__ = ["GlueError", "run_glue"]
