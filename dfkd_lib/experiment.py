"""One distillation run from names and numbers: what the command line and the chapters call.

:func:`run_distillation` loads the teacher, builds the student, the synthesiser and the method by name, runs
:func:`dfkd_lib.engine.distill` with the real *test* split only, and writes a result JSON with provenance.
"""
from __future__ import annotations

import inspect
from dataclasses import asdict, replace
from pathlib import Path

import torch

from .checkpoint import atomic_save, safe_load, sha256
from .data import check_root, dataset_spec, spec_from_manifest
from .config import DistillConfig
from .engine import distill, write_result
from .methods import build_method, check_options, method_options as method_defaults
from .methods.inversion import ADI_ALPHA_C, INVERSION_TEMPERATURE, make_inversion_run
from .models import GENERATORS, build_classifier, build_generator, register_generator  # noqa: F401 (re-exported)
from .synthesizers import GeneratorSynthesizer, InversionSynthesizer, RealImages, ZSKDSynthesizer
from .synthesizers.deepinversion import deep_inversion
from .synthesizers.zskd import zskd_synthesize
from .teachers import default_teacher_path, load_teacher, real_test_loader
from .utils import default_device, fast_mode

#: Methods whose images are optimised pixels (dfkd_lib.synthesizers); ``method_options`` then also carry the
#: synthesiser's options (steps, alpha_tv, alpha_f, alpha_c, ...), see
#: :func:`~dfkd_lib.methods.inversion.make_inversion_run`.
INVERSION_METHODS = ("deepinversion", "di", "adi", "zskd")
#: Reference runs on real training images (:mod:`dfkd_lib.synthesizers.real`): upper bounds, not data-free.
REFERENCE_METHODS = ("real-kd", "real-labels")
FAST_INVERSION_STEPS = 3


#: Constructor arguments that are not hyper-parameters: filled from the dataset spec or the generator's
#: ``width`` (recorded elsewhere in a result), or about display and call-backs only.
NOT_HYPERPARAMETERS = ("self", "spec", "teacher", "student", "targets_tensor", "soft_targets", "fc_weight",
                       "nz", "out_channels", "image_size", "channels", "mean", "std", "progress", "callback",
                       "snapshot_every", "name")


def _defaults(*functions) -> dict:
    """Keyword defaults of ``functions`` in order (the first one that names a parameter wins); a class stands
    for the ``__init__`` of each class of its MRO that defines one, followed while it passes ``**kwargs`` on."""
    found: dict = {}
    for f in functions:
        inits = [c.__init__ for c in f.__mro__ if "__init__" in vars(c)] if isinstance(f, type) else [f]
        for init in inits:
            params = inspect.signature(init).parameters.values()
            for p in params:
                if p.default is not p.empty and p.name not in NOT_HYPERPARAMETERS:
                    found.setdefault(p.name, p.default)
            if not any(p.kind == p.VAR_KEYWORD for p in params):
                break
    return found


def resolved_options(method: str = "baseline", method_options: dict | None = None, generator: str = "dcgan",
                     generator_options: dict | None = None, fast: bool = False) -> dict:
    """Every hyper-parameter of a run as it is actually used, defaults included, without building anything.

    Returns:
        ``{"method": {...}, "generator": {...} or None, "synthesizer": {...} or None}``: the method's options
        (its constructor's defaults overridden by ``method_options``), the generator's (its constructor's,
        shapes excluded: they follow the dataset and ``width``) and, for the pixel-optimisation methods, the
        synthesiser's. Result files record it as ``"resolved"``, and a sweep counts a result as current only if
        it matches (:func:`dfkd_lib.sweep.is_current`): a changed default makes old results stale. ``fast``:
        as a fast-mode run uses them (at most :data:`FAST_INVERSION_STEPS` pixel-optimisation steps).

    Raises:
        KeyError: an unknown method or generator. ValueError: an option the method does not have.
    """
    given = dict(method_options or {})
    if method in INVERSION_METHODS:
        kind = {"di": "deepinversion"}.get(method, method)
        own = {"temperature": given.pop("temperature", None), "student_steps": given.pop("student_steps", 5)}
        own["temperature"] = INVERSION_TEMPERATURE[kind] if own["temperature"] is None else own["temperature"]
        cls, fn = (ZSKDSynthesizer, zskd_synthesize) if kind == "zskd" else (InversionSynthesizer, deep_inversion)
        synth = {**_defaults(cls, fn), **({"alpha_c": ADI_ALPHA_C} if kind == "adi" else {}), **given}
        if fast:
            synth["steps"] = min(synth["steps"], FAST_INVERSION_STEPS)
        return {"method": own, "generator": None, "synthesizer": synth}
    check_options(method, given)
    resolved = {"method": {**method_defaults(method), **given}, "generator": None, "synthesizer": None}
    if method not in REFERENCE_METHODS:
        resolved["generator"] = {**_defaults(GENERATORS[generator]), **(generator_options or {})}
    return resolved


def fast_config(config: DistillConfig) -> DistillConfig:
    """The same run shrunk for tests (``DFKD_FAST=1``): 1 epoch of 2 iterations with t=2, k=2, batch 16
    (and, for the pixel-optimisation methods, at most :data:`FAST_INVERSION_STEPS` steps per batch)."""
    return replace(config, epochs=1, iterations_per_epoch=2, batch_size=16, generator_steps=2, student_steps=2)


def run_distillation(dataset: str = "fashion-mnist", *, teacher: str | Path | None = None,
                     student: str = "resnet18", student_width: int = 16, method: str = "baseline",
                     method_options: dict | None = None, generator: str = "dcgan", generator_width: int = 32,
                     nz: int = 128, generator_options: dict | None = None, config: DistillConfig | None = None,
                     out: str | Path | None = None, checkpoint: str | Path | None = None, device=None,
                     progress: bool = True, command: str | None = None, test_limit: int | None = None,
                     save_weights: bool = False, root: str | Path | None = None,
                     image_size: int | None = None) -> dict:
    """Distil the teacher of ``dataset`` into a new student without real training data.

    Args:
        dataset: dataset name (:mod:`dfkd_lib.data`); only its **test** split is loaded, except by the
            reference methods (:data:`REFERENCE_METHODS`), which train on its real training images.
        teacher: teacher checkpoint; default the shipped ResNet-34 (width 16) of ``dataset``.
        student, student_width: classifier name and width (:func:`dfkd_lib.models.build_classifier`).
        method, method_options: :func:`dfkd_lib.methods.build_method` name and keyword options; for the
            pixel-optimisation methods (:data:`INVERSION_METHODS`) the options of
            :func:`~dfkd_lib.methods.inversion.make_inversion_run` (and ``generator*`` are ignored).
        generator, generator_width, nz, generator_options: the synthesiser's generator.
        config: schedule; in fast mode (``DFKD_FAST=1``) shrunk by :func:`fast_config`.
        out: result JSON path (config, per-epoch accuracy, best/last, wall time, provenance).
        checkpoint: resumable training checkpoint path. It names the teacher by its file's sha256 (the manifest's),
            not its path, so a run resumes in a moved or re-cloned checkout.
        test_limit: evaluate on the first N test images only (smoke tests).
        save_weights: with ``out``, also write the final student and generator ``state_dict``s (float16)
            to ``out`` with suffix ``.weights.pt``; the result records its name and sha256, and
            :func:`load_run_models` reads it back.
        root: where the dataset's files are (default: where the teacher was trained from, as its manifest
            records; Fashion-MNIST: its usual lookup).
        image_size: the side of the images in px; must be the teacher's (default: the teacher's).

    Data, image size, class names and normalisation are the teacher's (:func:`~dfkd_lib.data.spec_from_manifest`),
    and the result records them under ``"data"``.

    Returns:
        The result dictionary (also written to ``out``).

    Raises:
        ValueError: a teacher trained on another dataset or image size. DatasetNotFoundError: ``root`` does not
        exist. FileNotFoundError: no teacher checkpoint.
    """
    device = torch.device(device) if device is not None else default_device()
    config = config or DistillConfig()
    if fast_mode():
        config = fast_config(config)
        test_limit = test_limit or 200
    dataset_spec(dataset)  # an unknown name fails here, before any loading
    check_root(root, dataset)
    teacher_path = Path(teacher) if teacher is not None else default_teacher_path(dataset)
    t_model, manifest = load_teacher(teacher_path, device)
    if manifest["dataset"] != dataset:
        raise ValueError(f"teacher {teacher_path} was trained on {manifest['dataset']!r}, not {dataset!r}")
    spec = spec_from_manifest(manifest)
    if image_size is not None and image_size != spec.image_size:
        raise ValueError(f"teacher {teacher_path} takes {spec.image_size} px images, not {image_size} px: "
                         f"leave image_size out or train a teacher at {image_size} px")
    if root is not None:
        spec = replace(spec, root=str(root))
    torch.manual_seed(config.seed)
    s_model = build_classifier(student, spec.num_classes, spec.in_channels, student_width,
                               spec.image_size).to(device)
    resolved = resolved_options(method, method_options, generator, generator_options, fast=fast_mode())
    if method in INVERSION_METHODS:  # pixels optimised per batch into a pool, no generator
        options = dict(method_options or {})
        if fast_mode():
            options["steps"] = resolved["synthesizer"]["steps"]
        synth, m = make_inversion_run(method, spec, **options)
    elif method in REFERENCE_METHODS:
        synth = RealImages(spec, limit=2 * config.batch_size if fast_mode() else None)
        m = build_method(method, **(method_options or {}))
    else:
        g_model = build_generator(generator, spec, nz=nz, width=generator_width, **(generator_options or {}))
        m = build_method(method, **(method_options or {}))
        synth = m.make_synthesizer(g_model, spec)
    loader = real_test_loader(spec, limit=test_limit)
    result = distill(t_model, s_model, synth, m, loader, config, device=device,
                     checkpoint=checkpoint, progress=progress, teacher_accuracy=manifest["test_accuracy"],
                     identity={"dataset": dataset, "teacher": manifest.get("sha256") or str(teacher_path),
                               "student": [student, student_width], "method": method,
                               "generator": [generator, generator_width, nz], "resolved": resolved})
    extra = {"dataset": dataset, "teacher": {"path": str(teacher_path), "sha256": manifest.get("sha256"),
                                             "architecture": manifest["architecture"],
                                             "width": manifest["width"]},
             "student": {"architecture": student, "width": student_width},
             "method": {"name": method, "options": method_options or {}},
             "generator": {"name": generator, "width": generator_width, "nz": nz,
                           "options": generator_options or {}},
             "resolved": resolved,
             "test_images": len(loader.dataset), "data": spec.to_dict()}
    if out is not None and save_weights:
        path = weights_path(out)
        state = {"student": _half(s_model.state_dict())}
        if isinstance(synth, GeneratorSynthesizer):
            state["generator"] = _half(synth.generator.state_dict())
        atomic_save(state, path)
        extra["weights"] = {"file": path.name, "sha256": sha256(path), "dtype": "float16"}
    if out is not None:
        return write_result(out, result, config, extra, command)
    return {"config": asdict(config), **extra, **result.to_dict()}


def weights_path(out: str | Path) -> Path:
    """Where :func:`run_distillation` with ``save_weights=True`` puts the final weights of result ``out``."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(".json") + ".weights.pt")


def _half(state: dict) -> dict:
    return {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}


def load_run_models(result_path: str | Path, device="cpu"):
    """The final student and generator of a saved run, in eval mode, as the result file describes them.

    Args:
        result_path: a result JSON written by :func:`run_distillation` with ``save_weights=True``.

    Returns:
        ``(student, generator)``; ``generator`` is ``None`` for runs without one (pixel optimisation, references).

    Raises:
        FileNotFoundError: the run saved no weights. ValueError: the weights file's sha256 differs from the one
        recorded in the result (the file was changed or replaced).
    """
    import json

    result_path = Path(result_path)
    res = json.loads(result_path.read_text())
    if "weights" not in res:
        raise FileNotFoundError(f"{result_path} records no weights: rerun with save_weights=True")
    path = result_path.with_name(res["weights"]["file"])
    if sha256(path) != res["weights"]["sha256"]:
        raise ValueError(f"{path} does not match the sha256 recorded in {result_path}")
    state = safe_load(path, map_location=device)
    spec = spec_from_manifest(res)  # results record "data" as teacher manifests do
    st = res["student"]
    student = build_classifier(st["architecture"], spec.num_classes, spec.in_channels, st["width"],
                               spec.image_size)
    student.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state["student"].items()})
    generator = None
    if "generator" in state:
        g = res["generator"]
        generator = build_generator(g["name"], spec, nz=g["nz"], width=g["width"], **g["options"])
        generator.load_state_dict({k: v.float() if v.is_floating_point() else v
                                   for k, v in state["generator"].items()})
        generator.to(device).eval()
    return student.to(device).eval(), generator
