"""Deriving Patok's dev gold set from UniMorph paradigms (held-out lemmas) and hand annotations.

A held-out lemma's forms get their cut offsets from the cutter's own analysis generator with the
lemma as the known root: of the analyses (per hyphen-separated part) whose root candidates include
the lemma, the one with the most cuts (tinatanggap: t|in|a|tanggap, not t|in|atanggap). A form no
analysis explains gets no automatic cuts: it must be in HAND (hand-annotated) or in DROPPED (a
UniMorph error or an irregular form), else building stops and names it; so the generator's gaps
(i- + -in-, ikina-, nasal substitution after reduplication) are annotated by hand, not skipped.
The lemma itself (the bare root) is a monomorphemic word. The annotation rules are those of
tests/tokenization/data/README.md.
"""

from __future__ import annotations

from morphcpt.errors import MorphcptError
from morphcpt.tokenization.affixes import AffixInventory, default_inventory
from morphcpt.tokenization.cutter import analyses, hyphenated_cuts
from morphcpt.tokenization.lexicon_sources import Paradigm, is_dev_lemma

# Hand annotations of held-out forms the generator cannot explain (checked against the lemma).
HAND = {
    # i- + -in- (the infix after i-'s root consonant): i|t|in|aas
    "itinaas": "i|t|in|aas", "itinataas": "i|t|in|a|taas", "itinago": "i|t|in|ago", "itinatago": "i|t|in|a|tago",
    "itinabi": "i|t|in|abi", "itinatabi": "i|t|in|a|tabi", "ibinoto": "i|b|in|oto", "ibinoboto": "i|b|in|o|boto",
    "iginarahe": "i|g|in|arahe", "iginagarahe": "i|g|in|a|garahe", "isinuko": "i|s|in|uko",
    "isinusuko": "i|s|in|u|suko", "isinuklam": "i|s|in|uklam", "isinusuklam": "i|s|in|u|suklam",
    "ibinawal": "i|b|in|awal", "ibinabawal": "i|b|in|a|bawal",
    # ikina- (i + ka + -in-): ikina|lungkot, ikina|lu|lungkot
    "ikinalungkot": "ikina|lungkot", "ikinalulungkot": "ikina|lu|lungkot", "ikinagalit": "ikina|galit",
    "ikinakagalit": "ikina|ka|galit", "ikakagalit": "ika|ka|galit",
    # pina- (a compound prefix of the inventory) + reduplicated pa-; kinig syncopated before -an
    "pinakinggan": "pina|kingg|an", "pinapakinggan": "pina|pa|kingg|an", "papakinggan": "pa|pa|kingg|an",
    "pinapakilala": "pina|pa|kilala", "pinapagalitan": "pina|pa|galit|an", "pinapakain": "pina|pa|kain",
    "ipinapagwagi": "ipina|pag|wagi", "ipapagwagi": "i|pa|pag|wagi", "ipapagsaya": "i|pa|pag|saya",
    "ibinigay": "i|b|in|igay", "ibinibigay": "i|b|in|i|bigay", "isinauli": "i|s|in|auli", "isinasauli": "i|s|in|a|sauli",
    # d -> r and o -> u together before -in
    "hahagurin": "ha|hagur|in",
    # nasal substitution with reduplication after the prefix: na|ni|nira <- sira
    "naninira": "na|ni|nira", "maninira": "ma|ni|nira", "nangingisda": "na|ngi|ngisda",
    "nanununtok": "na|nu|nuntok", "manununtok": "ma|nu|nuntok", "namamasyal": "na|ma|masyal",
    "mamamasyal": "ma|ma|masyal", "nananakot": "na|na|nakot", "mananakot": "ma|na|nakot",
}
# Held-out forms left out: UniMorph errors (hahakawan for hahawakan, inaalagaaan, the paradigm of
# `oo`, malilituman, bumibista), the paradigm of `panalo` (its forms are those of talo), and a loan
# word spelled with a hyphen inside the root (napo-promote).
DROPPED = frozenset({"hahakawan", "inaalagaaan", "umoo", "umooo", "ooo", "inoohan", "inooohan", "ooohan",
                     "napo-promote", "mapo-promote", "pinromote", "pinopromote", "aalalahanin", "aalahanin",
                     "malilituman", "bumibista", "nanalo", "nananalo", "mananalo"})
DROPPED_LEMMAS = frozenset({"panalo", "oo"})  # their forms are another lemma's (talo) or a UniMorph error
INFIXES = ("um", "in")


def segmentation_cuts(segmentation: str) -> tuple[str, list[int]]:
    """('nag|luto') -> ('nagluto', [3])."""
    pieces = segmentation.split("|")
    if any(not p for p in pieces):
        raise MorphcptError(f"{segmentation!r}: empty piece")
    return "".join(pieces), [sum(map(len, pieces[:k])) for k in range(1, len(pieces))]


def oracle_cuts(form: str, lemma: str, inventory: AffixInventory) -> list[int] | None:
    """Cut offsets of form given its root (see the module doc), or None if no analysis has the root."""
    def part_cuts(index: int, part: str, parts: int) -> tuple[int, ...] | None:
        if part == lemma or (parts > 1 and part in inventory.prefix_set):
            return ()
        best = None
        for analysis in analyses(part, inventory):
            if lemma in analysis.roots and (best is None or len(analysis.cuts) > len(best)):
                best = analysis.cuts
        return best

    cuts = hyphenated_cuts(form, part_cuts)
    return None if cuts is None else list(cuts)


def kind_of(word: str, bounds: list[int]) -> str:
    """monomorphemic (no cuts), reduplicated (a piece that the next one starts with), infixed (um/in
    after the word's first piece), else affixed."""
    if not bounds:
        return "monomorphemic"
    edges = [0, *bounds, len(word)]
    pieces = [word[a:b].lower() for a, b in zip(edges, edges[1:])]
    if any(p != "-" and len(p) <= 3 and q.startswith(p) for p, q in zip(pieces, pieces[1:])):
        return "reduplicated"
    if any(p in INFIXES for p in pieces[1:-1]):
        return "infixed"
    return "affixed"


def unimorph_dev_records(paradigms: list[Paradigm], frequencies: dict[str, int],
                         inventory: AffixInventory | None = None) -> list[dict]:
    """Gold records of the held-out lemmas' forms (one per distinct form, in file order)."""
    inventory = inventory or default_inventory()
    records, seen, unexplained = [], set(), []
    for cell in paradigms:
        form = cell.form
        if not is_dev_lemma(cell.lemma) or form in seen or form in DROPPED or cell.lemma in DROPPED_LEMMAS:
            continue
        seen.add(form)
        if form in HAND:
            word, bounds = segmentation_cuts(HAND[form])
            if word != form:
                raise MorphcptError(f"HAND[{form!r}] spells {word!r}")
            source = "hand"
        else:
            bounds = [] if form == cell.lemma else oracle_cuts(form, cell.lemma, inventory)
            source = "rule"
            if bounds is None:
                unexplained.append(f"{cell.lemma} -> {form}")
                continue
        records.append(_record(form, bounds, cell.lemma, frequencies, f"unimorph-tgl ({source})"))
    if unexplained:
        raise MorphcptError("held-out UniMorph forms that no analysis explains (annotate them in HAND or "
                            "list them in DROPPED): " + ", ".join(unexplained))
    return records


def _record(word: str, bounds: list[int], root: str, frequencies: dict[str, int], source: str) -> dict:
    edges = [0, *bounds, len(word)]
    return {"word": word, "boundaries": bounds, "segmentation": "|".join(word[a:b] for a, b in zip(edges, edges[1:])),
            "kind": kind_of(word, bounds), "root": root, "frequency": max(1, frequencies.get(word, 0)), "source": source}


def hand_records(lines: list[str], frequencies: dict[str, int], source: str) -> list[dict]:
    """Records from hand-annotated `segmentation root` lines (# comments), e.g. `pinaka|ma|hirap hirap`."""
    out = []
    for line_no, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2:
            raise MorphcptError(f"{source}:{line_no}: expected 'segmentation root' (pieces joined by |)")
        word, bounds = segmentation_cuts(fields[0])
        out.append(_record(word, bounds, fields[1], frequencies, source))
    return out
