"""Results commands: a grid of distillation runs (variants x datasets x seeds) described by a JSON spec.

A spec file (committed under ``results/``) looks like::

    {"name": "ablation",
     "datasets": ["fashion-mnist", "fashion-mnist-upper"],
     "seeds": [0, 1, 2],
     "common": {"student": "resnet18", "student_width": 16, "generator_width": 16,
                "config": {"epochs": 8, "iterations_per_epoch": 10, "amp": "bf16"}},
     "variants": {"baseline": {"method": "baseline"},  # any run_distillation option, e.g. "save_weights": true
                  "full": {"method": "dfkd-fgvc", "generator": "attention"}}}

``datasets`` may also map a label to the options of a dataset, e.g. a folder of photos with its own teacher::

     "datasets": {"warblers": {"dataset": "folder", "root": "../shared/data/cub100-subset",
                               "teacher": "results/birds/teachers/warblers_resnet34w16.pt"}}

(the label then names the result files and the table rows; relative paths are relative to the directory the
sweep is run from).

``"reuse": ["other_spec.json"]`` names sweeps whose identical runs (same configuration, seed, data and teacher
file) are copied instead of run again (:mod:`dfkd_lib.reuse`).

``python -m dfkd_lib sweep results/ablation.json`` runs every (variant, dataset, seed) whose result file
``results/ablation/VARIANT__DATASET__sSEED.json`` is missing or stale (made with another configuration than
the spec now asks for, defaults included), each written with its provenance. Runs go seed by seed, so that the
variants of one seed finish together; a run checkpoints after every epoch (``...sSEED.state.pt``, git-ignored),
so an interrupted sweep resumes mid-run. Several sweeps may share the work: ``--only`` and ``--dataset`` pick
their part. Readers leave stale files out: :func:`load_results` (one row per run), :func:`load_histories`
(per-epoch records), :func:`sweep_provenance` (where each file came from), :func:`sweep_status` (what is
missing) and :func:`summarize` (mean and spread over seeds).
"""
from .plan import plan_summary, sweep_plan
from .results import (finished_runs, load_histories, load_results, load_run, summarize, sweep_provenance,
                      sweep_status)
from .run import run_sweep
from .spec import (EXECUTION_FIELDS, SPEC_KEYS, expected_fields, is_current, load_spec, pending_runs, planned_runs,
                   result_path, run_states, select_runs)

__all__ = ["EXECUTION_FIELDS", "SPEC_KEYS", "expected_fields", "finished_runs", "is_current", "load_histories",
           "load_results", "load_run", "load_spec", "pending_runs", "plan_summary", "planned_runs", "result_path",
           "run_sweep", "run_states", "select_runs", "summarize", "sweep_plan", "sweep_provenance", "sweep_status"]
