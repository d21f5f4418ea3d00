"""CPU shims for NeMo 2.7.3 + megatron-core 0.15.3 without CUDA and without TransformerEngine.

NeMo's import / train / export paths assume a GPU with TransformerEngine (TE) in a dozen places.
Each shim below replaces exactly one such assumption and names it. `apply()` installs them once
per process, and only on a machine without CUDA (tests, the demo): the CUDA shims, plus the TE
shims (the local layer spec's needs) when TE is absent too. On a GPU machine it installs nothing:
the GPU rules run with TE (in the NeMo container: config nemo_container), and CUDA without TE is an
error, because NeMo would silently fall back to the slow local layer spec with fusions off (and
Gemma 2 cannot run at all). The one exception is the explicit opt-in of `nemo_stack`
(MORPHCPT_ALLOW_GPU_WITHOUT_TE=1, the GPU check on a lent machine that cannot carry TE): then only
the TE shims are installed.
Call `apply()` before building any NeMo/Megatron object (every morphcpt entry point that touches
NeMo does). `APPLIED` records what was installed; tests check every shim is there and that the one
whose absence is silent (the norm mapping) really changes imported weights.

Importing this module is cheap; NeMo and Megatron are imported inside `apply()`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import zlib
from collections import Counter

from morphcpt.models import nemo_stack

# Shim name -> what it works around. Every name here is installed by apply() on CPU.
SHIMS = {
    "transformer_config": "TransformerConfig flags that need TE/CUDA kernels: rope fusion, persist_layer_norm, "
                          "gradient_accumulation_fusion",
    "sync_checkpoint_save": "MegatronStrategy defaults to async checkpoint saves, whose writer calls "
                            "torch.cuda.synchronize()",
    "cuda_sync_and_streams": "torch.cuda.synchronize / Stream / stream / current_stream used unconditionally",
    "current_device": "torch.cuda.current_device() used as the device of small flag tensors",
    "norm_names": "HF<->NeMo mappings name TE-fused norms (linear_qkv.layer_norm_weight, "
                  "linear_fc1.layer_norm_weight); the local spec has input_layernorm / pre_mlp_layernorm, "
                  "and without this the norms silently stay 1.0",
    "cast_dtype": "local-spec norms are fp32 even for bf16 params: the converter's dtype assert trips",
    "fix_tensors_device": "_fix_tensors_device asserts torch.cuda.is_initialized() after every checkpoint load",
    "rng_tracker": "Megatron's model-parallel RNG tracker keeps CUDA RNG states",
    "fp32_optimizer": "FP32Optimizer allocates its loss scale with device='cuda'",
    "cuda_allocations": "hard-coded device='cuda' allocations, Tensor.cuda() and pin_memory in the training loop",
    "grad_clipping": "clip_grad_by_total_norm_fp32 asserts grads are torch.cuda.FloatTensor",
}

# What a shim stands in for: "te" shims apply without TransformerEngine, "cuda" ones without CUDA.
NEEDS = {"transformer_config": "te", "norm_names": "te", "cast_dtype": "te"}

APPLIED: dict[str, bool] = {}


# TE-fused norm names (what the converters use) -> the local spec's separate norm modules.
TE_TO_LOCAL_NORMS = {
    "self_attention.linear_qkv.layer_norm_weight": "input_layernorm.weight",
    "mlp.linear_fc1.layer_norm_weight": "pre_mlp_layernorm.weight",
}


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def te_available() -> bool:
    try:
        import transformer_engine  # noqa: F401
    except ImportError:
        return False
    return True


def apply(skip: tuple[str, ...] = ()) -> dict[str, bool]:
    """Install the shims this machine needs (except the names in `skip`, for tests that prove a
    shim is needed). No-op with CUDA and TE; CUDA without TE is an error unless opted in.
    Idempotent. Returns APPLIED."""
    from morphcpt.errors import MorphcptError

    skip = tuple(skip) + tuple(s for s in os.environ.get("MORPHCPT_SKIP_CPU_SHIMS", "").split(",") if s)
    unknown = set(skip) - set(SHIMS)
    if unknown:
        raise ValueError(f"unknown CPU shims {sorted(unknown)}; known: {sorted(SHIMS)}")
    present = {"cuda": cuda_available(), "te": te_available()}
    if present["cuda"] and not present["te"] and not nemo_stack.allow_without_te():
        raise MorphcptError(nemo_stack.TE_MISSING + "; run the GPU rules in the NeMo container (config nemo_container)")
    for name in SHIMS:
        if present[NEEDS.get(name, "cuda")]:
            continue
        if name not in skip and not APPLIED.get(name):
            globals()[f"_shim_{name}"]()
            APPLIED[name] = True
    return APPLIED


# -- the shims -------------------------------------------------------------------------------------
def _shim_transformer_config() -> None:
    # megatron transformer_config.py raises for apply_rope_fusion without TE; the local spec's
    # WrappedTorchNorm asserts on persist_layer_norm; gradient_accumulation_fusion needs fused
    # CUDA wgrad kernels. NeMo's Llama/Gemma configs switch them on by default.
    from megatron.core.transformer.transformer_config import TransformerConfig

    original = TransformerConfig.__post_init__

    def post_init(self):
        self.apply_rope_fusion = False
        self.persist_layer_norm = False
        self.gradient_accumulation_fusion = False
        original(self)

    TransformerConfig.__post_init__ = post_init


def _shim_sync_checkpoint_save() -> None:
    # MegatronStrategy(ckpt_async_save=True) by default; the async torch_dist writer calls
    # torch.cuda.synchronize(). The HF importer builds its own strategy without forwarding
    # kwargs (nemo/lightning/io/connector.py), so the default itself is changed.
    from nemo.lightning.pytorch.strategies.megatron_strategy import MegatronStrategy

    original = MegatronStrategy.__init__

    @functools.wraps(original)
    def init(self, *args, **kwargs):
        kwargs["ckpt_async_save"] = False
        original(self, *args, **kwargs)

    MegatronStrategy.__init__ = init


class _NoStream:
    """Stand-in for torch.cuda.Stream on CPU: every operation is already synchronous."""

    def __init__(self, *args, **kwargs):
        pass

    def wait_stream(self, *args, **kwargs):
        pass

    def synchronize(self):
        pass


def _shim_cuda_sync_and_streams() -> None:
    # dist_checkpointing's filesystem writer calls torch.cuda.synchronize() even for sync saves;
    # nemo/lightning/megatron_parallel.py wraps DDP set-up in torch.cuda.stream(torch.cuda.Stream()).
    import torch

    torch.cuda.synchronize = lambda *a, **k: None
    torch.cuda.Stream = _NoStream
    torch.cuda.stream = lambda *a, **k: contextlib.nullcontext()
    torch.cuda.current_stream = lambda *a, **k: _NoStream()


def _shim_current_device() -> None:
    # dist_checkpointing (state_dict_saver.py, async_utils.py) and NeMo's loss reduction allocate
    # tensors on torch.cuda.current_device(): "cpu" puts them where gloo can reduce them.
    import torch

    torch.cuda.current_device = lambda: "cpu"


def _state_dict_keys(module) -> set[str]:
    try:
        return set(module.state_dict().keys())
    except Exception:  # a source that is not a module (e.g. a plain dict wrapper): nothing to localise
        return set()


def _localize_norm_key(pattern: str, keys: set[str]) -> str:
    """`pattern` with a TE-fused norm name rewritten to the local spec's, if the module has it."""
    for te_name, local_name in TE_TO_LOCAL_NORMS.items():
        if pattern.endswith(te_name):
            candidate = pattern[: -len(te_name)] + local_name
            probe = candidate.replace("*", "0")
            if any(k.endswith(probe) for k in keys):
                return candidate
    return pattern


def localize_norm_mapping(mapping: dict, source_keys: set[str], target_keys: set[str]) -> dict:
    """A converter mapping with TE norm names replaced where the source/target uses local names."""
    return {_localize_norm_key(s, source_keys): _localize_norm_key(t, target_keys) for s, t in mapping.items()}


def _shim_norm_names() -> None:
    # Without TE, NeMo builds the *local* layer spec: each layer's RMSNorms are separate modules
    # (input_layernorm, pre_mlp_layernorm). The HF<->NeMo converters map to/from the TE names,
    # apply_transforms only warns "No matches found", and the norms keep their init value 1.0 —
    # a silently wrong model. Rewrite the mapping to the names the module actually has.
    import nemo.lightning.io as nemo_io
    from nemo.lightning.io import state as nemo_state

    original = nemo_state.apply_transforms

    def apply_transforms(source, target, mapping, transforms=None, *args, **kwargs):
        mapping = localize_norm_mapping(mapping, _state_dict_keys(source), _state_dict_keys(target))
        if "cast_dtype" in APPLIED and not args and kwargs.get("cast_dtype") is None:
            kwargs["cast_dtype"] = _dominant_dtype_if_mixed(source, target)
        return original(source, target, mapping, transforms if transforms is not None else [], *args, **kwargs)

    nemo_state.apply_transforms = apply_transforms
    nemo_io.apply_transforms = apply_transforms


def _dominant_dtype_if_mixed(source, target):
    """The target's most common parameter dtype when source or target mixes dtypes, else None."""
    import torch

    try:
        target_dtypes = Counter(p.dtype for p in target.parameters())
        source_dtypes = {v.dtype for v in source.state_dict().values()
                         if isinstance(v, torch.Tensor) and v.is_floating_point()}
    except Exception:  # not modules: leave NeMo's own dtype handling alone
        return None
    if len(target_dtypes) > 1 or len(source_dtypes) > 1:
        return target_dtypes.most_common(1)[0][0]
    return None


def _shim_cast_dtype() -> None:
    # Local-spec norms are created in fp32 even with params_dtype=bf16 (TE norms follow
    # params_dtype), so converting a bf16 checkpoint trips apply_transforms' "dtype mismatch"
    # assert (nemo/lightning/io/state.py). The norm_names wrapper then passes cast_dtype = the
    # target's dominant dtype, as the TE spec would have it. Nothing to install by itself.
    pass


def _shim_fix_tensors_device() -> None:
    # nemo/lightning/io/pl.py calls _fix_tensors_device after every dist-ckpt load, which asserts
    # torch.cuda.is_initialized(). On CPU the tensors are already where they belong.
    import nemo.lightning.io.pl as nemo_pl

    nemo_pl._fix_tensors_device = lambda checkpoint: checkpoint


def _shim_rng_tracker() -> None:
    # Megatron's CudaRNGStatesTracker stores torch.cuda RNG states, and NeMo seeds it only when
    # torch.cuda.device_count() > 0 (nemo/lightning/megatron_init.py): model construction then
    # fails with "cuda rng state model-parallel-rng is not added". Back it with CPU generator
    # states, each seeded from torch.initial_seed() and a stable hash of its name.
    import torch
    from megatron.core.tensor_parallel import random as mrandom

    def add(self, name, seed):
        self._is_initialized = True
        if seed in self.seeds_:
            raise Exception(f"seed {seed} already exists")
        self.seeds_.add(seed)
        if name in self.states_:
            raise Exception(f"rng state {name} already exists")
        self.states_[name] = torch.Generator().manual_seed(int(seed)).get_state()

    @contextlib.contextmanager
    def fork(self, name=mrandom._MODEL_PARALLEL_RNG_TRACKER_NAME):
        if name not in self.states_:
            seed = (torch.initial_seed() + zlib.crc32(name.encode())) % (2**63)
            self.states_[name] = torch.Generator().manual_seed(seed).get_state()
            self._is_initialized = True
        outer = torch.get_rng_state()
        torch.set_rng_state(self.states_[name])
        try:
            yield
        finally:
            self.states_[name] = torch.get_rng_state()
            torch.set_rng_state(outer)

    mrandom.CudaRNGStatesTracker.add = add
    mrandom.CudaRNGStatesTracker.fork = fork
    mrandom._get_cuda_rng_state = lambda *a, **k: torch.get_rng_state()
    mrandom._set_cuda_rng_state = lambda new_state, *a, **k: torch.set_rng_state(new_state)


def _shim_fp32_optimizer() -> None:
    # megatron/core/optimizer/optimizer.py FP32Optimizer.__init__ does
    # torch.tensor([1.0], device='cuda') for its (unused) loss scale.
    import torch
    from megatron.core.optimizer import optimizer as mopt

    def init(self, optimizer, config, init_state_fn):
        mopt.MegatronOptimizer.__init__(self, optimizer, config, init_state_fn)
        self._scale = torch.tensor([1.0], dtype=torch.float)
        self.is_stub_optimizer = optimizer is None

    mopt.FP32Optimizer.__init__ = init


def _shim_cuda_allocations() -> None:
    # The training loop allocates on "cuda" in many places (e.g. pipeline_parallel/schedules.py
    # torch.zeros(..., device="cuda"), Tensor.cuda() on batches, pin_memory in NeMo's sampler).
    # A process-wide TorchFunctionMode sends those to the CPU instead of patching each site.
    import torch
    from torch.overrides import TorchFunctionMode

    def is_cuda(device) -> bool:
        if isinstance(device, str):
            return device.startswith("cuda")
        if isinstance(device, torch.device):
            return device.type == "cuda"
        return isinstance(device, int) and not isinstance(device, bool)

    class CudaToCpu(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if func is torch.Tensor.cuda or func is torch.Tensor.pin_memory:
                return args[0]
            if kwargs.get("pin_memory"):
                kwargs["pin_memory"] = False
            if "device" in kwargs and is_cuda(kwargs["device"]):
                kwargs["device"] = "cpu"
            if func is torch.Tensor.to:
                if len(args) > 1 and is_cuda(args[1]):
                    args = (args[0], "cpu") + tuple(args[2:])
                kwargs.pop("non_blocking", None)
            return func(*args, **kwargs)

    mode = CudaToCpu()
    mode.__enter__()  # for the rest of the process (main thread)
    globals()["_CUDA_TO_CPU_MODE"] = mode


def _shim_grad_clipping() -> None:
    # megatron/core/optimizer/clip_grads.py asserts param.grad.type() == 'torch.cuda.FloatTensor'
    # before scaling (reached whenever clip_grad > 0). Same arithmetic, on CPU tensors.
    from megatron.core.optimizer import clip_grads as mclip
    from megatron.core.optimizer import optimizer as mopt

    def clip_grad_by_total_norm_fp32(parameters, max_norm, total_norm, use_decoupled_grad=False):
        import torch

        if isinstance(parameters, torch.Tensor):
            parameters = [parameters]
        clip_coeff = max_norm / (total_norm + 1.0e-6)
        if clip_coeff < 1.0:
            for p in parameters:
                grad = getattr(p, "decoupled_grad", None) if use_decoupled_grad else p.grad
                if grad is not None:
                    grad.detach().mul_(clip_coeff)

    mclip.clip_grad_by_total_norm_fp32 = clip_grad_by_total_norm_fp32
    mopt.clip_grad_by_total_norm_fp32 = clip_grad_by_total_norm_fp32
