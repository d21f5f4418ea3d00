"""No MCQ option can win or lose by being a token prefix of another (issue 11, item 1).

Crafted items where the gold's tokens are a prefix of a wrong option's and the reverse, on the
real Llama-3 tokenizer (3 digits per token: `103` vs `1035`) and a one-token-per-digit SentencePiece
trained here (as Gemma's). A model that prefers an option (0.9 per token along it, then the answer
terminator) must pick that option through lm-eval for every item, gold or not; without the
terminator the longer gold would lose to its own prefix."""

from __future__ import annotations

import io
import math

import pytest

from morphcpt.evaluation.run import score_items
from morphcpt.evaluation.scoring import (ANSWER_TERMINATOR, TARGET_DELIMITER, continuation_tokens,
                                         count_prefix_pairs, format_context, mcq_continuation)

ON_PATH, OFF_PATH = math.log(0.9), math.log(0.001)


def _items() -> list[dict]:
    def mcq(i, prompt, choices, gold):
        return {"id": f"p{i}", "benchmark": "multi_digit_addition", "format": "mcq",
                "category": "multi_digit_addition", "subcategory": None, "level": None,
                "prompt": prompt, "choices": choices, "gold": choices.index(gold)}

    return [mcq(0, "52+51=", ["1035", "103", "301", "113"], "103"),     # gold a prefix of a wrong option
            mcq(1, "520+515=", ["103", "1035", "1053", "1135"], "1035"),  # a wrong option a prefix of gold
            mcq(2, "What is the root of 'kumain'?", ["kain", "ka", "kai", "in"], "kain")]


@pytest.fixture(scope="module")
def llama3_encode(llama3_tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(llama3_tokenizer_dir)
    return lambda text: tok.encode(text, add_special_tokens=False)


@pytest.fixture(scope="module")
def digit_sp_encode():
    """A tiny BPE SentencePiece with one token per digit and byte fallback (newline = <0x0A>)."""
    import sentencepiece as spm

    lines = [f"{a}+{b}={a + b}" for a in range(0, 2000, 37) for b in range(0, 900, 53)]
    lines += ["kumain kain ka kai in aral magaral kumakain", "What is the root of the word?"] * 50
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model, vocab_size=320,
                                   model_type="bpe", split_digits=True, byte_fallback=True,
                                   normalization_rule_name="identity", remove_extra_whitespaces=False,
                                   hard_vocab_limit=False, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    assert sp.encode("1035", out_type=str)[-4:] == ["1", "0", "3", "5"]  # one token per digit
    return lambda text: sp.encode(text)


def _preferring_lm(encode, preferred: dict[str, str], terminated: bool = True):
    """An lm-eval LM that believes the answer to each context is `preferred[context]`: each token
    along that answer (and its terminator) has probability 0.9, any token off it 0.001."""
    from lm_eval.api.model import LM

    class PreferringLM(LM):
        def loglikelihood(self, requests):
            out = []
            for req in requests:
                context, continuation = req.args
                answer = preferred[context]
                target = continuation_tokens(encode, context, TARGET_DELIMITER
                                             + (mcq_continuation(answer) if terminated else answer))
                tokens = continuation_tokens(encode, context, continuation)
                out.append((sum(ON_PATH if tokens[: t + 1] == target[: t + 1] else OFF_PATH
                                for t in range(len(tokens))), False))
            return out

        def loglikelihood_rolling(self, requests):
            raise NotImplementedError

        def generate_until(self, requests):
            raise NotImplementedError

    return PreferringLM()


@pytest.mark.parametrize("tokenizer", ["llama3", "digit_sentencepiece"])
def test_a_model_preferring_any_option_picks_it_despite_prefix_pairs(tokenizer, request):
    encode = request.getfixturevalue("llama3_encode" if tokenizer == "llama3" else "digit_sp_encode")
    items = _items()
    counts = count_prefix_pairs(items, encode)
    # the crafted addition items do have token-prefix pairs when options are scored bare ...
    assert counts["items_without_terminator"] >= 2
    # ... and none once every option ends with the terminator
    assert counts["items_with_terminator"] == 0

    gold_of = {format_context(it["prompt"]): it["choices"][it["gold"]] for it in items}
    result = score_items(_preferring_lm(encode, gold_of), items, "multi_digit_addition", seed=1,
                         max_gen_tokens=8, encode=encode)
    assert result["summary"]["mcq"]["micro"]["acc"]["value"] == 1.0
    assert result["prefix_pairs"]["items_without_terminator"] == counts["items_without_terminator"]
    assert result["prefix_pairs"]["items_with_terminator"] == 0

    # the same model preferring the gold's prefix partner picks that one: no length advantage either way
    partner = {format_context(it["prompt"]): next(c for c in it["choices"] if c != it["choices"][it["gold"]]
                                                  and (c.startswith(it["choices"][it["gold"]])
                                                       or it["choices"][it["gold"]].startswith(c)))
               for it in items}
    wrong = score_items(_preferring_lm(encode, partner), items, "multi_digit_addition", seed=1,
                        max_gen_tokens=8, encode=encode)
    assert wrong["summary"]["mcq"]["micro"]["acc"]["value"] == 0.0


@pytest.mark.parametrize("tokenizer", ["llama3", "digit_sentencepiece"])
def test_without_the_terminator_a_longer_gold_loses_to_its_prefix(tokenizer, request):
    """The bias the terminator removes: scored bare, `1035` (gold, preferred) loses to `103`."""
    encode = request.getfixturevalue("llama3_encode" if tokenizer == "llama3" else "digit_sp_encode")
    item = _items()[1]
    context = format_context(item["prompt"])
    target = continuation_tokens(encode, context, TARGET_DELIMITER + "1035")

    def bare_ll(option):
        tokens = continuation_tokens(encode, context, TARGET_DELIMITER + option)
        return sum(ON_PATH if tokens[: t + 1] == target[: t + 1] else OFF_PATH for t in range(len(tokens)))

    assert bare_ll("103") > bare_ll("1035")


@pytest.mark.parametrize("tokenizer", ["llama3_encode", "digit_sp_encode"])
@pytest.mark.parametrize("benchmark", ["pacute", "hierarchical", "multi_digit_addition"])
def test_scored_option_has_the_tokens_of_the_same_answer_in_an_example(source_files, benchmark, tokenizer, request):
    """For every tokenizer of the project: the separator after an example's answer and the end of a
    scored option tokenize the same (Llama-3 fuses `\\n\\n`, and `-\\n\\n` after an affix)."""
    from morphcpt.evaluation.fewshot import build_context
    from morphcpt.evaluation.items import normalize_file
    from morphcpt.evaluation.scoring import SHOT_SEPARATOR

    enc = request.getfixturevalue(tokenizer)
    items = {benchmark: normalize_file(source_files[benchmark], benchmark, seed=5)}
    mcq = [it for it in items[benchmark] if it["format"] == "mcq"]
    gen = [it for it in items[benchmark] if it["format"] == "gen"]
    for it in mcq + gen:
        shot, target = it, (it["choices"][it["gold"]] if it["format"] == "mcq" else it["answer"])
        other = next(x for x in mcq + gen if x["id"] != it["id"])
        context = build_context(other, [shot])
        scored = continuation_tokens(enc, build_context(shot, []), TARGET_DELIMITER + target + ANSWER_TERMINATOR)
        as_example = enc(context)
        prefix = enc(build_context(shot, []))
        assert as_example[len(prefix): len(prefix) + len(scored)] == scored, (it["id"], target)
    assert SHOT_SEPARATOR == ANSWER_TERMINATOR
