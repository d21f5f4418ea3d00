"""Normalizers: gold labels of every source schema, oracle = 100 %, constant = chance, traps."""

from __future__ import annotations

import json
import random

import pytest

from benchmark_fixtures import CUTE_TASKS, SOURCE_ROWS, cute_rows, hierarchical_rows, options_first_rows, pacute_rows, write_jsonl
from morphcpt.errors import MorphcptError
from morphcpt.evaluation.items import normalize_file, read_items, write_items
from morphcpt.evaluation.scoring import item_metrics

BENCHMARKS = list(SOURCE_ROWS)


def oracle_response(item):
    if item["format"] == "mcq":
        return [(0.0 if i == item["gold"] else -5.0, i == item["gold"]) for i in range(len(item["choices"]))]
    return " " + item["answer"] + "\nmore text"


def constant_response(item):
    """Every choice equally likely; generation says nothing: the scorer knows nothing."""
    if item["format"] == "mcq":
        return [(-3.0, False)] * len(item["choices"])
    return ""


def first_choice_response(item):
    """The earlier pipeline's failure mode: the first option always wins."""
    return [(0.0 if i == 0 else -1.0, i == 0) for i in range(len(item["choices"]))]


def mean(values):
    values = list(values)
    return sum(values) / len(values)


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_oracle_scores_100_percent(source_files, benchmark):
    items = normalize_file(source_files[benchmark], benchmark, seed=1)
    for fmt, metric in (("mcq", "acc"), ("mcq", "acc_norm"), ("gen", "exact_match"), ("gen", "contains_match")):
        scored = [item_metrics(it, oracle_response(it))[metric] for it in items if it["format"] == fmt]
        if scored:
            assert mean(scored) == 1.0, (benchmark, fmt, metric)


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_constant_scorer_gets_per_item_chance(source_files, benchmark):
    items = normalize_file(source_files[benchmark], benchmark, seed=1)
    mcq = [it for it in items if it["format"] == "mcq"]
    gen = [it for it in items if it["format"] == "gen"]
    if mcq:
        metrics = [item_metrics(it, constant_response(it)) for it in mcq]
        chance = mean(1 / len(it["choices"]) for it in mcq)
        assert mean(m["acc"] for m in metrics) == pytest.approx(chance, abs=1e-12)
        assert mean(m["chance"] for m in metrics) == pytest.approx(chance, abs=1e-12)
        assert all(m["acc_chance_corrected"] == pytest.approx(0.0, abs=1e-12) for m in metrics)
    assert all(item_metrics(it, constant_response(it))["exact_match"] == 0.0 for it in gen)


@pytest.mark.parametrize("benchmark", ["langgame", "multi_digit_addition", "hierarchical", "pacute"])
def test_first_option_picker_is_near_chance_not_perfect(benchmark):
    """LangGame/MDA sources store the gold at options[0]: after normalization a model that always
    picks the first option must score near chance, not 100 %."""
    rows = SOURCE_ROWS[benchmark]()
    from morphcpt.evaluation.items import normalize_rows, _Row

    items = normalize_rows([_Row(r, f"row{i}") for i, r in enumerate(rows)], benchmark, seed=5)
    mcq = [it for it in items if it["format"] == "mcq"]
    acc = mean(item_metrics(it, first_choice_response(it))["acc"] for it in mcq)
    chance = mean(1 / len(it["choices"]) for it in mcq)
    assert acc < 0.6, f"{benchmark}: first-option picker gets {acc:.2f}: gold positions are not spread"
    assert abs(acc - chance) < 0.25


def test_pacute_gold_is_the_labelled_choice(tmp_path):
    rows = pacute_rows()
    items = {it["id"]: it for it in normalize_file(write_jsonl(tmp_path / "p.jsonl", rows), "pacute", seed=2)}
    for row in rows:
        item = items[row["id"]]
        prompt = row["prompts"][0]
        if "mcq_options" not in prompt:
            assert item["format"] == "gen" and item["answer"] == row["label"]
            continue
        gold_text = item["choices"][item["gold"]]
        if row["label"]:
            assert gold_text == prompt["choice" + str("ABCD".index(row["label"]) + 1)]
        assert gold_text == prompt["mcq_options"]["correct"]
    stress = [it for it in items.values() if it["subcategory"] == "stress_identification"]
    assert stress and all(len(it["choices"]) == 2 for it in stress)
    disamb = [it for it in items.values() if it["subcategory"] == "stress_disambiguation"]
    assert disamb and all(len(it["choices"]) == 3 for it in disamb)  # 4 options, one listed twice
    dup = items["manipulation_mcq_00000"]
    assert sorted(dup["choices"]) == ["giipas", "gipls", "gpas"] and dup["choices"][dup["gold"]] == "giipas"


def test_pacute_label_disagreeing_with_correct_fails(tmp_path):
    rows = pacute_rows()
    row = rows[0]
    row["label"] = "B" if row["label"] != "B" else "C"
    with pytest.raises(MorphcptError, match=r"p\.jsonl:1: label"):
        normalize_file(write_jsonl(tmp_path / "p.jsonl", rows), "pacute", seed=1)


def test_hierarchical_gold_is_answer_not_first_option(tmp_path):
    rows = hierarchical_rows()
    assert any(r["options"][0] != r["answer"] for r in rows if "options" in r)  # fixture sanity
    items = {it["id"]: it for it in normalize_file(write_jsonl(tmp_path / "h.jsonl", rows), "hierarchical", seed=1)}
    for row in rows:
        item = items[row["id"]]
        assert item["level"] == row["level"]
        if "options" in row:
            assert item["choices"][item["gold"]] == row["answer"]
            assert sorted(item["choices"]) == sorted(set(row["options"]))
        else:
            assert item["answer"] == row["answer"]


def test_hierarchical_answer_missing_from_options_fails(tmp_path):
    rows = hierarchical_rows()
    rows[0]["options"] = ["x", "y", "z", "w"]
    with pytest.raises(MorphcptError, match="not among the options"):
        normalize_file(write_jsonl(tmp_path / "h.jsonl", rows), "hierarchical", seed=1)


def test_cute_has_all_14_tasks_including_swap_word(source_files):
    items = normalize_file(source_files["cute"], "cute", seed=1)
    assert {it["category"] for it in items} == set(CUTE_TASKS)
    assert "swap_word" in {it["category"] for it in items} and len(CUTE_TASKS) == 14
    assert all(it["format"] == "gen" for it in items)


def test_cute_rejects_mcq_rows(tmp_path):
    rows = cute_rows()
    rows[3]["options"] = ["a", "b"]
    with pytest.raises(MorphcptError, match=r"c\.jsonl:4"):
        normalize_file(write_jsonl(tmp_path / "c.jsonl", rows), "cute", seed=1)


@pytest.mark.parametrize("benchmark", ["langgame", "multi_digit_addition"])
def test_options_first_gold_is_answer(tmp_path, benchmark):
    rows = options_first_rows(benchmark)
    items = {it["id"]: it for it in normalize_file(write_jsonl(tmp_path / "o.jsonl", rows), benchmark, seed=1)}
    golds = []
    for row in rows:
        item = items[row["id"]]
        if "options" in row:
            assert item["choices"][item["gold"]] == row["answer"].strip()
            golds.append(item["gold"])
        else:
            assert item["answer"] == row["answer"].strip()
    assert len(set(golds)) == 4  # every position is used


def test_shuffle_is_seeded_and_independent_of_row_order(tmp_path):
    rows = hierarchical_rows()
    a = normalize_file(write_jsonl(tmp_path / "a.jsonl", rows), "hierarchical", seed=1)
    again = normalize_file(write_jsonl(tmp_path / "b.jsonl", rows), "hierarchical", seed=1)
    assert a == again
    shuffled = rows[:]
    random.Random(0).shuffle(shuffled)
    by_id = {it["id"]: it for it in normalize_file(write_jsonl(tmp_path / "c.jsonl", shuffled), "hierarchical", seed=1)}
    assert all(by_id[it["id"]] == it for it in a)
    other = normalize_file(write_jsonl(tmp_path / "d.jsonl", rows), "hierarchical", seed=2)
    assert any(x.get("choices") != y.get("choices") for x, y in zip(a, other))


def test_bad_lines_fail_with_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(options_first_rows("langgame", 1)[0]) + "\n{not json\n")
    with pytest.raises(MorphcptError, match=r"bad\.jsonl:2: not valid JSON"):
        normalize_file(path, "langgame", seed=1)
    rows = options_first_rows("langgame", 2)
    del rows[1]["answer"]
    with pytest.raises(MorphcptError, match=r"x\.jsonl:2: missing field 'answer'"):
        normalize_file(write_jsonl(tmp_path / "x.jsonl", rows), "langgame", seed=1)
    rows = options_first_rows("langgame", 2)
    rows[2]["id"] = rows[0]["id"]
    with pytest.raises(MorphcptError, match="duplicate id"):
        normalize_file(write_jsonl(tmp_path / "y.jsonl", rows), "langgame", seed=1)


def test_items_file_round_trip_and_validation(tmp_path, source_files):
    items = normalize_file(source_files["pacute"], "pacute", seed=1)
    write_items(items, tmp_path / "items.jsonl")
    assert read_items(tmp_path / "items.jsonl") == items
    broken = dict(items[0], gold=len(items[0]["choices"]))
    write_items([broken], tmp_path / "broken.jsonl")
    with pytest.raises(MorphcptError, match="gold"):
        read_items(tmp_path / "broken.jsonl")


def test_cli_prints_normalized_items(source_files, capsys):
    from morphcpt.cli import main

    assert main(["benchmark-items", "--benchmark", "hierarchical", "--input", str(source_files["hierarchical"]),
                 "--seed", "3"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == normalize_file(source_files["hierarchical"], "hierarchical", seed=3)
    assert main(["benchmark-items", "--benchmark", "cute", "--input", str(source_files["cute"]) + ".missing"]) == 1


@pytest.mark.parametrize("benchmark, listed", [("pacute", True), ("hierarchical", True), ("langgame", False),
                                               ("multi_digit_addition", False)])
def test_options_are_shown_where_the_question_refers_to_them(source_files, benchmark, listed):
    """'Which option contains the most a?' is unanswerable unless the options are in the prompt."""
    for item in normalize_file(source_files[benchmark], benchmark, seed=4):
        if item["format"] != "mcq":
            assert "\nOptions:\n" not in item["prompt"]
            continue
        shown = "\nOptions:\n" + "\n".join(f"- {c}" for c in item["choices"])
        assert item["prompt"].endswith(shown) == listed, item


def test_multiline_gold_answer_fails(tmp_path):
    rows = cute_rows()
    rows[1]["answer"] = "two\nlines"
    with pytest.raises(MorphcptError, match=r"c\.jsonl:2: the gold answer spans lines"):
        normalize_file(write_jsonl(tmp_path / "c.jsonl", rows), "cute", seed=1)


@pytest.mark.parametrize("benchmark, row, message", [
    ("langgame", {"question": "", "answer": " a", "options": [" a", " b"], "id": "e1"}, "empty prompt"),
    ("multi_digit_addition", {"question": "   ", "answer": "3", "id": "e2"}, "empty prompt"),
    ("hierarchical", {"level": 0, "category": "recognition", "prompt_en": "Which?", "prompt_tl": "Alin?",
                      "options": [], "answer": "a", "id": "e3"}, "empty list of options"),
])
def test_bad_benchmark_input_is_one_line_with_file_and_line_and_writes_nothing(tmp_path, capsys, benchmark, row,
                                                                              message):
    """Invalid UTF-8, an empty prompt, empty options: `file:line: ...` on one line, exit 1, no items."""
    from morphcpt.cli import main
    from morphcpt.evaluation.sources import fetch_benchmark

    good = options_first_rows("langgame", 1)[0] if benchmark == "langgame" else None
    path = write_jsonl(tmp_path / "bad.jsonl", ([good] if good else []) + [row])
    line = 2 if good else 1
    assert main(["benchmark-items", "--benchmark", benchmark, "--input", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and f"bad.jsonl:{line}: " in err and message in err
    items_path = tmp_path / "out" / f"{benchmark}.jsonl"
    with pytest.raises(MorphcptError, match=rf"bad\.jsonl:{line}: .*{message}"):
        fetch_benchmark(benchmark, {"source": "local", "local_path": str(path)}, 1, items_path)
    assert not items_path.parent.exists() or not any(items_path.parent.iterdir())


def test_invalid_utf8_names_file_line_and_byte(tmp_path, capsys):
    from morphcpt.cli import main

    good = json.dumps(options_first_rows("langgame", 1)[0]).encode()
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(good + b"\n" + '{"question": "Alin ang tama? Answer:", "answer": " \u00f1", "id": "x"}'
                     .encode("latin-1") + b"\n")
    assert main(["benchmark-items", "--benchmark", "langgame", "--input", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert "latin1.jsonl:2: not valid UTF-8 (byte 0xf1" in err
    items = tmp_path / "items.jsonl"
    items.write_bytes(b'{"format": "gen"}\n\xff\n')
    with pytest.raises(MorphcptError, match=r"items\.jsonl:1: item lacks"):
        read_items(items)
    items.write_bytes(b'\xff\n')
    with pytest.raises(MorphcptError, match=r"items\.jsonl:1: not valid UTF-8"):
        read_items(items)


def test_a_utf8_bom_and_blank_lines_are_accepted_like_every_other_reader(tmp_path):
    rows = options_first_rows("langgame", 2)
    plain, with_bom = tmp_path / "plain.jsonl", tmp_path / "bom.jsonl"
    write_jsonl(plain, rows)
    with_bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes().replace(b"\n", b"\n\n", 1))
    assert normalize_file(with_bom, "langgame", seed=1) == normalize_file(plain, "langgame", seed=1)
