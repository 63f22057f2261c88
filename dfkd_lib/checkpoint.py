"""Checkpoints: atomic writes, safe loads (``weights_only=True``) and JSON manifests.

A model checkpoint is a plain ``state_dict`` file ``NAME.pt`` with a manifest ``NAME.json`` beside it that
records the architecture, data, command, accuracy and the file's sha256. Metadata never goes into the pickle,
so every load can use ``torch.load(..., weights_only=True)`` and refuse code inside an untrusted file.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn


class CheckpointError(RuntimeError):
    """A checkpoint does not fit the model it is loaded into, or its manifest does not match the file."""


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: a crash never leaves half a file."""
    _atomic_write(Path(path), lambda f: torch.save(obj, f))


def write_json(obj: dict, path: str | os.PathLike) -> None:
    """Write JSON atomically (indent 2, keys in insertion order)."""
    data = (json.dumps(obj, indent=2) + "\n").encode()
    _atomic_write(Path(path), lambda f: f.write(data))


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def safe_load(path: str | os.PathLike, map_location="cpu") -> Any:
    """``torch.load`` with ``weights_only=True``: tensors, dicts, lists and numbers only.

    Raises:
        CheckpointError: the file holds other pickled objects (code could run on loading: refused) or is not a
        torch checkpoint at all.
    """
    import pickle

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path} is not a weights-only checkpoint (it pickles other objects, which could run "
                              "code on loading): refused; save a state_dict with torch.save") from e
    except (RuntimeError, EOFError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise CheckpointError(f"{path} is not a readable torch checkpoint ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:120]})") from e


def verify_sha256(path: str | os.PathLike, manifest: dict) -> None:
    """Check a checkpoint against the sha256 its manifest records (manifests without one are not checked).

    Raises:
        CheckpointError: the file differs from the one the manifest describes.
    """
    want = manifest.get("sha256")
    if want and sha256(path) != want:
        raise CheckpointError(f"{path} does not match the sha256 in its manifest: the file was changed or replaced "
                              "after it was saved")


def manifest_path(path: str | os.PathLike) -> Path:
    """``NAME.json`` beside ``NAME.pt``."""
    return Path(path).with_suffix(".json")


def save_model(model: nn.Module, path: str | os.PathLike, manifest: dict) -> dict:
    """Save ``model.state_dict()`` atomically and its manifest (with the file's sha256) beside it."""
    path = Path(path)
    atomic_save(model.state_dict(), path)
    manifest = dict(manifest, file=path.name, sha256=sha256(path))
    write_json(manifest, manifest_path(path))
    return manifest


def read_manifest(path: str | os.PathLike) -> dict:
    """The JSON manifest beside a checkpoint; ``FileNotFoundError`` if there is none."""
    mp = manifest_path(path)
    if not mp.is_file():
        raise FileNotFoundError(f"no manifest {mp} beside checkpoint {path}")
    return json.loads(mp.read_text())


def load_state_dict_checked(model: nn.Module, state: dict, source: str = "checkpoint") -> None:
    """``model.load_state_dict(state)`` with a message that names the mismatch and what to do.

    Raises:
        CheckpointError: missing or unexpected keys, or tensors of other shapes (another architecture or width).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            details.append(f"{len(wrong)} shape mismatches (e.g. {k}: file {tuple(state[k].shape)} vs model "
                           f"{tuple(own[k].shape)})")
        raise CheckpointError(
            f"{source} was saved from another architecture than {type(model).__name__}: " + "; ".join(details)
            + ". Build the model named in the checkpoint's manifest (architecture, width, classes, channels).")
    model.load_state_dict(state)
