"""HF <-> NeMo conversion and forward passes (NeMo 2.7 `llm.import_ckpt` / `llm.export_ckpt`).

Everything here imports NeMo lazily and applies the CPU shims first (`nemo_cpu.apply`: nothing
on a GPU machine with TransformerEngine, an error on one without it).
Functions that save checkpoints must run under an `if __name__ == "__main__":` guard in the
calling script: Megatron's checkpoint writer may spawn processes that re-import the main module.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from morphcpt.errors import MorphcptError
from morphcpt.fileio import apply_umask, removed_on_failure, tree_bytes

# family arch -> (NeMo model class, default NeMo config class). The importer derives the real
# architecture from the HF config.json; the classes select the registered "hf" importer.
NEMO_CLASSES = {"llama": ("LlamaModel", "Llama31Config8B"), "gemma": ("Gemma2Model", "Gemma2Config2B")}
# Fixed parity text: Tagalog with affixes and reduplication, digits, punctuation, English.
PARITY_TEXTS = (
    "Nagluluto si Maria ng adobo para sa kanyang mga kaibigan, at kumain sila nang masaya.",
    "The quick brown fox jumps over the lazy dog 1234 times; pinakamagandang umaga!",
)


_STACK_LOGGED = []


def stack_check() -> dict[str, Any]:
    """Check the software stack (`nemo_stack`) without importing NeMo (package metadata and torch
    only, ~6 s of CPU instead of ~30 s for NeMo's imports and the CPU shims): enough for a process
    that builds no NeMo object itself, such as the training driver on a resume (docs/design.md §6).
    Returns the stack's versions; logs them once per process."""
    from morphcpt.models import nemo_stack

    versions = nemo_stack.check()
    if not _STACK_LOGGED:
        print(f"software: {nemo_stack.describe(versions)}", flush=True)
        _STACK_LOGGED.append(True)
    return versions


def nemo_setup() -> dict[str, Any]:
    """Check the software stack (`stack_check`), then apply the CPU shims (none on GPU). Call before
    building any NeMo object. Returns the stack's versions; logs them once per process."""
    from morphcpt.models import nemo_cpu

    versions = stack_check()
    nemo_cpu.apply()
    return versions


def needs_transformer_engine(arch: str) -> bool:
    """Gemma 2's NeMo layer spec needs TransformerEngine (docs/design.md §11): GPU only."""
    return arch == "gemma"


def check_arch_runnable(arch: str) -> None:
    if needs_transformer_engine(arch):
        try:
            import transformer_engine  # noqa: F401
        except ImportError:
            raise MorphcptError(f"NeMo's {arch} layer spec needs TransformerEngine, which is not installed here "
                                "(Gemma 2 conversion/training run only on GPU machines with TE)") from None


def nemo_model_for(family: dict[str, Any]):
    """An (empty) NeMo model of the family's class: selects the importer of `llm.import_ckpt`."""
    from nemo.collections import llm

    model_name, config_name = NEMO_CLASSES[family["arch"]]
    model_name = family.get("nemo_model", model_name)
    config_name = family.get("nemo_config", config_name)
    return getattr(llm, model_name)(config=getattr(llm, config_name)())


@contextlib.contextmanager
def scratch_cwd(where: Path):
    """Run inside a scratch folder: NeMo's converters build Lightning trainers without a root
    dir, which write lightning_logs/ into the current directory (the repository, under Snakemake)."""
    old = os.getcwd()
    scratch = Path(tempfile.mkdtemp(prefix=".nemo-cwd-", dir=where))
    os.chdir(scratch)
    try:
        yield scratch
    finally:
        os.chdir(old)
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def atomic_output_dir(out_dir: Path, needed_bytes: float | None = None):
    """Yield a path next to `out_dir` for a converter to write into (from a scratch cwd); it replaces
    `out_dir` only when the block finishes, so a failed conversion never leaves a half folder. A full
    disk (whatever the writer wraps it in: safetensors, torch DCP) removes the temporary folder
    first and then stops with one line naming `out_dir` and `needed_bytes` (docs/design.md §7)."""
    made: list[Path] = []  # the temporary folder, once made (removed_on_failure reads it on failure)
    try:
        with removed_on_failure(made, out_dir, needed_bytes, measured_at=out_dir.parent):
            out_dir.parent.mkdir(parents=True, exist_ok=True)
            made.append(Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent)))
            with scratch_cwd(made[0]):
                yield made[0] / "out"
            apply_umask(made[0] / "out")  # the converter's safetensors are 0600: every output follows the umask
            if out_dir.exists():
                shutil.rmtree(out_dir)
            (made[0] / "out").rename(out_dir)
    finally:
        for tmp in made:  # after a success: the emptied temporary folder
            shutil.rmtree(tmp, ignore_errors=True)


def import_nemo(hf_dir: Path, out_dir: Path, family: dict[str, Any]) -> Path:
    """`llm.import_ckpt` of the HF folder into `out_dir` (weights/ + context/), atomically."""
    check_arch_runnable(family["arch"])
    nemo_setup()
    from nemo.collections import llm

    hf_dir, out_dir = Path(hf_dir).resolve(), Path(out_dir).resolve()
    with atomic_output_dir(out_dir, needed_bytes=tree_bytes(hf_dir)) as tmp_out:  # same dtype: about as large
        llm.import_ckpt(model=nemo_model_for(family), source=f"hf://{hf_dir}", output_path=tmp_out, overwrite=True)
    tokenizer_dir = out_dir / "context" / "nemo_tokenizer"
    if not tokenizer_dir.is_dir():
        raise MorphcptError(f"{out_dir}: import wrote no context/nemo_tokenizer; the training data module needs it")
    return out_dir


def export_hf(checkpoint: Path, out_dir: Path) -> Path:
    """`llm.export_ckpt` of a NeMo checkpoint to a HF folder `out_dir`, atomically."""
    nemo_setup()
    from nemo.collections import llm

    from morphcpt.models.checkpoints import checkpoint_weight_bytes

    out_dir, checkpoint = Path(out_dir).resolve(), Path(checkpoint).resolve()
    # the HF folder holds the checkpoint's weights in the same dtype: about the size of its weights
    with atomic_output_dir(out_dir, needed_bytes=checkpoint_weight_bytes(checkpoint)) as tmp_out:
        llm.export_ckpt(path=checkpoint, target="hf", output_path=tmp_out, overwrite=True)
    return out_dir


# -- forward passes ----------------------------------------------------------------------------------
def parity_token_ids(tokenizer_dir: Path) -> list[list[int]]:
    """The fixed parity inputs: PARITY_TEXTS tokenized with bos (equal lengths, truncated)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    seqs = [tok(t, add_special_tokens=True).input_ids for t in PARITY_TEXTS]
    n = min(len(s) for s in seqs)
    return [s[:n] for s in seqs]


def load_nemo(checkpoint: Path):
    """A NeMo checkpoint (import or training) loaded for inference: the Lightning module."""
    nemo_setup()
    import torch
    from nemo.collections.llm.api import load_connector_from_trainer_ckpt

    checkpoint = Path(checkpoint).resolve()
    connector = load_connector_from_trainer_ckpt(checkpoint, "hf")
    with scratch_cwd(Path(tempfile.gettempdir())):
        model, _trainer = connector.nemo_load(checkpoint, cpu=not torch.cuda.is_available())
    model.eval()
    return model


def as_fp32(model):
    """The NeMo model with fp32 parameters computing in fp32. Upcasting the parameters is not
    enough: Megatron's softmax keeps the bf16/fp16 flags of the config it was built with, and
    with them tries its fused CUDA kernel and casts the attention probabilities back to bf16."""
    from megatron.core.fusions.fused_softmax import FusedScaleMaskSoftmax

    model = model.float()
    for module in model.modules():
        if isinstance(module, FusedScaleMaskSoftmax):
            module.input_in_fp16 = module.input_in_bf16 = module.input_in_float16 = False
    return model


def nemo_logits(model, ids: list[list[int]]):
    """Logits of the NeMo model for a batch of equal-length sequences, computed in fp32 (the
    weights are upcast, as the HF reference's are), returned on the CPU."""
    import torch

    from morphcpt.models.hf_reference import strict_fp32

    strict_fp32()
    model = as_fp32(model)
    device = next(model.parameters()).device
    tokens = torch.tensor(ids, dtype=torch.long, device=device)
    position_ids = torch.arange(tokens.shape[1], device=device).unsqueeze(0).expand_as(tokens)
    with torch.no_grad():
        logits = model(input_ids=tokens, position_ids=position_ids, attention_mask=None)
    return logits.float().cpu()


def hf_logits(hf_dir: Path, ids: list[list[int]], **config_overrides):
    """Logits of the HF reference model in `hf_dir` (fp32, eager attention: `hf_reference`) for a
    batch of equal-length sequences, on the CPU."""
    import torch

    from morphcpt.models.hf_reference import free_cuda_cache, load_hf_reference, reference_device

    model = load_hf_reference(hf_dir, **config_overrides)
    with torch.no_grad():
        logits = model(torch.tensor(ids, dtype=torch.long, device=reference_device())).logits.float().cpu()
    del model
    free_cuda_cache()
    return logits


# parity.* keys -> what each bounds (the config schema documents them the same way).
PARITY_THRESHOLDS = {
    "max_rel_diff": "max |logit difference| / max |reference logit| (both sides fp32)",
    "min_top1_agreement": "fraction of positions whose argmax token is the same on both sides",
    "max_kl": "mean KL(reference || candidate) of the next-token distributions, nats per position",
}


def compare_logits(reference, candidate, thresholds: dict[str, float], what: str) -> dict[str, Any]:
    """Parity report of reference and candidate logits (the candidate may carry padded vocab
    columns beyond the reference's). Passes only if every threshold of `parity.*` holds."""
    import torch

    from morphcpt.models.hf_reference import math_mode

    missing = sorted(set(PARITY_THRESHOLDS) - set(thresholds))
    if missing:
        raise MorphcptError(f"{what}: parity thresholds {missing} missing (config parity:)")
    vocab = reference.shape[-1]
    if candidate.shape[-1] < vocab or candidate.shape[:-1] != reference.shape[:-1]:
        raise MorphcptError(f"{what}: logits shapes differ: reference {tuple(reference.shape)} vs "
                            f"{tuple(candidate.shape)}")
    ref, cand = reference.double(), candidate[..., :vocab].double()
    diff = (ref - cand).abs()
    scale = float(ref.abs().max())
    kl = torch.nn.functional.kl_div(cand.log_softmax(-1), ref.log_softmax(-1), log_target=True,
                                    reduction="none").sum(-1)
    report = {
        "what": what,
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "logit_scale": scale,
        "rel_diff": float(diff.max()) / scale if scale > 0 else float("inf"),
        "top1_agreement": float((ref.argmax(-1) == cand.argmax(-1)).double().mean()),
        "kl": float(kl.mean()),
        "thresholds": {k: float(thresholds[k]) for k in PARITY_THRESHOLDS},
        **math_mode(),  # compared_in: "float32" only when no TF32 path was open
        "shape": list(reference.shape),
        "padded_vocab": int(candidate.shape[-1]),
    }
    report["failed_checks"] = [name for name, bad in (
        ("max_rel_diff", not report["rel_diff"] <= thresholds["max_rel_diff"]),
        ("min_top1_agreement", not report["top1_agreement"] >= thresholds["min_top1_agreement"]),
        ("max_kl", not report["kl"] <= thresholds["max_kl"])) if bad]
    report["passed"] = not report["failed_checks"]
    return report


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write a JSON report via a temp name (the report's existence means the gate passed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report, indent=1, sort_keys=True))
    tmp.rename(path)


def describe_parity(report: dict[str, Any]) -> str:
    return (f"relative max |logit diff| {report['rel_diff']:.2e} (max {report['max_abs_diff']:.2e} of logit scale "
            f"{report['logit_scale']:.1f}), top-1 agreement {report['top1_agreement']:.3f}, KL {report['kl']:.2e}")


def parity_gate(report: dict[str, Any], report_path: Path | None, fix: str) -> dict[str, Any]:
    """Raise with one line if the report failed (keeping it as <report>.failed for inspection);
    otherwise write it to `report_path`."""
    if not report["passed"]:
        where = ""
        if report_path is not None:
            failed = Path(report_path).with_name(Path(report_path).name + ".failed")
            write_report(failed, report)  # kept for inspection; not the rule's output
            where = f" (report: {failed})"
        t = report["thresholds"]
        raise MorphcptError(f"{report['what']} parity gate failed on {', '.join(report['failed_checks'])}: "
                            f"{describe_parity(report)}; thresholds: relative diff <= {t['max_rel_diff']:.0e}, "
                            f"top-1 >= {t['min_top1_agreement']}, KL <= {t['max_kl']:.0e}{where}; {fix}. A failed "
                            "gate is not retried: rerun the rule on purpose once the cause is fixed")
    if report_path is not None:
        Path(report_path).with_name(Path(report_path).name + ".failed").unlink(missing_ok=True)
        write_report(report_path, report)
    return report


def import_parity(hf_dir: Path, nemo_dir: Path, thresholds: dict[str, float], report_path: Path | None = None,
                  family: dict[str, Any] | None = None) -> dict[str, Any]:
    """Gate: the imported NeMo model's logits equal the HF model's on fixed tokens (both fp32)."""
    if family is not None:
        check_arch_runnable(family["arch"])
    ids = parity_token_ids(hf_dir)
    hf = hf_logits(hf_dir, ids)
    nemo = nemo_logits(load_nemo(nemo_dir), ids)
    report = compare_logits(hf, nemo, thresholds, "import (NeMo vs HF)")
    report.update(hf_dir=str(hf_dir), nemo_dir=str(nemo_dir), tokens=ids, software=nemo_setup())
    return parity_gate(report, report_path, "the HF->NeMo conversion is wrong (norm names? QKV layout? "
                       "rope settings? vocab padding?); nothing downstream may use this import")


def export_parity(checkpoint: Path, hf_dir: Path, thresholds: dict[str, float], report_path: Path | None = None,
                  tokenizer_dir: Path | None = None) -> dict[str, Any]:
    """Gate: the exported HF model's logits equal the NeMo checkpoint's on fixed tokens (both fp32)."""
    ids = parity_token_ids(tokenizer_dir or hf_dir)
    nemo = nemo_logits(load_nemo(checkpoint), ids)
    hf = hf_logits(hf_dir, ids)
    report = compare_logits(hf, nemo, thresholds, "export (HF vs NeMo)")
    report.update(checkpoint=str(checkpoint), hf_dir=str(hf_dir), tokens=ids, software=nemo_setup())
    return parity_gate(report, report_path, "the NeMo->HF export is wrong (QKV split? norm names? tied "
                       "embeddings?); do not evaluate this export")


# HF config keys an export must keep exactly as the base model has them (docs/design.md §7).
EXACT_CONFIG_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "head_dim", "rope_theta", "rope_scaling", "tie_word_embeddings",
                     "rms_norm_eps", "bos_token_id", "eos_token_id", "model_type")


def check_export_config(exported_dir: Path, base_hf_dir: Path) -> dict[str, Any]:
    """The exported config.json equals the base model's on every structural key."""
    exported = json.loads((Path(exported_dir) / "config.json").read_text())
    base = json.loads((Path(base_hf_dir) / "config.json").read_text())
    diffs = {k: (base.get(k), exported.get(k)) for k in EXACT_CONFIG_KEYS
             if k in base and _normalize(base.get(k)) != _normalize(exported.get(k))}
    if diffs:
        raise MorphcptError(f"{exported_dir}/config.json differs from the base model's ({base_hf_dir}): "
                            + "; ".join(f"{k}: base {b!r} vs export {e!r}" for k, (b, e) in diffs.items()))
    return {k: base[k] for k in EXACT_CONFIG_KEYS if k in base}


def _normalize(value):
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, list):
        return tuple(_normalize(v) for v in value)
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items() if v is not None}
    return value


def export_step(checkpoint: Path, out_dir: Path, base_hf_dir: Path, thresholds: dict[str, float],
                report_path: Path) -> dict[str, Any]:
    """Export one checkpoint to HF, check its config and tokenizer against the base model, then
    the parity gate; the report (written last) exists only if everything passed."""
    from transformers import AutoTokenizer

    report_path = Path(report_path)
    report_path.unlink(missing_ok=True)
    export_hf(checkpoint, out_dir)
    config_keys = check_export_config(out_dir, base_hf_dir)
    ids = parity_token_ids(base_hf_dir)
    exported_ids = parity_token_ids(out_dir)
    if ids != exported_ids or len(AutoTokenizer.from_pretrained(str(out_dir))) != len(
            AutoTokenizer.from_pretrained(str(base_hf_dir))):
        raise MorphcptError(f"{out_dir}: the exported tokenizer differs from the base model's ({base_hf_dir})")
    report = export_parity(checkpoint, out_dir, thresholds, report_path=None, tokenizer_dir=base_hf_dir)
    report["config"] = config_keys
    return parity_gate(report, report_path, "")
