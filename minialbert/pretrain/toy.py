"""A synthetic corpus with learnable structure, for smoke tests and demos of the trainer.

Every noun always comes with the same adjective and every sentence follows one template, so a
masked word is predictable from its neighbours (MLM can go far below log V); every document
opens with "once upon a time" and its later sentences start with "then" or "finally", so the
order of two consecutive stretches is visible (SOP can go far above 50%).
"""

from __future__ import annotations

import random
from pathlib import Path

NOUNS = "cat dog fox owl bear wolf mouse horse king queen baker farmer".split()
ADJECTIVES = "black brown red grey big small old young white quick lazy happy".split()
VERBS = "saw met chased helped found".split()


def sentence(rng: random.Random, opener: str) -> str:
    a, b = rng.sample(range(len(NOUNS)), 2)
    return f"{opener} the {ADJECTIVES[a]} {NOUNS[a]} {rng.choice(VERBS)} the {ADJECTIVES[b]} {NOUNS[b]}."


def document(rng: random.Random, sentences: int) -> list[str]:
    lines = [sentence(rng, "once upon a time")]
    lines += [sentence(rng, "then") for _ in range(sentences - 2)]
    lines.append(sentence(rng, "finally"))
    return lines


def write_corpus(path: str | Path, documents: int = 400, seed: int = 0, min_sentences: int = 2,
                 max_sentences: int = 3) -> Path:
    rng = random.Random(seed)
    docs = ["\n".join(document(rng, rng.randint(min_sentences, max_sentences))) for _ in range(documents)]
    path = Path(path)
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path
