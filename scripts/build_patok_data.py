"""Rebuild Patok's root lexicon and its dev gold set from their pinned, benchmark-free sources.

    python scripts/build_patok_data.py --frequency-words tl_full.txt --unimorph tgl

Sources (URLs, commits, sha256 and licences in morphcpt.tokenization.lexicon_sources; each file's
sha256 is checked):
    curl -LO https://raw.githubusercontent.com/hermitdave/FrequencyWords/525f9b560de45753a5ea01069454e72e9aa541c6/content/2018/tl/tl_full.txt
    curl -L -o tgl https://raw.githubusercontent.com/unimorph/tgl/799d79de338d1370ebfbeabb9823a0e8f86a2b6a/tgl
Writes src/morphcpt/tokenization/root_lexicon.txt (FrequencyWords + the UniMorph lemmas not held
out) and tests/tokenization/data/dev_gold.jsonl (the held-out lemmas' forms, then the
hand-annotated words of tests/tokenization/data/dev_gold_hand.txt). Run it again after changing
the cutter's rules or the affix inventory: the lexicon's roots are the rules' analyses.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from morphcpt.errors import MorphcptError  # noqa: E402
from morphcpt.tokenization import dev_gold, lexicon_sources as sources  # noqa: E402
from morphcpt.tokenization.cutter import LEXICON_PATH, build_lexicon  # noqa: E402

GOLD_DIR = ROOT / "tests" / "tokenization" / "data"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frequency-words", required=True, type=Path, help="FrequencyWords content/2018/tl/tl_full.txt")
    parser.add_argument("--unimorph", required=True, type=Path, help="UniMorph tgl file")
    parser.add_argument("--lexicon", type=Path, default=LEXICON_PATH)
    parser.add_argument("--gold", type=Path, default=GOLD_DIR / "dev_gold.jsonl")
    parser.add_argument("--hand", type=Path, default=GOLD_DIR / "dev_gold_hand.txt")
    args = parser.parse_args(argv)
    try:
        sources.check_sha256(args.frequency_words, sources.FREQUENCY_WORDS["sha256"])
        sources.check_sha256(args.unimorph, sources.UNIMORPH_TGL["sha256"])
        frequencies = sources.read_frequency_words(args.frequency_words)
        paradigms, skipped = sources.read_unimorph(args.unimorph)
        counts = sources.lexicon_counts(frequencies, paradigms)
        lines = build_lexicon(dict(counts), args.lexicon, provenance=sources.provenance_lines())
        records = dev_gold.unimorph_dev_records(paradigms, frequencies)
        hand = dev_gold.hand_records(args.hand.read_text(encoding="utf-8").splitlines(), frequencies, args.hand.name)
        words = {r["word"] for r in records}
        records += [r for r in hand if r["word"] not in words]
        tmp = args.gold.with_name(f".{args.gold.name}.tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        tmp.replace(args.gold)
    except MorphcptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.lexicon}: {lines} lines; {args.gold}: {len(records)} words "
          f"({len(hand)} hand-annotated); UniMorph lines skipped (not plain words): {len(skipped)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
