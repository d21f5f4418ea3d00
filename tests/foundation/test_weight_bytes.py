"""The plan counts a model folder at the bytes it is written in: bf16 for real models, fp32 for
the synthetic demo model (its download, import and exports)."""

from morphcpt.config import load_config
from morphcpt.estimates import family_params, output_bytes


def test_model_folders_at_their_written_dtype(repo_root):
    demo = load_config(repo_root / "config" / "demo.yaml")
    (tiny,) = demo["families"]
    assert output_bytes(demo, "download_model", {"family": tiny}) == 4 * family_params(demo, tiny)
    assert output_bytes(demo, "export", {"family": tiny, "mode": "patok", "step": "30"}) == 4 * family_params(demo, tiny)
    real = load_config(repo_root / "config" / "config.yaml")
    assert output_bytes(real, "import_nemo", {"family": "llama31_8b"}) == 2 * family_params(real, "llama31_8b")
