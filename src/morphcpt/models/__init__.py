"""Model weights: download / synthesize HF models, NeMo import, CPT, export, parity gates."""
