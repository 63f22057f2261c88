"""One distillation run from names and numbers: what the command line and the chapters call.

:func:`run_distillation` loads the teacher, builds the student, the synthesiser and the method by name, runs
:func:`dfkd_lib.engine.distill` with the real *test* split only, and writes a result JSON with provenance.
"""
from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import torch

from .data import dataset_spec
from .engine import DistillConfig, GeneratorSynthesizer, distill, write_result
from .methods import build_method
from .methods.inversion import make_inversion_run
from .models import build_classifier
from .models.attention_generator import AttentionGenerator
from .models.generators import DCGANGenerator
from .teachers import default_teacher_path, load_teacher, real_test_loader
from .utils import default_device, fast_mode

#: Methods whose images are optimised pixels (dfkd_lib.synthesis); ``method_options`` then also carry the
#: synthesiser's options (steps, alpha_tv, alpha_f, alpha_c, ...), see :func:`~dfkd_lib.methods.inversion.make_inversion_run`.
INVERSION_METHODS = ("deepinversion", "di", "adi", "zskd")
GENERATORS = {"dcgan": DCGANGenerator, "attention": AttentionGenerator}
FAST_INVERSION_STEPS = 3


def register_generator(name: str, cls) -> None:
    """Make a generator class (with a ``for_dataset(spec, nz, width, **options)`` constructor) available by name."""
    GENERATORS[name] = cls


def build_generator(name: str, spec, nz: int = 256, width: int = 64, **options):
    """Build a registered generator for a dataset spec; ``KeyError`` lists the known names."""
    if name not in GENERATORS:
        raise KeyError(f"unknown generator {name!r}; known generators: {', '.join(sorted(GENERATORS))}")
    return GENERATORS[name].for_dataset(spec, nz=nz, width=width, **options)


def fast_config(config: DistillConfig) -> DistillConfig:
    """The same run shrunk for tests (``DFKD_FAST=1``): 1 epoch of 2 iterations with t=2, k=2, batch 16
    (and, for the pixel-optimisation methods, at most :data:`FAST_INVERSION_STEPS` steps per batch)."""
    return replace(config, epochs=1, iterations_per_epoch=2, batch_size=16, generator_steps=2, student_steps=2)


def run_distillation(dataset: str = "fashion-mnist", *, teacher: str | Path | None = None,
                     student: str = "resnet18", student_width: int = 16, method: str = "baseline",
                     method_options: dict | None = None, generator: str = "dcgan", generator_width: int = 32,
                     nz: int = 128, generator_options: dict | None = None, config: DistillConfig | None = None,
                     out: str | Path | None = None, checkpoint: str | Path | None = None, device=None,
                     progress: bool = True, command: str | None = None, test_limit: int | None = None) -> dict:
    """Distil the teacher of ``dataset`` into a new student without real training data.

    Args:
        dataset: dataset name (:mod:`dfkd_lib.data`); only its **test** split is loaded.
        teacher: teacher checkpoint; default the shipped ResNet-34 (width 16) of ``dataset``.
        student, student_width: classifier name and width (:func:`dfkd_lib.models.build_classifier`).
        method, method_options: :func:`dfkd_lib.methods.build_method` name and keyword options; for the
            pixel-optimisation methods (:data:`INVERSION_METHODS`) the options of
            :func:`~dfkd_lib.methods.inversion.make_inversion_run` (and ``generator*`` are ignored).
        generator, generator_width, nz, generator_options: the synthesiser's generator.
        config: schedule; in fast mode (``DFKD_FAST=1``) shrunk by :func:`fast_config`.
        out: result JSON path (config, per-epoch accuracy, best/last, wall time, provenance).
        checkpoint: resumable training checkpoint path.
        test_limit: evaluate on the first N test images only (smoke tests).

    Returns:
        The result dictionary (also written to ``out``).
    """
    device = torch.device(device) if device is not None else default_device()
    config = config or DistillConfig()
    if fast_mode():
        config = fast_config(config)
        test_limit = test_limit or 200
    spec = dataset_spec(dataset)
    teacher_path = Path(teacher) if teacher is not None else default_teacher_path(dataset)
    t_model, manifest = load_teacher(teacher_path, device)
    if manifest["dataset"] != dataset:
        raise ValueError(f"teacher {teacher_path} was trained on {manifest['dataset']!r}, not {dataset!r}")
    torch.manual_seed(config.seed)
    s_model = build_classifier(student, spec.num_classes, spec.in_channels, student_width).to(device)
    if method in INVERSION_METHODS:  # pixels optimised per batch into a pool, no generator
        options = dict(method_options or {})
        if fast_mode():
            options["steps"] = min(options.get("steps", FAST_INVERSION_STEPS), FAST_INVERSION_STEPS)
        synth, m = make_inversion_run(method, spec, **options)
    else:
        g_model = build_generator(generator, spec, nz=nz, width=generator_width, **(generator_options or {}))
        synth, m = GeneratorSynthesizer(g_model), build_method(method, **(method_options or {}))
    loader = real_test_loader(dataset, limit=test_limit)
    result = distill(t_model, s_model, synth, m, loader, config, device=device,
                     checkpoint=checkpoint, progress=progress, teacher_accuracy=manifest["test_accuracy"])
    extra = {"dataset": dataset, "teacher": {"path": str(teacher_path), "sha256": manifest.get("sha256"),
                                             "architecture": manifest["architecture"],
                                             "width": manifest["width"]},
             "student": {"architecture": student, "width": student_width},
             "method": {"name": method, "options": method_options or {}},
             "generator": {"name": generator, "width": generator_width, "nz": nz,
                           "options": generator_options or {}},
             "test_images": len(loader.dataset)}
    if out is not None:
        return write_result(out, result, config, extra, command)
    return {"config": asdict(config), **extra, **result.to_dict()}
