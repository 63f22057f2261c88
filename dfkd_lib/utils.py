"""Seeds, devices, the fast switch and provenance: small helpers every module shares."""
from __future__ import annotations

import contextlib

import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch


def fast_mode() -> bool:
    """``True`` when ``DFKD_FAST`` is set to a non-empty value other than ``0``: every run shrinks for tests."""
    return os.environ.get("DFKD_FAST", "0") not in ("", "0", "false", "False")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) for a reproducible run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def bf16_native(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 in hardware: a CUDA GPU with bf16 support, or a CPU with AVX512-BF16
    or AMX tiles. Elsewhere PyTorch emulates bf16 with fp32 arithmetic plus conversions, so ``amp="bf16"``
    autocast is slower than fp32 there (``benchmarks/step_cost.py`` measures both)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(f()) for f in checks if f is not None)


def fast_amp(device: torch.device | str = "cpu") -> str | None:
    """The faster ``amp`` setting on ``device``: ``"bf16"`` where it computes bfloat16 in hardware
    (:func:`bf16_native`), else ``None`` (fp32). For live demonstrations; a result's ``amp`` is part of its
    configuration and stays as its spec says."""
    return "bf16" if bf16_native(device) else None


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def project_root() -> Path:
    """The repository root (the folder above the ``dfkd_lib`` package)."""
    return Path(__file__).resolve().parent.parent


def git_commit() -> str | None:
    """Current git commit of the project, or ``None`` outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_root(), capture_output=True, text=True,
                             timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def library_modified() -> bool | None:
    """Whether ``dfkd_lib/`` has uncommitted changes against the current commit (``None`` outside a checkout),
    i.e. whether the recorded commit alone does not say which code ran."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "dfkd_lib"],
                             cwd=project_root(), capture_output=True, text=True, timeout=5)
        return bool(out.stdout.strip()) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def as_json(x):
    """``x`` as it reads back from a JSON file or a checkpoint's config: tuples become lists, keys strings.

    Raises:
        TypeError: ``x`` holds something JSON cannot store (a tensor, a path...)."""
    return json.loads(json.dumps(x))


def provenance(command: str | None = None) -> dict:
    """What produced a result: command, git commit (and whether ``dfkd_lib/`` differed from it when the result
    was written), time, machine, library versions."""
    from .version import __version__

    return {
        "command": command if command is not None else " ".join(["python"] + sys.argv),
        "dfkd_lib": __version__,
        "git_commit": git_commit(),
        "library_modified": library_modified(),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
        "cpu": cpu_name(),
        "cpu_bf16_native": bf16_native("cpu"),
        "python": platform.python_version(),
        "torch": str(torch.__version__),  # a plain str: weights-only checkpoints hold provenance too
        "torch_threads": torch.get_num_threads(),
        "fast_mode": fast_mode(),
    }


@contextlib.contextmanager
def eval_mode(*modules: torch.nn.Module | None):
    """Put ``modules`` (``None`` ignored) in eval mode inside the block and give every submodule back the
    train/eval mode it had, also when the block raises; parameters and gradients are untouched (see
    :func:`dfkd_lib.synthesizers.pixels.frozen` for a block that also stops gradients into the weights)."""
    modes = [(m, m.training) for module in modules if module is not None for m in module.modules()]
    for module in modules:
        if module is not None:
            module.eval()
    try:
        yield modules[0] if len(modules) == 1 else modules
    finally:
        for m, mode in modes:
            m.training = mode


def autocast(device: torch.device, amp: str | None):
    """``torch.autocast`` for ``amp="bf16"``, a no-op context for ``None``."""
    if amp is None:
        return contextlib.nullcontext()
    if amp != "bf16":
        raise ValueError(f"amp must be 'bf16' or None, got {amp!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16)
