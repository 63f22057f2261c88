"""A grid of DeepInversion settings, run once and stored: a results file for comparisons too long for a chapter.

A grid spec is a JSON file, e.g. ``results/bn_inversion_grid.json``::

    {"name": "bn_inversion_grid", "teacher": "fashion-mnist", "per_class": 2, "steps": 200, "seed": 0,
     "snapshot_every": null, "amp": null,
     "settings": {"f1_tv0.03": {"alpha_f": 1.0, "alpha_tv": 0.03, "alpha_l2": 0.01}, ...}}

Every setting inverts the same targets (``per_class`` images of every class, ``0,0,1,1,...``) from the same noise
(``seed``) with :func:`~dfkd_lib.synthesizers.deep_inversion` and the setting's options on top of the spec's
common ones. ``python -m dfkd_lib invert SPEC`` writes one file per setting, ``results/<name>/<setting>.pt``
(images, targets, history, snapshots, final terms, the options and the teacher's sha256, and provenance), and
skips settings whose file is current, so an interrupted run resumes. :func:`inversion_grid` loads the files
and runs what is missing or stale.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import atomic_save, safe_load
from .data import spec_from_manifest
from .synthesizers import InversionResult, deep_inversion
from .utils import project_root, provenance

GRID_KEYS = {"name", "description", "teacher", "per_class", "steps", "seed", "snapshot_every", "amp", "common",
             "settings"}
"""Keys a grid spec may hold; ``teacher``, ``steps`` and ``settings`` are required."""


def load_grid_spec(path: str | Path) -> dict:
    """Read and check a grid spec (see the module docstring).

    Raises:
        FileNotFoundError: no file at ``path``. ValueError: not JSON, an unknown or missing key, a setting that
            is not a dict of options, ``steps``/``per_class`` not a positive integer.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"grid spec {path} not found (e.g. results/bn_inversion_grid.json)")
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"grid spec {path} is not valid JSON: {e}") from None
    unknown = set(spec) - GRID_KEYS
    missing = {"teacher", "steps", "settings"} - set(spec)
    if unknown or missing:
        raise ValueError(f"grid spec {path}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)} "
                         f"(allowed: {sorted(GRID_KEYS)})")
    for key in ("steps", "per_class"):
        if not isinstance(spec.get(key, 1), int) or spec.get(key, 1) < 1:
            raise ValueError(f"grid spec {path}: {key} must be a positive integer, got {spec[key]!r}")
    if not isinstance(spec["settings"], dict) or not spec["settings"] or \
            not all(isinstance(v, dict) for v in spec["settings"].values()):
        raise ValueError(f"grid spec {path}: settings must map names to dicts of deep_inversion options")
    spec.setdefault("name", path.stem)
    return spec


def grid_targets(num_classes: int, per_class: int) -> torch.Tensor:
    """Class indices ``(num_classes * per_class,)``: ``per_class`` of every class, in class order."""
    return torch.arange(num_classes).repeat_interleave(per_class)


def _options(spec: dict, setting: str) -> dict:
    return {**spec.get("common", {}), **spec["settings"][setting]}


def _record_matches(record: dict, spec: dict, setting: str, teacher_sha: str | None, per_class: int) -> bool:
    return (record.get("options") == _options(spec, setting) and record.get("steps") == spec["steps"]
            and record.get("seed") == spec.get("seed", 0) and record.get("per_class") == per_class
            and record.get("amp") == spec.get("amp") and record.get("teacher_sha256") == teacher_sha
            and record.get("snapshot_every") == spec.get("snapshot_every"))


def inversion_grid(spec_path: str | Path, teacher: nn.Module, manifest: dict, *, steps: int | None = None,
                   per_class: int | None = None,
                   out_dir: str | Path | None = "default", progress: bool = True) -> dict[str, InversionResult]:
    """Every setting of a grid spec as an :class:`~dfkd_lib.synthesizers.InversionResult`, loaded or run.

    Args:
        spec_path: the grid spec (see the module docstring).
        teacher, manifest: the frozen classifier ``(N, C, H, W) -> (N, K)`` and its manifest (as returned by
            :func:`~dfkd_lib.teachers.load_or_train_teacher`): its data set and checkpoint sha256 come from
            there; a stored setting made with another teacher is rerun.
        steps, per_class: override the spec's (for quick looks); results made so are never written.
        out_dir: where the per-setting files live; ``"default"``: ``results/<name>/`` of the project;
            ``None``: run everything and write nothing.
        progress: a ``tqdm.auto`` bar over the settings.

    Returns:
        ``{setting: InversionResult}`` in the spec's order; results loaded from a file are on the CPU.

    Raises:
        FileNotFoundError, ValueError: see :func:`load_grid_spec`; ValueError from :func:`deep_inversion` on a
        bad option.
    """
    spec = load_grid_spec(spec_path)
    overridden = steps is not None or per_class is not None
    if steps is not None:
        spec["steps"] = int(steps)
    per_class = int(per_class if per_class is not None else spec.get("per_class", 1))
    folder = None if out_dir is None or overridden else \
        (project_root() / "results" / spec["name"] if out_dir == "default" else Path(out_dir))
    data_spec = spec_from_manifest(manifest)
    teacher_sha256 = manifest.get("sha256")
    targets = grid_targets(data_spec.num_classes, per_class)
    results = {}
    for setting in tqdm(spec["settings"], desc=spec["name"], disable=not progress, leave=False):
        path = folder / f"{setting}.pt" if folder is not None else None
        if path is not None and path.is_file():
            record = safe_load(path)
            if _record_matches(record, spec, setting, teacher_sha256, per_class):
                results[setting] = InversionResult(record["images"], record["targets"], record["history"],
                                                   [tuple(s) for s in record["snapshots"]], record["final"])
                continue
        res = deep_inversion(teacher, targets, data_spec, steps=spec["steps"], seed=spec.get("seed", 0),
                             snapshot_every=spec.get("snapshot_every"), amp=spec.get("amp"), progress=False,
                             **_options(spec, setting))
        results[setting] = res
        if path is not None:
            atomic_save({"images": res.images.cpu(), "targets": res.targets.cpu(), "history": res.history,
                         "snapshots": [list(s) for s in res.snapshots], "final": res.final,
                         "options": _options(spec, setting), "steps": spec["steps"], "seed": spec.get("seed", 0),
                         "per_class": per_class, "amp": spec.get("amp"), "teacher_sha256": teacher_sha256,
                         "snapshot_every": spec.get("snapshot_every"),
                         "provenance": provenance()}, path)
    return results


def grid_provenance(spec_path: str | Path) -> dict[str, dict]:
    """``{setting: provenance}`` of the stored files of a grid spec (settings without a file are left out)."""
    spec = load_grid_spec(spec_path)
    folder = project_root() / "results" / spec["name"]
    return {s: safe_load(folder / f"{s}.pt")["provenance"] for s in spec["settings"]
            if (folder / f"{s}.pt").is_file()}
