"""One run, two tables: a sweep takes the result of an identical run that another sweep has already made.

A spec may list other specs under ``"reuse"`` (paths relative to the spec's folder), e.g. our Table 1 lists the
ablation and the birds sweeps, whose full method and real-data reference are the same runs as two of its rows.
Before :func:`~dfkd_lib.sweep.run_sweep` makes a missing run it looks there for a result that is the same run:

* current for this run (:func:`~dfkd_lib.sweep.is_current`: the same schedule and seed, models and every
  resolved hyper-parameter, execution fields aside), not made in fast mode;
* the same data set name and a teacher file with the same sha256 as the one this run would load.

It copies that result (and its weights file, if any) to this run's path, with ``provenance.copied_from`` naming
the source, so the tables of both sweeps read the same numbers and nobody pays for the run twice.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable, Iterable

from .checkpoint import sha256, write_json


def _teacher_file(run: dict) -> Path:
    from .teachers import default_teacher_path

    teacher = run["kwargs"].get("teacher")
    return Path(teacher) if teacher else default_teacher_path(run["kwargs"]["dataset"])


def identical_result(run: dict, candidates: Iterable[Path], same_config: Callable[[dict], bool]) -> Path | None:
    """The first of the ``candidates`` (result files of other sweeps) that is the same run as ``run`` (a planned
    run of :func:`~dfkd_lib.sweep.planned_runs`), or ``None``: not made in fast mode, the same data set name, a
    teacher file with the same sha256 as the one ``run`` loads, and ``same_config(result)`` (the sweep passes
    :func:`~dfkd_lib.sweep.is_current` for ``run``)."""
    teacher = _teacher_file(run)
    if not teacher.is_file():
        return None
    teacher_sha = sha256(teacher)
    for path in candidates:
        result = json.loads(Path(path).read_text())
        if (not result.get("provenance", {}).get("fast_mode")
                and result.get("dataset") == run["kwargs"]["dataset"]
                and (result.get("teacher") or {}).get("sha256") == teacher_sha
                and same_config(result)):
            return Path(path)
    return None


def adopt_result(source: Path, out: Path) -> dict:
    """Copy result ``source`` (and its weights file) to ``out`` with ``provenance.copied_from``; returns the copy.

    Raises:
        ValueError: the weights file ``source`` names does not match its recorded sha256."""
    result = json.loads(Path(source).read_text())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if "weights" in result:
        src_w = Path(source).with_name(result["weights"]["file"])
        if sha256(src_w) != result["weights"]["sha256"]:
            raise ValueError(f"{src_w} does not match the sha256 recorded in {source}")
        dst_w = out.with_name(out.name.removesuffix(".json") + ".weights.pt")
        tmp = dst_w.with_name(dst_w.name + ".tmp")
        shutil.copyfile(src_w, tmp)
        tmp.replace(dst_w)                       # the weights first, the result that names them last
        result["weights"] = {**result["weights"], "file": dst_w.name}
    result["provenance"] = {**result.get("provenance", {}), "copied_from": str(source)}
    write_json(result, out)
    return result


__all__ = ["identical_result", "adopt_result"]
