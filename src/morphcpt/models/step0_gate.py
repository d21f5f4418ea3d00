"""The step-0 gate: CPT provably starts from the imported weights and trains the attention objective
it declares (`training.attention`), docs/design.md §6.

Two measurements, each NeMo's loss against the HF model's on the same samples, reduced as NeMo
reduces it:
- the first global batch (the training step-0 loss): within tolerance, or training did not start
  from the imported weights;
- the gate batch (`gate_batch`: many short documents packed into each sequence), through NeMo's
  forward before the first step: within tolerance of the declared objective's HF loss and closer to
  it than to the control objective's (the other attention a packed batch can mean).
The gate batch is built so the two objectives differ on it by at least MIN_SEPARATION tolerances
(`control_gap`, `separable`); a batch that does not separate them cannot show which attention NeMo
computes, and the gate fails as inconclusive (the driver stops before launching the workers).

The driver computes the HF losses before launching the worker (`compute_step0_reference`, written
to step0_reference.json); the worker's callback feeds NeMo's two losses to `verdict`.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from morphcpt.errors import MorphcptError
from morphcpt.fileio import write_json_atomic
from morphcpt.models.packed_data import batch_digest, build_data_for_reference, first_global_batch, load_tokenizer
from morphcpt.models.gate_batch import GATE_DOC_TOKENS, document_count, gate_samples

# Every objective the reference can compute: "causal" (one causal mask over the packed sample,
# positions 0..n-1) and "document" (each packed document alone, positions restarting at 0).
OBJECTIVES = ("causal", "document")


def control_objective(declared: str) -> str:
    return next(o for o in OBJECTIVES if o != declared)


def document_bounds(length: int, eod_positions: list[int]) -> list[int]:
    """Start offsets of the packed documents (a document ends with its eod), then `length`."""
    starts = [0] + [i + 1 for i in eod_positions if i + 1 < length]
    return sorted(set(starts)) + [length]


def hf_reference_losses(hf_dir: Path, batches: dict[str, list[dict[str, Any]]], eod_id: int) -> dict[str, Any]:
    """The HF model's loss on each named batch of samples under every objective, reduced as NeMo
    reduces it: the sum of per-token cross-entropy over loss-masked tokens of the whole batch / the
    number of such tokens. The model is loaded once and dropped before returning."""
    import torch

    from morphcpt.models.hf_reference import free_cuda_cache, load_hf_reference, reference_device

    device = reference_device()
    model = load_hf_reference(hf_dir)
    out = {}
    with torch.no_grad():
        for name, samples in batches.items():
            sums, n_tokens = {o: 0.0 for o in OBJECTIVES}, 0.0
            for s in samples:
                tokens = torch.as_tensor(s["tokens"], dtype=torch.long)
                labels = torch.as_tensor(s["labels"], dtype=torch.long)
                mask = torch.as_tensor(s["loss_mask"], dtype=torch.float32)
                eods = (tokens == eod_id).nonzero().flatten().tolist()
                starts = document_bounds(len(tokens), eods)
                logits = {
                    "causal": model(tokens.unsqueeze(0).to(device)).logits[0].float().cpu(),
                    "document": torch.cat([model(tokens[a:b].unsqueeze(0).to(device)).logits[0].float().cpu()
                                           for a, b in zip(starts[:-1], starts[1:])]),
                }
                for objective, lg in logits.items():
                    ce = torch.nn.functional.cross_entropy(lg.double(), labels, reduction="none")
                    sums[objective] += float((ce * mask.double()).sum())
                n_tokens += float(mask.sum())
            if n_tokens == 0:
                raise MorphcptError(f"the step-0 {name} batch has no loss tokens; the shards are empty or only eod tokens")
            out[name] = {**{f"loss_{o}": sums[o] / n_tokens for o in OBJECTIVES}, "tokens": n_tokens}
    del model
    free_cuda_cache()
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compute_step0_reference(spec: dict[str, Any]) -> dict[str, Any]:
    """Driver side: the HF losses on the exact samples of step 0, written to step0_reference.json."""
    from morphcpt.models.nemo_io import nemo_setup

    nemo_setup()
    import torch.distributed as dist

    tokenizer = load_tokenizer(Path(spec["nemo_dir"]))
    # Megatron's dataset builder asks torch.distributed for the rank: a one-process group.
    own_group = not dist.is_initialized()
    if own_group:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    eod = int(tokenizer.eos_id)
    try:
        data = build_data_for_reference(spec, tokenizer)
        samples = first_global_batch(data._train_ds, spec["training"]["global_batch_size"])
        gate = gate_samples(data._train_ds, spec, eod)
    finally:
        if own_group:
            dist.destroy_process_group()
    losses = hf_reference_losses(Path(spec["hf_dir"]), {"first": samples, "gate": gate}, eod)
    ref = {**losses["first"], "objective": spec["training"]["attention"], "batch_digest": batch_digest(samples)}
    ref["control"] = control_objective(ref["objective"])
    ref["gate_batch"] = {**losses["gate"], "batch_digest": batch_digest(gate), "sequences": len(gate),
                         "documents": document_count(gate, eod), "doc_tokens": GATE_DOC_TOKENS}
    train_dir = Path(spec["train_dir"])
    write_json_atomic(train_dir / "step0_reference.json", ref, sort_keys=True)
    refuse_inconclusive(ref, float(spec["training"]["step0_loss_tolerance"]), train_dir / "step0_gate.json")
    return ref


def refuse_inconclusive(ref: dict[str, Any], tolerance: float, gate_path: Path) -> None:
    """Before any worker starts: a gate batch that does not separate the objectives fails the gate
    (its report is written, so the failure is kept like any failed gate)."""
    gate = verdict(None, ref, tolerance, None)
    if not gate["separable"]:
        write_json_atomic(gate_path, gate, sort_keys=True)
        raise MorphcptError(f"step-0 gate failed: {gate['reason']} ({gate_path})")


def compute_step0_reference_released(spec: dict[str, Any]) -> dict[str, Any]:
    """`compute_step0_reference`, leaving nothing on a training GPU once the workers start: on
    GPUs it runs in a spawned child process that exits before the launch (the driver never opens
    a CUDA context on cuda:0, where rank 0 trains); on CPU in this process, where
    `hf_reference_losses` drops the model before returning. With the NeMo image
    (`spec["container"]`), in a process in the image that likewise ends before the launch."""
    if spec.get("container"):
        from morphcpt import container

        return container.call(spec["container"], "train", spec["gpus"],
                              "morphcpt.models.step0_gate:compute_step0_reference", spec=spec)
    if not spec["gpus"]:
        return compute_step0_reference(spec)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(compute_step0_reference, spec).result()


# How far apart (in tolerances) the declared objective's and the control's HF losses must be on the
# gate batch for "within tolerance and closer to the declared one" to mean "not the control".
MIN_SEPARATION = 5.0


def _rel(a: float | None, b: float) -> float:
    return abs(a - b) / abs(b) if a is not None else float("nan")


def verdict(nemo_loss: float | None, ref: dict[str, Any], tolerance: float,
            gate_nemo_loss: float | None) -> dict[str, Any]:
    """The gate's report. Passed only if (1) NeMo's step-0 training loss is within `tolerance`
    (relative) of the HF loss on the first batch under the declared objective, (2) the gate batch
    separates the declared and control objectives by MIN_SEPARATION tolerances (else inconclusive),
    and (3) NeMo's loss on the gate batch is within `tolerance` of the declared objective's HF loss
    and closer to it than to the control's. Records both gaps on both batches."""
    objective, control = ref["objective"], ref["control"]
    g = ref["gate_batch"]
    declared, other = _rel(nemo_loss, ref[f"loss_{objective}"]), _rel(nemo_loss, ref[f"loss_{control}"])
    gate_declared, gate_other = _rel(gate_nemo_loss, g[f"loss_{objective}"]), _rel(gate_nemo_loss, g[f"loss_{control}"])
    control_gap = _rel(g[f"loss_{control}"], g[f"loss_{objective}"])
    separable = control_gap >= MIN_SEPARATION * tolerance
    if not separable:
        reason = (f"inconclusive: on the gate batch ({g['sequences']} sequences, {g['documents']} documents) the HF "
                  f"losses under {objective} ({g[f'loss_{objective}']:.6f}) and {control} attention "
                  f"({g[f'loss_{control}']:.6f}) differ by {control_gap:.2e}, under {MIN_SEPARATION:g} x the tolerance "
                  f"{tolerance:g} = {MIN_SEPARATION * tolerance:.2e}: the gate cannot tell the two apart. Fix: run "
                  "the gate where it can resolve them (fp32 with a smaller training.step0_loss_tolerance) or pack "
                  "shorter documents (GATE_DOC_TOKENS in morphcpt/models/gate_batch.py)")
    elif nemo_loss is None or gate_nemo_loss is None:
        reason = "the trainer logged no step-0 loss" if nemo_loss is None else "NeMo computed no loss on the gate batch"
    elif not declared < tolerance:
        reason = (f"NeMo's step-0 loss differs from the HF loss by {declared:.3%} > {tolerance:.2%}: training did not "
                  "start from the imported weights")
    elif not gate_declared <= gate_other:
        reason = (f"NeMo's loss on the gate batch matches HF under {control} attention ({gate_other:.2e}) better than "
                  f"under the declared {objective} attention ({gate_declared:.2e}): the run trains another objective "
                  "than declared")
    elif not gate_declared < tolerance:
        reason = (f"NeMo's loss on the gate batch differs from the HF loss under the declared {objective} attention "
                  f"by {gate_declared:.2e} > {tolerance:g}")
    else:
        reason = None
    return {"passed": reason is None, "reason": reason,
            "nemo_loss": nemo_loss, "hf_loss": ref[f"loss_{objective}"], "relative_diff": declared,
            "hf_loss_control": ref[f"loss_{control}"], "relative_diff_control": other, "tokens": ref["tokens"],
            "tolerance": tolerance, "objective": objective, "control": control,
            "gate_batch": {"nemo_loss": gate_nemo_loss, "hf_loss": g[f"loss_{objective}"],
                           "hf_loss_control": g[f"loss_{control}"], "relative_diff": gate_declared,
                           "relative_diff_control": gate_other, "tokens": g["tokens"], "sequences": g["sequences"],
                           "documents": g["documents"], "doc_tokens": g["doc_tokens"]},
            "control_gap": control_gap, "separable": separable, "min_separation": MIN_SEPARATION}
