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
    (b'{"text": "ok"}\n{"txt": "no"}\n', "in.jsonl:2: bad input line (missing text)"),
    (b'{"text": "ok"}\nnot json\n', "in.jsonl:2: bad input line (malformed json)"),
    (b'{"text": "ok"}\n{"text": 5}\n', "in.jsonl:2: bad input line (non string text)"),
    # shards refuse empty text, so segment does too
    (b'{"text": "ok"}\n{"text": ""}\n', "in.jsonl:2: bad input line (empty text)"),
    # invalid UTF-8 named at its own line, past the reader's buffer and after blank lines
    (b'{"text": "ok"}\n' * 7 + b'{"text": "\xff"}\n', "in.jsonl:8: bad input line (invalid utf8)"),
    (b'{"text": "ok"}\n' * 4 + b"\n\n\n\n" + b'{"text": "x"}\n{"text": "\xc3("}\n', "in.jsonl:10: bad input line (invalid utf8)"),
    (b'{"text": "' + b"a" * 70000 + b'"}\n' + b'{"text": "\xe2\x82"}\n', "in.jsonl:2: bad input line (invalid utf8)"),
])
def test_bad_input_is_one_line_with_file_and_line(sp_adapter, tmp_path, capsys, content, message):
    bad = tmp_path / "in.jsonl"
    bad.write_bytes(content)
    out = tmp_path / "out.jsonl"
    rc = main(["segment", "--tokenizer", sp_adapter.source, "--mode", "vanilla", "--input", str(bad), "--output", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and message in err and len(err.splitlines()) == 1, err
    assert not out.exists()  # no partial output


def test_bom_and_blank_lines_are_read_as_the_shards_read_them(sp_adapter, tmp_path, capsys):
    """A UTF-8 BOM is accepted and blank lines are skipped, as in the corpus and chunk readers; the
    document on line L gets the random stream of document L - 1, as in the shard of that chunk."""
    from morphcpt.corpus import iter_chunk_documents

    lines = ['{"text": "Kumain na ako."}', "", '{"text": "Naglaro sila sa labas."}', "   ", '{"text": "Umuwi siya."}']
    messy = tmp_path / "messy.jsonl"
    messy.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n\r\n")
    clean = tmp_path / "clean.jsonl"
    clean.write_text("\n".join(line if line.strip() else '{"text": "filler"}' for line in lines) + "\n")
    args = ["segment", "--tokenizer", sp_adapter.source, "--mode", "stochastok", "--set", "expand_prop=0.5",
            "--seed", "4", "--cache-dir", str(tmp_path / "cache")]
    assert main([*args, "--input", str(messy), "--output", str(tmp_path / "messy.out")]) == 0
    assert main([*args, "--input", str(clean), "--output", str(tmp_path / "clean.out")]) == 0
    capsys.readouterr()
    messy_rows = (tmp_path / "messy.out").read_text().splitlines()
    clean_rows = (tmp_path / "clean.out").read_text().splitlines()
    assert len(messy_rows) == 3 and messy_rows == [clean_rows[0], clean_rows[2], clean_rows[4]]
    # the chunk reader of the shards sees the same three documents on the same lines
    assert [(n, t) for n, t, _ in iter_chunk_documents(messy)] == [
        (1, "Kumain na ako."), (3, "Naglaro sila sa labas."), (5, "Umuwi siya.")]


def test_output_mode_follows_the_umask(sp_adapter, tmp_path, capsys):
    import os

    out = tmp_path / "out.jsonl"
    old = os.umask(0o022)
    try:
        rc = main(["segment", "--tokenizer", sp_adapter.source, "--mode", "vanilla", "--input", str(TAGALOG_CORPUS),
                   "--output", str(out)])
    finally:
        os.umask(old)
    assert rc == 0 and out.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_bad_params_are_refused(sp_adapter, tmp_path, capsys):
    for extra, message in [(["--set", "contract_prop=0.3"], "unknown parameter"), (["--set", "expand_prop"], "key=value"),
                           (["--set", "expand_prop=x"], "not a number"), (["--set", "expand_prop=2"], r"in [0, 1]")]:
        rc = main(["segment", "--tokenizer", sp_adapter.source, "--mode", "stochastok", *extra,
                   "--input", str(TAGALOG_CORPUS), "--output", str(tmp_path / "o.jsonl"), "--cache-dir", str(tmp_path)])
        assert rc == 1 and message in capsys.readouterr().err
