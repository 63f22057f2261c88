"""Train, evaluate, save and load teachers on real data.

The teacher is the only network that ever sees real training images. ``train_teacher`` writes a checkpoint
(``state_dict``) and a JSON manifest; :func:`load_or_train_teacher` is what chapters call: load if present,
else train. Shipped teachers live in ``dfkd_lib/assets/teachers/``.
"""
from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from .checkpoint import (atomic_save, load_state_dict_checked, manifest_path, read_manifest, safe_load,
                         save_model, verify_sha256)
from .data import DatasetSpec, default_transform, get_dataset, resolve_spec
from .hooks import batch_statistics
from .models import TorchvisionResNet, build_classifier
from .utils import as_json, autocast, default_device, fast_mode, provenance, seed_everything

ASSETS = Path(__file__).resolve().parent / "assets" / "teachers"


@dataclass
class TeacherConfig:
    """Hyper-parameters of :func:`train_teacher` (SGD + Nesterov, cosine schedule with a linear warm-up)."""

    dataset: str = "fashion-mnist"
    arch: str = "resnet34"
    width: int = 16
    epochs: int = 12
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 0.5
    seed: int = 0
    amp: str | None = "bf16"  # "bf16" autocast on CPU/GPU, or None for fp32
    train_limit: int | None = None  # use only the first N training images (fast mode)
    root: str | None = None
    image_size: int | None = None  # RGB datasets: side in px (default dfkd_lib.data.DEFAULT_RGB_SIZE)
    classes: str | None = None  # folder / cub200: a subset of classes, e.g. "*_Warbler" (data.select_classes)
    pretrained: str | None = None  # tv_resnet*: torchvision ImageNet weights on disk (the fc layer is re-made)


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, device=None, progress: bool = False,
            bn_statistics: str = "running") -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true labels ``(N,)`` of every sample of ``loader`` (model in eval mode, its modes restored
    afterwards).

    ``bn_statistics="batch"`` normalises every BN layer with each batch's own statistics instead of the running
    ones (:class:`~dfkd_lib.hooks.batch_statistics`, a diagnostic; use batches of hundreds of images).

    Raises:
        ValueError: ``bn_statistics`` is not ``"running"`` or ``"batch"``.
    """
    if bn_statistics not in ("running", "batch"):
        raise ValueError(f"bn_statistics must be 'running' or 'batch', got {bn_statistics!r}")
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    preds, targets = [], []
    with batch_statistics(model) if bn_statistics == "batch" else contextlib.nullcontext():
        for x, y in tqdm(loader, desc="eval", leave=False, disable=not progress):
            preds.append(model(x.to(device)).argmax(1).cpu())
            targets.append(y)
    model.train(was_training)
    return torch.cat(preds), torch.cat(targets)


def evaluate(model: nn.Module, loader: DataLoader, device=None, progress: bool = False) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` on every sample of ``loader``."""
    p, t = predict(model, loader, device, progress)
    return (p == t).float().mean().item()


def real_test_loader(dataset: str | DatasetSpec, batch_size: int = 500, root=None,
                     limit: int | None = None) -> DataLoader:
    """Loader over the real *test* split (the only real data a data-free student is measured on); ``dataset``
    is a name or a spec (e.g. a teacher's, :func:`~dfkd_lib.data.spec_from_manifest`)."""
    ds = get_dataset(dataset, train=False, root=root)
    if limit is not None:
        ds = Subset(ds, range(min(limit, len(ds))))
    return DataLoader(ds, batch_size=batch_size, shuffle=False)


def train_teacher(config: TeacherConfig, out: str | Path | None = None, device=None, progress: bool = True,
                  command: str | None = None) -> tuple[nn.Module, dict]:
    """Train a teacher on the real training split and evaluate it on the real test split.

    Saves ``out`` (state_dict) and ``out.json`` (manifest with accuracy, config, provenance, sha256) when
    ``out`` is given; a ``out.state.pt`` training state is written after every epoch and resumed from.

    Returns:
        ``(model, manifest)`` with the model in eval mode and ``manifest["test_accuracy"]`` in [0, 1].
    """
    device = torch.device(device) if device is not None else default_device()
    if config.pretrained and not config.arch.startswith("tv_"):  # checked before any image is read
        raise ValueError("pretrained weights are torchvision ImageNet ResNets: use --arch tv_resnet18 or "
                         "tv_resnet34 (width 64) with them")
    if config.pretrained and not Path(config.pretrained).is_file():
        raise FileNotFoundError(f"no pretrained weights at {config.pretrained}")
    spec = resolve_spec(config.dataset, config.root, config.image_size, config.classes, progress=progress)
    seed_everything(config.seed)
    train_set = get_dataset(spec, train=True, transform=default_transform(spec, train=True))
    if config.train_limit is not None:
        train_set = Subset(train_set, range(min(config.train_limit, len(train_set))))
    gen = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(train_set, batch_size=min(config.batch_size, len(train_set)), shuffle=True,
                        drop_last=True, generator=gen)
    tests = real_test_loader(spec)
    model = build_classifier(config.arch, spec.num_classes, spec.in_channels, config.width, spec.image_size)
    if config.pretrained:
        load_pretrained(model, config.pretrained)
    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay, nesterov=True)
    total = config.epochs * len(loader)
    warm = max(1, int(config.warmup_epochs * len(loader)))
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [
        torch.optim.lr_scheduler.LinearLR(opt, 0.1, 1.0, warm),
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, total - warm))], milestones=[warm])
    history, start_epoch, resumed_from, t0 = [], 0, None, time.time()
    state_path = Path(str(out) + ".state.pt") if out is not None else None
    if state_path is not None and state_path.is_file():
        st = safe_load(state_path)
        if "config" in st and st["config"] != as_json(asdict(config)):
            raise ValueError(f"training state {state_path} was written by a run with another configuration "
                             f"({st['config']}); delete it or train with the same settings")
        model.load_state_dict(st["model"]), opt.load_state_dict(st["opt"]), sched.load_state_dict(st["sched"])
        history, start_epoch, resumed_from = st["history"], st["epoch"], st["epoch"]
        t0 -= st.get("wall_s", 0.0)
        gen.set_state(st["loader_rng"])
        torch.set_rng_state(st["torch_rng"])
    for epoch in range(start_epoch, config.epochs):
        model.train()
        bar = tqdm(loader, desc=f"teacher epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False)
        for x, y in bar:
            x, y = x.to(device), y.to(device)
            with autocast(device, config.amp):
                loss = F.cross_entropy(model(x), y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"teacher loss became {loss.item()} at epoch {epoch + 1}; the last good "
                                         f"state is {state_path}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        acc = evaluate(model, tests, device)
        history.append({"epoch": epoch + 1, "test_accuracy": acc, "wall_s": round(time.time() - t0, 1)})
        if progress:
            print(f"epoch {epoch + 1}: test accuracy {acc:.4f}")
        if state_path is not None:
            atomic_save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                         "history": history, "epoch": epoch + 1, "wall_s": time.time() - t0,
                         "loader_rng": gen.get_state(),
                         "torch_rng": torch.get_rng_state(), "config": as_json(asdict(config))}, state_path)
    model.eval()
    manifest = {
        "kind": "teacher",
        "architecture": config.arch,
        "width": config.width,
        "num_classes": spec.num_classes,
        "in_channels": spec.in_channels,
        "image_size": spec.image_size,
        "dataset": config.dataset,
        "data": spec.to_dict(),
        "test_accuracy": history[-1]["test_accuracy"] if history else evaluate(model, tests, device),
        "history": history,
        "config": asdict(config),
        "provenance": provenance(command),
        "train_wall_s": round(time.time() - t0, 1),
        "resumed_from_epoch": resumed_from,
    }
    if out is not None:
        manifest = save_model(model, out, manifest)
        if state_path.is_file():
            state_path.unlink()
    return model, manifest


def load_pretrained(model: nn.Module, path: str | Path) -> None:
    """Load torchvision ImageNet weights saved on disk (``torch.save(resnet.state_dict())``) into a
    ``tv_resnet*`` classifier, all but the final ``fc`` layer (which keeps its fresh initialisation for the
    new classes). Loaded with ``weights_only=True``.

    Raises:
        FileNotFoundError: no file at ``path``. ValueError: the model is not a ``tv_resnet*``, or the weights
        are of another architecture (the message names the mismatching keys).
    """
    if not isinstance(model, TorchvisionResNet):
        raise ValueError("pretrained weights are torchvision ImageNet ResNets: use --arch tv_resnet18 or "
                         "tv_resnet34 (width 64) with them")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no pretrained weights at {path}")
    state = {k: v for k, v in safe_load(path).items() if not k.startswith("fc.")}
    own = {k: v for k, v in model.net.state_dict().items() if not k.startswith("fc.")}
    bad = sorted(k for k in own if k not in state or state[k].shape != own[k].shape)
    if bad:
        raise ValueError(f"{path} does not hold weights of this architecture (missing or mis-shaped: "
                         f"{', '.join(bad[:4])}{'...' if len(bad) > 4 else ''})")
    model.net.load_state_dict(state, strict=False)


def load_teacher(path: str | Path, device=None) -> tuple[nn.Module, dict]:
    """Build the architecture named in the manifest beside ``path`` and load its weights (``weights_only``).

    Returns ``(model, manifest)``, the model frozen (``requires_grad=False``) and in eval mode.
    Raises ``FileNotFoundError`` for a missing file or manifest and
    :class:`~dfkd_lib.checkpoint.CheckpointError` for weights of another architecture, a file that does not match
    its manifest's sha256, or one that is not a weights-only checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no teacher checkpoint at {path}; train one with `python -m dfkd_lib "
                                f"train-teacher --out {path}`")
    m = read_manifest(path)
    verify_sha256(path, m)
    model = build_classifier(m["architecture"], m["num_classes"], m["in_channels"], m["width"],
                             m.get("image_size", 32))
    load_state_dict_checked(model, safe_load(path), source=str(path))
    model.eval().requires_grad_(False)
    if device is not None:
        model.to(device)
    return model, m


def default_teacher_path(dataset: str, arch: str = "resnet34", width: int = 16) -> Path:
    """Where the shipped teacher for ``dataset`` lives: ``dfkd_lib/assets/teachers/DATASET_ARCHwWIDTH.pt``."""
    return ASSETS / f"{dataset}_{arch}w{width}.pt"


def load_or_train_teacher(dataset: str = "fashion-mnist", arch: str = "resnet34", width: int = 16,
                          path: str | Path | None = None, device=None, progress: bool = True, **config
                          ) -> tuple[nn.Module, dict]:
    """Load the teacher checkpoint if present, else train it with :func:`train_teacher` and save it there."""
    path = Path(path) if path is not None else default_teacher_path(dataset, arch, width)
    if path.is_file() and manifest_path(path).is_file():
        return load_teacher(path, device)
    if fast_mode():  # a throw-away teacher for smoke tests must never replace a shipped checkpoint
        path = Path(tempfile.mkdtemp(prefix="dfkd_fast_teacher_")) / path.name
    cfg = TeacherConfig(dataset=dataset, arch=arch, width=width, **config)
    model, manifest = train_teacher(cfg, path, device, progress)
    return model.requires_grad_(False), manifest
