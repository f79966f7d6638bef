"""Pre-training objectives and data: loss equals transformers', n-gram masking, SOP pairs,
the deterministic sharded order, LAMB and the schedule, one-line errors."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from minialbert.config import AlbertConfig
from minialbert.errors import MinialbertError
from minialbert.model import AlbertForPreTraining
from minialbert.pretrain import PretrainError
from minialbert.pretrain.data import (CLS, MASK, SEP, Draws, PretrainingData, Shuffle, Vocab, read_documents,
                                     train_sentencepiece)
from minialbert.pretrain.masking import IGNORE_INDEX, mask_tokens, ngram_probabilities
from minialbert.pretrain.objectives import PretrainingObjective, mlm_loss, sop_loss
from minialbert.pretrain.optim import Lamb, linear_schedule
from minialbert.pretrain.toy import write_corpus

LOSS_TOL = 2e-6  # docs/guides/pretraining.md: the loss equals transformers' to within this


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy")
    corpus = write_corpus(d / "corpus.txt", documents=300, seed=1)
    docs = read_documents([corpus])
    train_sentencepiece(docs, d / "spiece.model", 120)
    vocab = Vocab.load(d / "spiece.model")
    data = PretrainingData.from_corpus([corpus], vocab, docs=docs, max_seq_length=64, seed=7)
    return corpus, vocab, data


# ------------------------------------------------------------------- loss vs transformers
@pytest.mark.parametrize("seed", [0, 1])
def test_combined_loss_equals_transformers(tmp_path, toy, seed):
    import transformers

    _, vocab, data = toy
    config = AlbertConfig(vocab_size=vocab.size, embedding_size=16, hidden_size=32, num_hidden_layers=3,
                          num_attention_heads=4, intermediate_size=37, max_position_embeddings=64)
    torch.manual_seed(seed)
    ours = AlbertForPreTraining(config).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_(0, 0.2)
    ours.save_pretrained(tmp_path)
    ref = transformers.AlbertForPreTraining.from_pretrained(tmp_path, attn_implementation="eager").eval()
    batch = data.collate(range(8 * seed, 8 * seed + 8), epoch=seed)  # real masked SOP batch, padded
    assert (batch["attention_mask"] == 0).any() and (batch["sentence_order_label"] == 1).any()
    kw = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        theirs = ref(**kw, labels=batch["labels"], sentence_order_label=batch["sentence_order_label"])
        mine = ours(**kw, labels=batch["labels"], sentence_order_label=batch["sentence_order_label"])
        total, l_mlm, l_sop, _ = PretrainingObjective(ours)(**kw, labels=batch["labels"],
                                                            sentence_order_label=batch["sentence_order_label"])
        from_eq = mlm_loss(theirs.prediction_logits, batch["labels"]) + sop_loss(theirs.sop_logits,
                                                                                batch["sentence_order_label"])
    diffs = {
        "model.loss": abs(mine.loss - theirs.loss).item(),
        "objective": abs(total - theirs.loss).item(),
        "equations": abs(from_eq - theirs.loss).item(),
        "prediction_logits": (mine.prediction_logits - theirs.prediction_logits).abs().max().item(),
        "sop_logits": (mine.sop_logits - theirs.sop_logits).abs().max().item(),
    }
    print("max|diff|", diffs, "loss", theirs.loss.item())
    # The README's figure. Measured: 4.8e-7 at most, one float32 rounding step of a loss of ~5.
    assert max(diffs.values()) <= LOSS_TOL, diffs
    assert theirs.loss.item() > 1.0  # a real, non-trivial loss


def test_mlm_loss_only_counts_masked_positions():
    logits = torch.randn(2, 5, 11)
    labels = torch.full((2, 5), IGNORE_INDEX)
    labels[0, 1], labels[1, 3] = 4, 7
    expected = -(torch.log_softmax(logits[0, 1], -1)[4] + torch.log_softmax(logits[1, 3], -1)[7]) / 2
    assert torch.allclose(mlm_loss(logits, labels), expected)
    assert torch.allclose(mlm_loss(logits, labels),
                          torch.nn.functional.cross_entropy(logits.view(-1, 11), labels.view(-1)))


# ------------------------------------------------------------------------------- masking
def test_ngram_probabilities():
    assert np.allclose(ngram_probabilities(3), [6 / 11, 3 / 11, 2 / 11])


def test_masking_properties(toy):
    _, vocab, data = toy
    n_mask = n_random = n_same = n_total = 0
    exact_budget = 0
    runs = Counter()
    for i in range(len(data)):
        e = data.example(i, epoch=0)
        ids, labels = e["input_ids"], e["labels"]
        original = ids.copy()
        masked = labels != IGNORE_INDEX
        original[masked] = labels[masked]
        # never special tokens; at most max_predictions; about 15% of the tokens
        assert not masked[original == CLS].any() and not masked[original == SEP].any()
        budget = min(20, max(1, round(len(ids) * 0.15)))
        assert 1 <= masked.sum() <= budget
        exact_budget += masked.sum() == budget
        # whole words: a word is masked entirely or not at all
        word = np.cumsum(vocab.starts[original] | np.isin(original, [CLS, SEP]))  # word id per position
        for w in np.unique(word[masked]):
            inside = (word == w) & ~np.isin(original, [CLS, SEP])
            assert masked[inside].all()
        # 80 / 10 / 10
        n_total += masked.sum()
        n_mask += (ids[masked] == MASK).sum()
        n_same += (ids[masked] == labels[masked]).sum()
        n_random += ((ids[masked] != MASK) & (ids[masked] != labels[masked])).sum()
        # runs of consecutive masked words (adjacent spans may touch, so only a tendency)
        starts = np.flatnonzero(masked & vocab.starts[original])
        run = 1
        for a, b in zip(starts, starts[1:]):
            between = original[a + 1:b]
            if masked[a:b + 1].all() and not vocab.starts[between].any():
                run += 1
            else:
                runs[run] += 1
                run = 1
        if len(starts):
            runs[run] += 1
    assert exact_budget / len(data) > 0.9
    assert abs(n_mask / n_total - 0.8) < 0.03
    assert abs(n_same / n_total - 0.1) < 0.03
    assert abs(n_random / n_total - 0.1) < 0.03
    assert runs[1] > runs[2] > runs[3] > 0  # p(n) = 6/11, 3/11, 2/11


def test_masking_is_deterministic_per_seed_epoch_index(toy):
    _, _, data = toy
    a, b, c = data.example(5, epoch=0), data.example(5, epoch=0), data.example(5, epoch=1)
    assert all(np.array_equal(a[k], b[k]) for k in ("input_ids", "labels", "token_type_ids"))
    assert not (np.array_equal(a["labels"], c["labels"]) and np.array_equal(a["input_ids"], c["input_ids"]))


def test_word_spans_never_split_a_word():
    starts = np.array([True] * 5 + [True, False, False, True, False])  # ids 6, 7, 9 continue a word
    ids = np.array([CLS, 5, 6, 7, 8, 9, 5, 6, 7, SEP])  # words: positions [1,2,3] [4,5] [6,7,8]
    maskable = np.ones(10, bool)
    maskable[[0, 9]] = False
    for seed in range(50):
        inputs, labels = mask_tokens(ids, maskable, starts, np.random.default_rng(seed), mask_id=MASK,
                                     vocab_size=10, masked_lm_prob=0.3, max_predictions=5)
        m = labels != IGNORE_INDEX
        for word in ([1, 2, 3], [4, 5], [6, 7, 8]):
            assert m[word].all() or not m[word].any()
        assert m.sum() in (2, 3)  # budget round(10 * 0.3) = 3: whole words only, never split
        assert not m[0] and not m[9]


# --------------------------------------------------------------------------- SOP and order
def test_sop_pairs(toy):
    _, vocab, data = toy
    swapped = 0
    for i in range(len(data)):
        e = data.example(i, epoch=3)
        ids, types = e["input_ids"], e["token_type_ids"]
        original = ids.copy()
        m = e["labels"] != IGNORE_INDEX
        original[m] = e["labels"][m]
        seps = np.flatnonzero(original == SEP)
        assert original[0] == CLS and len(seps) == 2 and seps[1] == len(ids) - 1
        assert (types[:seps[0] + 1] == 0).all() and (types[seps[0] + 1:] == 1).all()
        a, b = original[1:seps[0]], original[seps[0] + 1:-1]
        pa, pb = data.pairs[i]
        if len(pa) + len(pb) <= 61:  # not truncated: the two consecutive stretches, maybe swapped
            if e["sentence_order_label"]:
                assert np.array_equal(a, pb) and np.array_equal(b, pa)
            else:
                assert np.array_equal(a, pa) and np.array_equal(b, pb)
        swapped += int(e["sentence_order_label"])
    assert 0.4 < swapped / len(data) < 0.6


def test_order_is_a_function_of_the_step_and_shards_are_disjoint(toy):
    _, _, data = toy
    G = 12
    per_epoch = data.steps_per_epoch(G)
    seen = []
    for step in range(per_epoch):
        epoch, block = data.step_indices(step, G)
        assert epoch == 0
        shards = [np.concatenate(data.rank_microbatches(step, r, 3, 2, 2)[1]) for r in range(3)]
        assert sorted(np.concatenate(shards)) == sorted(block)  # ranks together = the global batch
        assert len(set(np.concatenate(shards))) == G  # and no example twice
        one_rank = np.concatenate(data.rank_microbatches(step, 0, 1, 6, 2)[1])
        assert sorted(one_rank) == sorted(block)  # same global batch whatever the world size
        seen.extend(block)
    assert len(set(seen)) == len(seen) == per_epoch * G  # an epoch uses each example at most once
    assert data.step_indices(per_epoch, G)[0] == 1
    assert not np.array_equal(data.step_indices(per_epoch, G)[1], data.step_indices(0, G)[1])


@pytest.mark.parametrize("n", [1, 2, 3, 5, 16, 17, 1000, 4097, 65537])
def test_shuffle_is_a_permutation_of_range_n(n):
    """Every position maps to a distinct example below n (the cycle walk included: 17, 4097 and
    65537 sit just above a power of two, so most of the Feistel domain lies outside range(n))."""
    got = Shuffle(n, 7, 0)(np.arange(n))
    assert sorted(got.tolist()) == list(range(n))
    # positions evaluated one by one give the same as all at once (the order needs no state)
    assert [int(Shuffle(n, 7, 0)([k])[0]) for k in range(min(n, 50))] == got[:50].tolist()


def test_shuffle_depends_on_seed_and_epoch_and_looks_uniform():
    n = 10
    base = Shuffle(1000, 1, 0)(np.arange(1000))
    assert not np.array_equal(base, Shuffle(1000, 1, 1)(np.arange(1000)))
    assert not np.array_equal(base, Shuffle(1000, 2, 0)(np.arange(1000)))
    assert abs(np.corrcoef(base, np.arange(1000))[0, 1]) < 0.1  # not near the identity
    # where position 0 and position 9 land, over 3000 epochs: each of the 10 examples about 300 times
    # (a binomial(3000, 0.1) stays within 300 +- 75 with probability ~ 1 - 1e-5 per cell)
    firsts = np.array([Shuffle(n, 3, e)([0, 9]) for e in range(3000)])
    for column in firsts.T:
        counts = np.bincount(column, minlength=n)
        assert counts.min() > 225 and counts.max() < 375, counts
    # and the pair (position 0, position 1) is not tied: all 90 ordered pairs occur
    pairs = {tuple(Shuffle(n, 4, e)([0, 1]).tolist()) for e in range(3000)}
    assert len(pairs) == 90


def test_buffered_draws_are_uniform_integers_in_range():
    draws = Draws(np.random.default_rng(0), block=1000)  # several refills
    for low, high in ((1, 2), (1, 5), (2, 126)):
        got = np.array([draws.integers(low, high) for _ in range(20000)])
        assert got.min() == low and got.max() == high - 1
        counts = np.bincount(got - low)
        expected = 20000 / (high - low)
        assert np.abs(counts - expected).max() < 5 * np.sqrt(expected) + 1, counts
    u = np.array([draws.random() for _ in range(20000)])
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01


# ------------------------------------------------------------------------------ optimizer
def test_linear_schedule():
    f = linear_schedule(10, 110)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(60) == pytest.approx(0.5) and f(110) == 0.0


def test_lamb_step_by_hand():
    """Two steps of ALBERT's LAMB (google-research/albert lamb_optimizer.py: no bias correction),
    worked out from its equations; and the paper's bias-corrected variant."""
    g1, g2 = torch.tensor([0.5, -1.0]), torch.tensor([-0.25, 2.0])
    w0 = torch.tensor([3.0, 4.0])

    def by_hand(correct: bool) -> torch.Tensor:
        w, m, v = w0.clone(), torch.zeros(2), torch.zeros(2)
        for t, g in enumerate((g1, g2), start=1):
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            mh, vh = (m / (1 - 0.9 ** t), v / (1 - 0.999 ** t)) if correct else (m, v)
            u = mh / vh.sqrt() + 0.1 * w
            w = w - 0.1 * (w.norm() / u.norm()) * u
        return w

    for correct in (False, True):
        w = torch.nn.Parameter(w0.clone())
        opt = Lamb([w], lr=0.1, betas=(0.9, 0.999), eps=0.0, weight_decay=0.1, bias_correction=correct)
        for g in (g1, g2):
            w.grad = g.clone()
            opt.step()
        assert torch.allclose(w.detach(), by_hand(correct), atol=1e-6), correct
    # ALBERT's variant is the default, and the two really differ on these numbers.
    assert Lamb([torch.nn.Parameter(w0.clone())]).defaults["bias_correction"] is False
    assert (by_hand(False) - by_hand(True)).abs().max() > 1e-3
    # The trainer's --lamb-bias-correction reaches the optimizer.
    from minialbert.pretrain.optim import make_optimizer
    from minialbert.pretrain.train import build_parser

    model = torch.nn.Linear(2, 2)
    for argv, expected in (([], False), (["--lamb-bias-correction"], True)):
        args = build_parser().parse_args(["--corpus", "c", "--output-dir", "o", *argv])
        opt = make_optimizer(model, "lamb", 0.1, 0.0, bias_correction=args.lamb_bias_correction)
        assert all(g["bias_correction"] is expected for g in opt.param_groups)


# -------------------------------------------------------------------------------- errors
def test_user_mistakes_are_one_line_minialbert_errors(tmp_path):
    from minialbert.pretrain.train import main

    (tmp_path / "empty.txt").write_text("\n\n   \n")
    cases = [
        (["--corpus", str(tmp_path / "missing.txt"), "--output-dir", str(tmp_path / "o")], "not found"),
        (["--corpus", str(tmp_path / "empty.txt"), "--output-dir", str(tmp_path / "o")], "empty"),
        (["--corpus", "x.txt", "--output-dir", str(tmp_path / "o"), "--resume"], "no checkpoint"),
    ]
    for argv, words in cases:
        with pytest.raises(MinialbertError) as info:
            main(argv + ["--device", "cpu"])
        assert isinstance(info.value, PretrainError)
        msg = str(info.value)
        assert "\n" not in msg and words in msg, (argv, msg)


@pytest.mark.parametrize("argv, words", [
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--optimizer", "sgd"], "invalid choice"),
    (["--lr", "abc"], "invalid float"),
    (["--lr", "-1e-3"], "--lr must be positive"),  # a negative value after a space reaches the check
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_flags_exit_2_like_every_command(tmp_path, capsys, argv, words):
    """Usage errors go through argparse: usage + one error line on stderr, exit status 2."""
    from minialbert.cli import main as cli_main

    with pytest.raises(SystemExit) as info:
        cli_main(["pretrain", "--corpus", "x.txt", "--output-dir", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.strip().splitlines()[-1].startswith("minialbert pretrain: error: ") and words in err, err
    with pytest.raises(SystemExit) as info:
        cli_main(["pretrain", "--output-dir", str(tmp_path / "o")])
    assert info.value.code == 2 and "--corpus" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
