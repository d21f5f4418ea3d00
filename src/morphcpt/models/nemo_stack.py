"""The software stack the NeMo rules accept, checked before any NeMo object is built (docs/design.md §11).

The NeMo rules (import, parity, train, export) run in one of two environments: the pinned CPU
stack of `constraints.txt` (tests, the demo) or, on GPU nodes, the NeMo container pinned in the
config (`nemo_container`). A NeMo rule started in any other environment (the host venv, a conda env
without TransformerEngine, a container of another NeMo line) would not fail where it should: it
would train on Megatron's slow local layer spec, or break deep inside a checkpoint load. So every
NeMo entry point checks here first and stops with one message listing every mismatch and the fix.
The versions found are also recorded in the gate reports and the training metrics, so a result
says which stack produced it.

Importing this module is cheap: versions are read from package metadata and the packages'
own `package_info` modules, never by importing NeMo's collections.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
from dataclasses import dataclass

from morphcpt.errors import MorphcptError

# Opt-in for a GPU machine without TransformerEngine: Llama on Megatron's local layer spec, slower
# (the GPU check on a lent machine, which cannot carry TE). Never the default.
ALLOW_GPU_WITHOUT_TE_ENV = "MORPHCPT_ALLOW_GPU_WITHOUT_TE"
TE_MISSING = ("CUDA is available but TransformerEngine is not installed: NeMo would train on Megatron's slow local "
              "layer spec with its fusions off, and Gemma 2 cannot run at all (to run without TE on purpose, a quick "
              f"check with Llama only, set {ALLOW_GPU_WITHOUT_TE_ENV}=1)")


@dataclass(frozen=True)
class Requirement:
    name: str          # the key in the versions dict
    specifier: str     # PEP 440 specifier the version must satisfy (pre-releases and local tags allowed)
    why: str           # what breaks outside it


# What the code is written against. The CPU pins are nemo_toolkit 2.7.3 + megatron-core 0.15.3; the
# pinned container (NeMo Framework 26.02) ships NeMo 2.7.0 with a megatron-core 0.16 pre-release.
REQUIREMENTS = (
    Requirement("nemo", ">=2.7.0rc0,<2.8",
                "the rules call NeMo 2.7's nemo.collections.llm API (import_ckpt, train, export_ckpt); "
                "NeMo 3 removed it"),
    Requirement("megatron.core", ">=0.15.0rc0,<0.17",
                "NeMo 2.7's checkpoint IO and the Megatron strategy settings used here"),
    Requirement("transformers", "<5",
                "transformers 5 breaks NeMo 2.7's Llama importer (rope_theta is no longer a config attribute)"),
)

# Distribution names to try for each package, then the package's own version module.
_SOURCES = {
    "nemo": (("nemo_toolkit", "nemo-toolkit"), "nemo.package_info"),
    "megatron.core": (("megatron-core", "megatron_core"), "megatron.core.package_info"),
    "transformers": (("transformers",), "transformers"),
    "torch": (("torch",), "torch"),
    "transformer_engine": (("transformer_engine", "transformer-engine"), "transformer_engine"),
}


def package_version(name: str) -> str | None:
    """The installed version of one of the stack's packages, or None when it is not importable."""
    dists, module = _SOURCES[name]
    for dist in dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    try:
        return str(importlib.import_module(module).__version__)
    except (ImportError, AttributeError):
        return None


def installed() -> dict[str, object]:
    """The stack as found in this process: package versions, the CUDA build and device."""
    import torch

    versions: dict[str, object] = {"python": platform.python_version()}
    versions.update({name: package_version(name) for name in _SOURCES})
    cuda = torch.cuda.is_available()
    versions["cuda_available"] = cuda
    versions["torch_cuda"] = torch.version.cuda
    versions["device"] = torch.cuda.get_device_name(0) if cuda else "cpu"
    versions["container"] = os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")
    return versions


def allow_without_te() -> bool:
    return os.environ.get(ALLOW_GPU_WITHOUT_TE_ENV) == "1"


def problems(versions: dict[str, object], *, allow_without_te: bool = False) -> list[str]:
    """Every way `versions` falls outside what the NeMo rules accept (empty when it fits)."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    found = []
    for req in REQUIREMENTS:
        version = versions.get(req.name)
        if version is None:
            found.append(f"{req.name} is not installed (need {req.specifier}: {req.why})")
            continue
        try:
            ok = SpecifierSet(req.specifier).contains(Version(str(version)), prereleases=True)
        except InvalidVersion:
            ok = False
        if not ok:
            found.append(f"{req.name} {version} is installed, need {req.specifier}: {req.why}")
    if versions.get("cuda_available") and versions.get("transformer_engine") is None and not allow_without_te:
        found.append(TE_MISSING)
    return found


def describe(versions: dict[str, object]) -> str:
    """One log line: which stack this process runs on."""
    cuda = f"CUDA {versions['torch_cuda']} on {versions['device']}" if versions["cuda_available"] else "CPU"
    where = f", container {versions['container']}" if versions["container"] else ""
    return (f"NeMo {versions['nemo']}, megatron-core {versions['megatron.core']}, TransformerEngine "
            f"{versions['transformer_engine'] or 'none'}, torch {versions['torch']} ({cuda}), transformers "
            f"{versions['transformers']}, Python {versions['python']}{where}")


def check() -> dict[str, object]:
    """Stop unless this process has a stack the NeMo rules accept; return it (for the reports)."""
    versions = installed()
    found = problems(versions, allow_without_te=allow_without_te())
    if found:
        where = f"container {versions['container']}" if versions["container"] else "this environment"
        raise MorphcptError(
            f"the NeMo rules cannot run in {where}:\n  - " + "\n  - ".join(found) + "\n"
            "On GPU nodes run them in the pinned NeMo container (config nemo_container: the jobs start it with "
            "`apptainer exec --nv`, morphcpt.container); on CPU use the pinned "
            "stack of constraints.txt (`make setup`). See the README, 'GPU environment'.")
    return versions
