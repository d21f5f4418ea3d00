"""`morphcpt tokstats` against values computed by hand on a hand-made tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from morphcpt.cli import main
from morphcpt.errors import MorphcptError
from morphcpt.tokenization import TokenizerAdapter
from morphcpt.tokenization.tokstats import (
    benchmark_words, check_targets, read_gold, read_gold_records, report, split_by_benchmark, tokstats,
)

# BPE merges, in rank order, chosen so that (worked by hand):
#   " nagluto" -> ▁nag | luto      " kumain" -> ▁ku | ma | in      " maganda" -> ▁mag | anda
MERGES = [("▁", "n"), ("▁n", "a"), ("▁na", "g"), ("▁", "m"), ("▁m", "a"), ("▁ma", "g"), ("l", "u"), ("t", "o"),
          ("lu", "to"), ("▁", "k"), ("▁k", "u"), ("m", "a"), ("i", "n"), ("a", "n"), ("d", "a"), ("an", "da")]
GOLD = [{"word": "nagluto", "boundaries": [3]}, {"word": "kumain", "boundaries": [1, 3]},
        {"word": "maganda", "boundaries": [2]}]


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers

    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    vocab = {s: i for i, s in enumerate(specials)}
    for piece in list("▁abdgiklmnotu") + ["".join(m) for m in MERGES]:
        vocab.setdefault(piece, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=MERGES, unk_token="<unk>"))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.decoder = decoders.Replace("▁", " ")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    path = tmp_path_factory.mktemp("toy")
    tok.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<bos>", "eos_token": "<eos>"}))
    return path


def test_hand_computed_vanilla(toy_dir, tmp_path):
    adapter = TokenizerAdapter.from_dir(toy_dir)
    pieces = [[adapter.token_bytes[i] for i in adapter.encode(" " + g["word"])] for g in GOLD]
    assert pieces == [[b" nag", b"luto"], [b" ku", b"ma", b"in"], [b" mag", b"anda"]]
    gold_file = tmp_path / "gold.jsonl"
    gold_file.write_text("".join(json.dumps(g) + "\n" for g in GOLD))
    out = tmp_path / "stats.json"
    assert main(["tokstats", "--tokenizer", str(toy_dir), "--mode", "vanilla", "--gold", str(gold_file),
                 "--output", str(out), "--cache-dir", str(tmp_path / "cache")]) == 0
    full = json.loads(out.read_text())
    report = full["modes"]["vanilla"]
    assert set(full["modes"]) == {"vanilla"} and full["words"] == 3
    assert full["ceiling"]["boundary_recall"] == 1.0  # gold pieces re-encoded: every gold cut is a boundary
    assert full["cutter"]["cut_f1"] == pytest.approx(1.0)  # nag|luto, k|um|ain, ma|ganda
    # boundaries: predicted {3}, {2, 4}, {3} vs gold {3}, {1, 3}, {2}: 1 hit of 4 predicted, of 4 gold
    assert report["fertility"] == pytest.approx(7 / 3)
    assert report["boundary_precision"] == pytest.approx(1 / 4)
    assert report["boundary_recall"] == pytest.approx(1 / 4)
    assert report["boundary_f1"] == pytest.approx(1 / 4)
    # affix morphemes: nag (one token ▁nag), um (inside ▁ku|ma), ma (inside ▁mag)
    assert report["affixes"] == 3
    assert report["affix_preservation"] == pytest.approx(1 / 3)
    assert report["affix_isolation"] == pytest.approx(1 / 3)
    assert report["seeds"] == [0]


def test_stochastic_modes_average_over_seeds(toy_dir, tmp_path):
    adapter = TokenizerAdapter.from_dir(toy_dir)
    gold = [(g["word"], g["boundaries"]) for g in GOLD] * 4
    report = tokstats(adapter, "stochastok", {"expand_prop": 1.0}, gold, [0, 1, 2], cache_dir=tmp_path)
    assert [s["seed"] for s in report["per_seed"]] == [0, 1, 2]
    for metric in ("fertility", "boundary_recall", "affix_preservation"):
        assert report[metric] == pytest.approx(sum(s[metric] for s in report["per_seed"]) / 3)
    assert report["fertility"] > 7 / 3  # every word gets at least one split attempt
    none = tokstats(adapter, "stochastok", {"expand_prop": 0.0}, gold, [0, 1], cache_dir=tmp_path)
    assert none["fertility"] == pytest.approx(7 / 3) and none["boundary_f1"] == pytest.approx(1 / 4)


def test_bad_gold_names_the_line(tmp_path):
    bad = tmp_path / "gold.jsonl"
    bad.write_text('{"word": "kumain", "boundaries": [1, 3]}\n{"word": "nagluto", "boundaries": [7]}\n')
    with pytest.raises(MorphcptError, match=r"gold.jsonl:2: boundaries"):
        read_gold(bad)



def test_gold_reader_takes_a_bom_and_blank_lines_and_names_bad_utf8_by_line(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_bytes(b'\xef\xbb\xbf{"word": "kumain", "boundaries": [1, 3]}\n\n{"word": "nagluto", "boundaries": [3]}\n\n')
    assert read_gold(gold) == [("kumain", [1, 3]), ("nagluto", [3])]
    gold.write_bytes(b'{"word": "kumain", "boundaries": [1, 3]}\n\n{"word": "nag\xffluto", "boundaries": [3]}\n')
    with pytest.raises(MorphcptError, match=r"gold.jsonl:3: invalid UTF-8"):
        read_gold(gold)

def test_patok_meets_the_issue_targets_on_llama3(llama3_adapter, split_cache):
    """The experiment's premise on the real Llama-3 tokenizer and the benchmark-free dev gold set:
    Patok puts token boundaries on morpheme boundaries (the targets of issues 12 and 21), vanilla does not."""
    records = read_gold_records(Path(__file__).with_name("data") / "dev_gold.jsonl")
    modes = {"vanilla": ("vanilla", {}), "patok": ("patok", {}), "patok every word": ("patok", {"cut_prop": 1.0})}
    result = report(llama3_adapter, records, modes, [0, 1, 2, 3, 4], cache_dir=split_cache)
    checks = {label: ok for label, _, _, _, ok in check_targets(result)}
    assert len(checks) == 5 and all(checks.values()), check_targets(result)
    assert result["modes"]["vanilla"]["boundary_f1"] < 0.35
    assert result["modes"]["patok"]["affix_preservation"] > 2 * result["modes"]["vanilla"]["affix_preservation"]
    ceiling = result["ceiling"]["boundary_f1"]
    assert result["modes"]["patok every word"]["boundary_f1"] <= ceiling + 0.01


def test_benchmark_split_reads_quoted_words_labels_and_fields(tmp_path, toy_dir):
    """Benchmark target words: quoted in a prompt (escaped or not), a one-word label, word/root fields;
    the cutter is scored separately on gold words that are targets and on the others."""
    bench = tmp_path / "bench.jsonl"
    bench.write_text(
        json.dumps({"prompts": [{"text_en": 'What is the affix of the word \\"nagluto\\"?'}], "label": "nag-"}) + "\n"
        + json.dumps({"prompts": [{"text_en": 'Inflect "kain" with "-um-".'}], "label": "kumain"}) + "\n"
        + json.dumps({"text_en": "x", "word": "Maganda", "root": "ganda", "label": "A"}) + "\n")
    words = benchmark_words([bench])
    assert words == {"nagluto", "kain", "um", "kumain", "maganda", "ganda", "a"}
    records = [{**g, "kind": "", "frequency": 1, "root": ""} for g in GOLD] + [
        {"word": "lutuin", "boundaries": [4], "kind": "", "frequency": 1, "root": "luto"}]
    split = split_by_benchmark(records, words)
    assert split["on benchmark target words"]["words"] == 3 and split["on other words"]["words"] == 1
    assert split["on other words"]["cut_f1"] == pytest.approx(1.0)  # lutu|in
    gold_file = tmp_path / "gold.jsonl"
    gold_file.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "stats.json"
    assert main(["tokstats", "--tokenizer", str(toy_dir), "--mode", "vanilla", "--gold", str(gold_file), "--benchmark",
                 str(bench), "--output", str(out), "--cache-dir", str(tmp_path / "cache")]) == 0
    assert json.loads(out.read_text())["cutter_by_benchmark"]["on benchmark target words"]["words"] == 3
    bench.write_text('{"label": "x"}\nnot json\n')
    with pytest.raises(MorphcptError, match=r"bench.jsonl:2: not valid JSON"):
        benchmark_words([bench])
