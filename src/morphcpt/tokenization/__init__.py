"""Tokenization modes (vanilla, StochasTok, Patok) over HF fast tokenizers. See DESIGN §4."""
