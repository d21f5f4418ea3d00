"""morphcpt: morphology-aware tokenization for continued pretraining, as a Snakemake workflow.

Heavy dependencies (NeMo, torch, lm-eval) are imported lazily inside the modules that need them,
so `import morphcpt` and the CLI's start-up stay fast.
"""

__version__ = "0.1.0"
