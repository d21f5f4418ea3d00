"""`morphcpt segment` end to end on the project's Tagalog text."""

from __future__ import annotations

import json

import pytest

from morphcpt.cli import main
from morphcpt.testing import TAGALOG_CORPUS


@pytest.mark.parametrize("mode", ["vanilla", "stochastok", "patok"])
def test_segment_decodes_back_to_the_input(adapter, mode, tmp_path, capsys, tagalog_docs):
    tokenizer_dir = adapter.source
    out = tmp_path / "out.jsonl"
    rc = main(["segment", "--tokenizer", tokenizer_dir, "--mode", mode, "--seed", "3", "--input", str(TAGALOG_CORPUS),
               "--output", str(out), "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(tagalog_docs)
    for row, text in zip(rows, tagalog_docs):  # same order, lossless, no bos/eos
        assert adapter.decode_bytes(row["ids"]).decode("utf-8") == text
        assert adapter.bos_id not in row["ids"] and adapter.eos_id not in row["ids"]
        assert row["counters"]["tokens_out"] == len(row["ids"])
    summary = capsys.readouterr().err
    assert f'"documents": {len(tagalog_docs)}' in summary and f'"mode": "{mode}"' in summary
    if mode != "patok":
        return
    # same seed, same file
    again = tmp_path / "again.jsonl"
    main(["segment", "--tokenizer", tokenizer_dir, "--mode", mode, "--seed", "3", "--input", str(TAGALOG_CORPUS),
          "--output", str(again), "--cache-dir", str(tmp_path / "cache")])
    assert again.read_bytes() == out.read_bytes()


def test_set_overrides_params(sp_adapter, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    rc = main(["segment", "--tokenizer", sp_adapter.source, "--mode", "stochastok", "--set", "expand_prop=0.5",
               "--input", str(TAGALOG_CORPUS), "--output", str(out), "--cache-dir", str(tmp_path)])
    assert rc == 0
    assert '"expand_prop": 0.5' in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ('{"text": "ok"}\n{"txt": "no"}\n', "in.jsonl:2: expected a JSON object"),
    ('{"text": "ok"}\n\n', "in.jsonl:2: not valid JSON"),
    ('{"text": "ok"}\n{"text": 5}\n', "in.jsonl:2: expected a JSON object"),
])
def test_bad_input_is_one_line_with_file_and_line(sp_adapter, tmp_path, capsys, content, message):
    bad = tmp_path / "in.jsonl"
    bad.write_text(content)
    out = tmp_path / "out.jsonl"
    rc = main(["segment", "--tokenizer", sp_adapter.source, "--mode", "vanilla", "--input", str(bad), "--output", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and message in err and len(err.splitlines()) == 1
    assert not out.exists()  # no partial output


def test_bad_params_are_refused(sp_adapter, tmp_path, capsys):
    for extra, message in [(["--set", "contract_prop=0.3"], "unknown parameter"), (["--set", "expand_prop"], "key=value"),
                           (["--set", "expand_prop=x"], "not a number"), (["--set", "expand_prop=2"], r"in [0, 1]")]:
        rc = main(["segment", "--tokenizer", sp_adapter.source, "--mode", "stochastok", *extra,
                   "--input", str(TAGALOG_CORPUS), "--output", str(tmp_path / "o.jsonl"), "--cache-dir", str(tmp_path)])
        assert rc == 1 and message in capsys.readouterr().err
