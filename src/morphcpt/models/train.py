"""Continued pretraining with NeMo 2.7 `llm.train` (DESIGN §6), its step-0 gate and its launcher.

Two processes take part:
- the driver (`run_training`, called by the train rule): checks the shards against the model's
  tokenizer, computes the step-0 reference loss with the HF model, launches the worker (plain
  Python on CPU, `torchrun --standalone --nproc-per-node G` on GPUs), then writes metrics.json and
  the train.done sentinel only if the worker finished every step and the gate passed;
- the worker (`python -m morphcpt.models.train_worker SPEC`): builds the recipe and calls
  `llm.train`, restored from the imported weights through AutoResume/RestoreConfig, or from its
  own last checkpoint when one exists (a preempted job resumes). A callback records loss and LR
  per step and fails the run at step 0 if the NeMo loss differs from the HF reference.

Files in the (undeclared) train folder: checkpoints/ (every `checkpoint_every` steps, all kept),
metrics.jsonl (one line per step, appended across reruns), step0_reference.json,
step0_gate.json, run_identity.json (refuses to resume checkpoints made from other inputs).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from morphcpt.errors import MorphcptError
from morphcpt.fileio import write_json_atomic

SIDECAR_KEYS = ("tokenizer_fingerprint", "vocab_size", "bos_id", "eos_id", "dtype", "mode", "params", "seed",
                "chunk", "documents", "tokens_in", "tokens_out", "ratio", "counters", "code_version", "bad_lines")
# Training keys that decide what a checkpoint contains: a rerun with other values must not resume.
IDENTITY_TRAINING_KEYS = ("seq_length", "global_batch_size", "micro_batch_size", "max_steps", "lr", "min_lr",
                          "warmup_steps", "weight_decay", "adam_beta1", "adam_beta2", "adam_eps", "clip_grad",
                          "precision")
TRAINING_DEFAULTS = {"weight_decay": 0.1, "adam_beta1": 0.9, "adam_beta2": 0.95, "adam_eps": 1e-5, "clip_grad": 1.0,
                     "precision": "bf16-mixed", "step0_loss_tolerance": 0.01}
KILL_ENV = "MORPHCPT_TEST_SIGKILL_AT_STEP"  # tests only: simulate preemption after a checkpoint


# -- small helpers ----------------------------------------------------------------------------------
def training_config(training: dict[str, Any]) -> dict[str, Any]:
    cfg = {**TRAINING_DEFAULTS, **training}
    missing = [k for k in ("seq_length", "global_batch_size", "micro_batch_size", "max_steps", "lr", "min_lr",
                           "warmup_steps", "checkpoint_every") if k not in cfg]
    if missing:
        raise MorphcptError(f"config training: missing keys {missing}")
    if cfg["min_lr"] > cfg["lr"]:
        raise MorphcptError(f"config training: min_lr {cfg['min_lr']} > lr {cfg['lr']}")
    if cfg["warmup_steps"] >= cfg["max_steps"]:
        raise MorphcptError(f"config training: warmup_steps {cfg['warmup_steps']} must be < max_steps {cfg['max_steps']}")
    return cfg


def expected_lr(step: int, lr: float, min_lr: float, warmup_steps: int, max_steps: int) -> float:
    """The LR used for optimizer step `step` (0-based) by NeMo's CosineAnnealing with
    constant_steps=0: linear warmup (step+1)/(warmup+1), then cosine from lr to min_lr at max_steps."""
    if warmup_steps > 0 and step <= warmup_steps:
        return lr * (step + 1) / (warmup_steps + 1)
    if step > max_steps:
        return min_lr
    progress = (step - warmup_steps) / (max_steps - warmup_steps)
    return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def nemo_tokenizer_dir(nemo_dir: Path) -> Path:
    d = Path(nemo_dir) / "context" / "nemo_tokenizer"
    if not d.is_dir():
        raise MorphcptError(f"{nemo_dir}: no context/nemo_tokenizer; rerun import_nemo")
    return d


def tokenizer_fingerprint(tokenizer_dir: Path) -> str:
    """The fingerprint the shard writer records (morphcpt.tokenization.TokenizerAdapter)."""
    try:
        from morphcpt.tokenization import TokenizerAdapter
    except ImportError as exc:
        raise MorphcptError(f"morphcpt.tokenization.TokenizerAdapter is not available ({exc}); "
                            "the shard fingerprint check cannot run") from None
    return TokenizerAdapter.from_dir(Path(tokenizer_dir)).fingerprint


# -- shards -----------------------------------------------------------------------------------------
def shard_prefixes(shard_files: list[str]) -> list[str]:
    """Unique shard prefixes (path without .bin/.idx/.json), in order."""
    prefixes = [re.sub(r"\.(bin|idx|json)$", "", str(f)) for f in shard_files]
    return list(dict.fromkeys(prefixes))


def check_shards(prefixes: list[str], tokenizer_dir: Path, vocab_size: int,
                 eos_id: int | None = None) -> list[dict[str, Any]]:
    """Refuse shards made with another tokenizer (fingerprint), vocabulary or eos (the data
    module's eod is the tokenizer's eos), or with missing files."""
    if not prefixes:
        raise MorphcptError("no shards given to train on")
    expected = tokenizer_fingerprint(tokenizer_dir)
    sidecars = []
    for prefix in prefixes:
        for ext in (".bin", ".idx", ".json"):
            if not Path(prefix + ext).is_file():
                raise MorphcptError(f"{prefix + ext}: missing; rerun the tokenize rule")
        sidecar_path = Path(prefix + ".json")
        sidecar = json.loads(sidecar_path.read_text())
        missing = [k for k in ("tokenizer_fingerprint", "vocab_size", "eos_id", "mode") if k not in sidecar]
        if missing:
            raise MorphcptError(f"{sidecar_path}: sidecar lacks {missing}; rerun the tokenize rule")
        if sidecar["tokenizer_fingerprint"] != expected:
            raise MorphcptError(f"{sidecar_path}: shard tokenizer fingerprint {sidecar['tokenizer_fingerprint'][:12]} "
                                f"differs from the model's ({expected[:12]}, {tokenizer_dir}); the shard was made "
                                "with another tokenizer: rerun tokenize for this model's tokenizer")
        if int(sidecar["vocab_size"]) != vocab_size:
            raise MorphcptError(f"{sidecar_path}: vocab_size {sidecar['vocab_size']} != the model's {vocab_size}")
        if eos_id is not None and int(sidecar["eos_id"]) != eos_id:
            raise MorphcptError(f"{sidecar_path}: documents end with id {sidecar['eos_id']}, but the model's eos "
                                f"(the data module's eod) is {eos_id}; rerun tokenize")
        sidecars.append(sidecar)
    modes = {s["mode"] for s in sidecars}
    if len(modes) != 1:
        raise MorphcptError(f"shards {prefixes[0]}...: mixed modes {sorted(modes)}; one run trains one mode")
    return sidecars


# -- run identity -----------------------------------------------------------------------------------
def run_identity(spec: dict[str, Any]) -> dict[str, Any]:
    """What the checkpoints of a run depend on: import, shards, recipe, seed."""
    hf_dir = Path(spec["hf_dir"])
    manifest = hf_dir / "manifest.json"
    if manifest.is_file():  # sha256 of every base-model file (download_model writes it)
        base = sha256_text(json.dumps(json.loads(manifest.read_text())["files"], sort_keys=True))
    else:
        base = sha256_text("\n".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                                     for p in sorted(hf_dir.iterdir()) if p.is_file()))
    shards = {Path(p).name: sha256_text(Path(p + ".json").read_text()) for p in spec["shard_prefixes"]}
    training = {k: spec["training"].get(k) for k in IDENTITY_TRAINING_KEYS}
    return {"base_model": base, "shards": shards, "training": training,
            "seed": spec["seed"], "tensor": spec["tensor"], "pipeline": spec["pipeline"]}


def check_run_identity(spec: dict[str, Any]) -> None:
    """Refuse to resume checkpoints made from other inputs; record the identity of a new run."""
    train_dir, ckpt_dir = Path(spec["train_dir"]), Path(spec["checkpoint_dir"])
    ident_path = train_dir / "run_identity.json"
    ident = run_identity(spec)
    has_checkpoints = ckpt_dir.is_dir() and any(ckpt_dir.iterdir())
    if has_checkpoints:
        if not ident_path.is_file():
            raise MorphcptError(f"{ckpt_dir}: checkpoints of unknown origin (no {ident_path.name}); delete the folder "
                                "to train from the imported weights")
        old = json.loads(ident_path.read_text())
        if old != ident:
            changed = sorted(k for k in ident if old.get(k) != ident[k])
            raise MorphcptError(f"{ckpt_dir}: checkpoints were made from different inputs (changed: {', '.join(changed)}); "
                                f"delete {train_dir} to start this run over")
    else:
        for stale in ("metrics.jsonl", "step0_gate.json", "step0_reference.json"):
            (train_dir / stale).unlink(missing_ok=True)
        write_json_atomic(ident_path, ident, sort_keys=True)


# -- the recipe (worker side) -----------------------------------------------------------------------
def build_data_module(spec: dict[str, Any], tokenizer):
    """PreTrainingDataModule over every chunk of the (tokenizer, mode): documents packed into
    seq_length samples with position ids and attention reset at each eod and no loss on eod."""
    from nemo.collections import llm

    t = spec["training"]
    on_gpu = spec["gpus"] > 0
    return llm.PreTrainingDataModule(
        paths=list(spec["shard_prefixes"]), seq_length=t["seq_length"], tokenizer=tokenizer,
        micro_batch_size=t["micro_batch_size"], global_batch_size=t["global_batch_size"],
        num_workers=2 if on_gpu else 0, pin_memory=on_gpu, persistent_workers=False,
        reset_position_ids=True, reset_attention_mask=True, create_attention_mask=True, eod_mask_loss=True,
        seed=spec["seed"], split="100,0,0", index_mapping_dir=str(Path(spec["train_dir"]) / "index_cache"),
    )


def build_data_for_reference(spec: dict[str, Any], tokenizer):
    """The data module as the trainer builds it (same arguments), with its datasets built."""
    data = build_data_module(spec, tokenizer)
    data.build(trainer_max_steps=spec["training"]["max_steps"], trainer_val_check_interval=spec["training"]["max_steps"],
               trainer_limit_val_batches=0, trainer_limit_test_batches=0)
    return data


def load_tokenizer(nemo_dir: Path):
    from nemo.collections.common.tokenizers.huggingface.auto_tokenizer import AutoTokenizer

    return AutoTokenizer(str(nemo_tokenizer_dir(nemo_dir)))


def first_global_batch(train_ds, global_batch_size: int) -> list[dict[str, Any]]:
    """Samples 0..gbs-1: what MegatronPretrainingSampler hands out at step 0 (consumed_samples=0)."""
    return [train_ds[i] for i in range(global_batch_size)]


def batch_digest(samples: list[dict[str, Any]]) -> str:
    import numpy as np

    h = hashlib.sha256()
    for s in samples:
        for key in ("tokens", "labels", "loss_mask", "position_ids"):
            h.update(np.asarray(s[key]).astype(np.float64).tobytes())
    return h.hexdigest()


def transformer_engine_available() -> bool:
    try:
        import transformer_engine  # noqa: F401
    except ImportError:
        return False
    return True


def hf_reference_loss(hf_dir: Path, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The HF model's loss on the step-0 batch, reduced as NeMo reduces it: the sum of per-token
    cross-entropy over loss-masked tokens of the whole global batch / the number of such tokens.
    Computed two ways: "document" (each packed document attends only to itself, positions reset:
    what reset_attention_mask asks for, and what the local layer spec does) and "causal"
    (positions reset, but plain causal attention across the packed sample: what an attention
    kernel that ignores the mask does)."""
    import torch
    from transformers import AutoModelForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), torch_dtype=dtype).to(device).eval()
    sums, n_tokens = {"document": 0.0, "causal": 0.0}, 0.0
    with torch.no_grad():
        for s in samples:
            tokens = torch.as_tensor(s["tokens"], dtype=torch.long)
            labels = torch.as_tensor(s["labels"], dtype=torch.long)
            mask = torch.as_tensor(s["loss_mask"], dtype=torch.float32)
            pos = torch.as_tensor(s["position_ids"], dtype=torch.long)
            starts = [0] + [i for i in range(1, len(pos)) if pos[i] == 0] + [len(pos)]
            logits = {
                "document": torch.cat([model(tokens[a:b].unsqueeze(0).to(device)).logits[0].float().cpu()
                                       for a, b in zip(starts[:-1], starts[1:])]),
                "causal": model(tokens.unsqueeze(0).to(device),
                                position_ids=pos.unsqueeze(0).to(device)).logits[0].float().cpu(),
            }
            for kind, lg in logits.items():
                ce = torch.nn.functional.cross_entropy(lg, labels, reduction="none")
                sums[kind] += float((ce * mask).sum())
            n_tokens += float(mask.sum())
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    if n_tokens == 0:
        raise MorphcptError("the step-0 batch has no loss tokens; the shards are empty or only eod tokens")
    return {"loss_document": sums["document"] / n_tokens, "loss_causal": sums["causal"] / n_tokens,
            "tokens": n_tokens}


def compute_step0_reference(spec: dict[str, Any]) -> dict[str, Any]:
    """Driver side: the HF loss on the exact samples of step 0, written to step0_reference.json."""
    from morphcpt.models.nemo_io import nemo_setup

    nemo_setup()
    import torch.distributed as dist

    tokenizer = load_tokenizer(Path(spec["nemo_dir"]))
    # Megatron's dataset builder asks torch.distributed for the rank: a one-process group.
    own_group = not dist.is_initialized()
    if own_group:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        data = build_data_for_reference(spec, tokenizer)
        samples = first_global_batch(data._train_ds, spec["training"]["global_batch_size"])
    finally:
        if own_group:
            dist.destroy_process_group()
    ref = hf_reference_loss(Path(spec["hf_dir"]), samples)
    # The local spec (no TE) applies reset_attention_mask's per-document mask; with TE the
    # fused causal kernel is expected to ignore it. The gate accepts either and reports which.
    ref["expected_attention"] = "causal" if transformer_engine_available() else "document"
    ref["batch_digest"] = batch_digest(samples)
    write_json_atomic(Path(spec["train_dir"]) / "step0_reference.json", ref, sort_keys=True)
    return ref


def _checkpoint_callback(spec: dict[str, Any]):
    from nemo import lightning as nl

    return nl.ModelCheckpoint(
        dirpath=str(spec["checkpoint_dir"]), filename="{step}-{consumed_samples}",
        every_n_train_steps=spec["training"]["checkpoint_every"], save_top_k=-1, save_last=True,
        monitor="reduced_train_loss", save_optim_on_train_end=True, always_save_context=True,
    )


def train_worker(spec: dict[str, Any]) -> None:
    """Worker side: one `llm.train` run (all ranks call this)."""
    from morphcpt.models.nemo_io import nemo_setup

    nemo_setup()
    import torch
    from megatron.core.optimizer import OptimizerConfig
    from nemo import lightning as nl
    from nemo.collections import llm
    from nemo.lightning import io
    from nemo.lightning.pytorch.optim import CosineAnnealingScheduler

    from morphcpt.models.parallelism import apply_recompute, ddp_config
    from morphcpt.models.train_callback import MetricsCallback

    t = spec["training"]
    nemo_dir = Path(spec["nemo_dir"])
    tokenizer = load_tokenizer(nemo_dir)
    config = io.load_context(str(nemo_dir / "context"), subpath="model.config")
    config.seq_length = t["seq_length"]
    apply_recompute(config, spec["parallel_settings"])
    bf16 = str(t["precision"]).startswith("bf16")
    model_cls = type(io.load_context(str(nemo_dir / "context"), subpath="model"))
    if spec.get("random_init"):
        # Tests only: the negative control of the step-0 gate (no restore of the imported weights).
        torch.manual_seed(spec["seed"])
    model = model_cls(config=config, tokenizer=tokenizer)
    data = build_data_module(spec, tokenizer)
    on_gpu = spec["gpus"] > 0
    strategy = nl.MegatronStrategy(
        tensor_model_parallel_size=spec["tensor"], pipeline_model_parallel_size=spec["pipeline"],
        ckpt_async_save=False,  # a checkpoint is complete before training goes on (preemption-safe)
        ddp=ddp_config(spec["parallel_settings"]),
    )
    trainer = nl.Trainer(
        accelerator="gpu" if on_gpu else "cpu", devices=spec["gpus"] if on_gpu else 1, num_nodes=1,
        strategy=strategy, max_steps=t["max_steps"], log_every_n_steps=1, limit_val_batches=0,
        num_sanity_val_steps=0, val_check_interval=t["max_steps"], enable_progress_bar=False,
        plugins=nl.MegatronMixedPrecision(precision=t["precision"]),
        callbacks=[MetricsCallback(spec)],
    )
    optim = nl.MegatronOptimizerModule(
        config=OptimizerConfig(
            optimizer="adam", lr=t["lr"], min_lr=t["min_lr"], weight_decay=t["weight_decay"],
            adam_beta1=t["adam_beta1"], adam_beta2=t["adam_beta2"], adam_eps=t["adam_eps"],
            clip_grad=t["clip_grad"], bf16=bf16, fp16=False, params_dtype=torch.bfloat16 if bf16 else torch.float32,
            use_distributed_optimizer=spec["parallel_settings"]["distributed_optimizer"],
        ),
        # max_steps reaches the scheduler (the old pipeline's trap: without it, constant min LR
        # after 10 steps); constant_steps=0 gives the plain warmup + cosine.
        lr_scheduler=CosineAnnealingScheduler(max_steps=t["max_steps"], warmup_steps=t["warmup_steps"],
                                              constant_steps=0, min_lr=t["min_lr"]),
    )
    # NeMo's own logs in a subfolder: NeMoLogger moves whatever its log dir already holds into run_N/.
    logger = nl.NeMoLogger(explicit_log_dir=str(Path(spec["train_dir"]) / "nemo_logs"), ckpt=_checkpoint_callback(spec),
                           tensorboard=None, wandb=None, update_logger_directory=False)
    restore = None if spec.get("random_init") else nl.RestoreConfig(path=str(nemo_dir), load_optim_state=False)
    resume = nl.AutoResume(restore_config=restore, resume_if_exists=True, resume_ignore_no_checkpoint=True,
                           resume_from_directory=str(spec["checkpoint_dir"]))
    llm.train(model=model, data=data, trainer=trainer, log=logger, resume=resume, optim=optim, tokenizer="data")


# -- the driver -------------------------------------------------------------------------------------
def read_metrics(train_dir: Path) -> list[dict[str, Any]]:
    """Per-step records of every run so far; a redone step keeps its latest record."""
    path = Path(train_dir) / "metrics.jsonl"
    by_step: dict[int, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                by_step[rec["step"]] = rec
    return [by_step[s] for s in sorted(by_step)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_command(spec_path: Path, gpus: int) -> list[str]:
    if gpus > 0:
        # torchrun, run by this interpreter (a `torchrun` on PATH may belong to another Python).
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}",
                "-m", "morphcpt.models.train_worker", str(spec_path)]
    return [sys.executable, "-m", "morphcpt.models.train_worker", str(spec_path)]


def launch_worker(spec: dict[str, Any], env_extra: dict[str, str] | None = None) -> int:
    """Run the worker (torchrun on GPUs, one plain process on CPU); return its exit code.

    The worker gets its own process group, and whatever is left of it when it ends is killed:
    a crashed or preempted worker leaves Megatron's spawned checkpoint-writer processes behind,
    which would otherwise live on (and hold the job's stdout open). A signal to the driver
    (Ctrl-C, Slurm's SIGTERM) is passed on to the group first."""
    import signal

    spec_path = Path(spec["train_dir"]) / "train_spec.json"
    write_json_atomic(spec_path, spec, sort_keys=True)
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else src
    env["OMP_NUM_THREADS"] = str(max(1, spec.get("threads", 1) // max(1, spec["gpus"])))
    if spec["gpus"] == 0:
        env.setdefault("MASTER_ADDR", "127.0.0.1")
        env["MASTER_PORT"] = str(_free_port())
    env.update(env_extra or {})
    cmd = worker_command(spec_path, spec["gpus"])
    print("train: launching " + " ".join(cmd), flush=True)
    # cwd = the train folder: Lightning writes lightning_logs/ into the working directory.
    proc = subprocess.Popen(cmd, env=env, cwd=spec["train_dir"], start_new_session=True)

    def forward(signum, _frame):
        _kill_group(proc.pid, signal.SIGTERM)
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _kill_group(proc.pid, signal.SIGKILL)


def _kill_group(pgid: int, sig) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def make_spec(*, family: dict[str, Any], nemo_dir: Path, hf_dir: Path, shard_files: list[str], train_dir: Path,
              checkpoint_dir: Path, training: dict[str, Any], seed: int, gpus: int, threads: int = 1) -> dict[str, Any]:
    from morphcpt.models.parallelism import train_settings

    par = family.get("parallelism", {})
    return {
        "arch": family["arch"], "nemo_dir": str(Path(nemo_dir).resolve()), "hf_dir": str(Path(hf_dir).resolve()),
        "shard_prefixes": [str(Path(p).resolve()) for p in shard_prefixes(shard_files)],
        "train_dir": str(Path(train_dir).resolve()), "checkpoint_dir": str(Path(checkpoint_dir).resolve()),
        "training": training_config(training), "seed": int(seed), "gpus": int(gpus), "threads": int(threads),
        "tensor": int(par.get("tensor", 1)) if gpus else 1, "pipeline": int(par.get("pipeline", 1)) if gpus else 1,
        "parallel_settings": train_settings(par, gpus),
    }


def run_training(spec: dict[str, Any], done_path: Path, metrics_path: Path,
                 env_extra: dict[str, str] | None = None) -> dict[str, Any]:
    """Driver: checks, step-0 reference, worker launch, then metrics.json and the sentinel."""
    from morphcpt.models.nemo_io import check_arch_runnable

    check_arch_runnable(spec["arch"])
    if spec["gpus"] and spec["gpus"] % (spec["tensor"] * spec["pipeline"]):
        raise MorphcptError(f"parallelism: gpus {spec['gpus']} is not a multiple of tensor x pipeline "
                            f"({spec['tensor']} x {spec['pipeline']})")
    train_dir = Path(spec["train_dir"])
    train_dir.mkdir(parents=True, exist_ok=True)
    for p in (Path(done_path), Path(metrics_path)):
        p.unlink(missing_ok=True)
    tok_dir = nemo_tokenizer_dir(Path(spec["nemo_dir"]))
    from transformers import AutoTokenizer

    model_tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    check_shards(spec["shard_prefixes"], tok_dir, len(model_tokenizer), model_tokenizer.eos_token_id)
    check_run_identity(spec)
    gate_path = train_dir / "step0_gate.json"
    if not gate_path.is_file() and not spec.get("random_init"):
        ref = compute_step0_reference(spec)
        print(f"train: step-0 HF reference loss {ref['loss_document']:.6f} (per-document attention) / "
              f"{ref['loss_causal']:.6f} (causal over the packed sample) over {ref['tokens']:.0f} tokens", flush=True)
    elif spec.get("random_init") and not (train_dir / "step0_reference.json").is_file():
        compute_step0_reference(spec)
    rc = launch_worker(spec, env_extra)
    gate = json.loads(gate_path.read_text()) if gate_path.is_file() else None
    if gate is not None and not gate["passed"]:
        raise MorphcptError(f"step-0 gate failed: NeMo loss {gate['nemo_loss']:.6f} vs HF {gate['hf_loss']:.6f} "
                            f"(relative diff {gate['relative_diff']:.3%} > {gate['tolerance']:.1%}): training did not "
                            f"start from the imported weights ({gate_path})")
    if rc != 0:
        raise MorphcptError(f"training worker exited with code {rc}; see the log above. Rerunning resumes from the "
                            f"last checkpoint in {spec['checkpoint_dir']}")
    if gate is None:
        raise MorphcptError(f"{gate_path}: missing: the step-0 gate never ran; delete {train_dir} and rerun")
    metrics = read_metrics(train_dir)
    steps = [m["step"] for m in metrics]
    max_steps = spec["training"]["max_steps"]
    if steps != list(range(max_steps)):
        missing = sorted(set(range(max_steps)) - set(steps))
        raise MorphcptError(f"{train_dir}/metrics.jsonl: steps missing {missing[:10]}; the run did not finish")
    summary = {"family_arch": spec["arch"], "max_steps": max_steps, "step0_gate": gate, "steps": metrics,
               "training": spec["training"], "checkpoints": {str(k): str(v) for k, v in list_checkpoints(
                   Path(spec["checkpoint_dir"]), spec["training"]["global_batch_size"]).items()}}
    write_json_atomic(Path(metrics_path), summary, sort_keys=True)
    Path(done_path).write_text(json.dumps({"max_steps": max_steps, "final_loss": metrics[-1]["loss"]}) + "\n")
    return summary


# -- checkpoints ------------------------------------------------------------------------------------
# NeMo names a checkpoint "step={global_step - 1}-consumed_samples={n}": the optimizer steps it
# contains are consumed_samples / global_batch_size, which is what export.steps counts.
_CONSUMED_RE = re.compile(r"consumed_samples=(\d+)(?:\.0)?")


def _steps_done(path: Path, global_batch_size: int) -> int | None:
    m = _CONSUMED_RE.search(path.name)
    return int(m.group(1)) // global_batch_size if m else None


def list_checkpoints(checkpoint_dir: Path, global_batch_size: int) -> dict[int, Path]:
    """Finished checkpoints by optimizer steps done; a -last copy only where no regular one exists."""
    found: dict[int, Path] = {}
    if not Path(checkpoint_dir).is_dir():
        return found
    for p in sorted(Path(checkpoint_dir).iterdir(), key=lambda p: p.name.endswith("-last")):
        steps = _steps_done(p, global_batch_size)
        if not p.is_dir() or steps is None or Path(str(p) + "-unfinished").exists():
            continue
        found.setdefault(steps, p)
    return dict(sorted(found.items()))


def checkpoint_at_step(checkpoint_dir: Path, step: int, global_batch_size: int) -> Path:
    """The finished checkpoint saved after `step` optimizer steps."""
    found = list_checkpoints(checkpoint_dir, global_batch_size)
    if step not in found:
        raise MorphcptError(f"{checkpoint_dir}: no checkpoint after step {step} (have {sorted(found)}); export.steps "
                            "must be multiples of training.checkpoint_every or training.max_steps")
    return found[step]
