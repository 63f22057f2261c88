"""``python -m dfkd_lib distill``: one data-free distillation run, written to a result JSON."""
from __future__ import annotations

import inspect
import json
import shlex

from .config import DistillConfig

BOOK = DistillConfig.book()  # the command's schedule defaults


def _run_default(name: str):
    """A keyword default of :func:`~dfkd_lib.experiment.run_distillation` (each default is stated there once)."""
    from .experiment import run_distillation

    return inspect.signature(run_distillation).parameters[name].default


COMPILE_HELP = ("torch.compile the networks of each run (DistillConfig.compile): minutes of compiling the first time, "
                "then faster steps; the result records it")


def amp_value(flag: str) -> str | None:
    """An ``--amp`` flag (``"bf16"`` or ``"none"``) as :attr:`DistillConfig.amp` takes it (``None``: fp32)."""
    return None if flag == "none" else flag


def _parse_options(pairs: list[str]) -> dict:
    """``["beta=10", "order=2"]`` -> ``{"beta": 10, "order": 2}`` (values parsed as JSON when they can be)."""
    out = {}
    for p in pairs or []:
        if "=" not in p:
            raise ValueError(f"option {p!r} must look like name=value")
        k, v = p.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def _distill(args, argv) -> int:
    from .experiment import run_distillation

    given = {"epochs": args.epochs, "iterations_per_epoch": args.iterations, "batch_size": args.batch_size,
             "lr_generator": args.lr_generator, "lr_student": args.lr_student, "seed": args.seed,
             "generator_steps": args.t, "student_steps": args.k, "pool_size": args.pool_size}
    base = DistillConfig.book if args.schedule == "book" else DistillConfig
    cfg = base(amp=amp_value(args.amp), compile=args.compile,
               **{k: v for k, v in given.items() if v is not None})
    res = run_distillation(args.dataset, teacher=args.teacher, student=args.student,
                           student_width=args.student_width, method=args.method,
                           method_options=_parse_options(args.option), generator=args.generator,
                           generator_width=args.generator_width, nz=args.nz,
                           generator_options=_parse_options(args.generator_option), config=cfg, out=args.out,
                           checkpoint=args.checkpoint, device=args.device, root=args.root,
                           save_weights=args.save_weights,
                           image_size=args.image_size,
                           command="python -m dfkd_lib " + " ".join(shlex.quote(a) for a in argv))
    print(f"{args.method}: student best {res['best_accuracy']:.4f}, last {res['last_accuracy']:.4f} "
          f"(teacher {res['teacher_accuracy']:.4f}), {res['wall_s']:.0f} s" + (f" -> {args.out}" if args.out else ""))
    return 0


def _sweep(args, argv) -> int:
    from .sweep import plan_summary, run_sweep, summarize, sweep_plan

    if args.plan:
        plan = sweep_plan(args.spec, only=args.only, datasets=args.dataset, seeds=args.seed,
                          amp=None if args.amp is None else amp_value(args.amp) or "fp32")
        if not plan.empty:
            print(plan.round(1).to_string(index=False))
        print(f"{args.spec}: {plan_summary(plan)}")
        return 0
    execution = {} if args.amp is None else {"amp": amp_value(args.amp)}
    if args.compile:
        execution["compile"] = True
    run_sweep(args.spec, only=args.only, datasets=args.dataset, seeds=args.seed, execution=execution,
              copy_only=args.copy_only)
    print(summarize(args.spec).to_string())
    return 0


def _methods(args, argv) -> int:
    from .methods import describe_methods, method_options

    for row in sorted(describe_methods(), key=lambda r: r["name"]):
        options = ", ".join(f"{k}={v!r}" for k, v in method_options(row["name"]).items())
        print(f"{row['name']}: {row['citation']}\n    images: {row['images']}; BN prior: "
              f"{'yes' if row['BN prior'] else 'no'}\n    options: {options}")
    return 0


def add_commands(sub) -> None:
    m = sub.add_parser("methods", help="list the registered methods with their papers and options")
    m.set_defaults(func=_methods)
    w = sub.add_parser("sweep", help="run the missing runs of a results spec (variants x datasets x seeds)")
    w.add_argument("spec", help="JSON spec, e.g. results/dfkd_fgvc_ablation.json")
    w.add_argument("--only", default=None, help="run only these variants (comma-separated)")
    w.add_argument("--dataset", default=None, help="run only these datasets (comma-separated)")
    w.add_argument("--seed", default=None, help="run only these seeds (comma-separated)")
    w.add_argument("--amp", choices=["bf16", "none"], default=None,
                   help="override the spec's arithmetic for the runs made now (none = fp32; the result records it)")
    w.add_argument("--compile", action="store_true", help=COMPILE_HELP)
    w.add_argument("--plan", action="store_true",
                   help="only list the runs that would be made, with wall-time estimates from the finished ones")
    w.add_argument("--copy-only", action="store_true",
                   help="only copy the identical runs of the sweeps the spec reuses; run nothing")
    w.set_defaults(func=_sweep)

    d = sub.add_parser("distill", help="distil a teacher into a student without real training data")
    d.add_argument("--dataset", default=_run_default("dataset"))
    d.add_argument("--teacher", default=None, help="teacher checkpoint (default: the shipped one)")
    d.add_argument("--root", default=None, help="dataset folder (default: the one the teacher was trained from)")
    d.add_argument("--image-size", type=int, default=None, help="image side in px (must be the teacher's)")
    d.add_argument("--student", default=_run_default("student"))
    d.add_argument("--student-width", type=int, default=_run_default("student_width"))
    d.add_argument("--method", default=_run_default("method"))
    d.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="method option, e.g. --option alpha=0.3 (repeatable)")
    d.add_argument("--generator", default=_run_default("generator"))
    d.add_argument("--generator-width", type=int, default=_run_default("generator_width"))
    d.add_argument("--generator-option", action="append", default=[], metavar="NAME=VALUE")
    d.add_argument("--nz", type=int, default=_run_default("nz"))
    d.add_argument("--schedule", choices=["book", "paper"], default="book",
                   help=f"defaults of the flags below: book = {BOOK.epochs} epochs x {BOOK.iterations_per_epoch} "
                        f"iterations of t={BOOK.generator_steps}, k={BOOK.student_steps} with a bank of "
                        f"{BOOK.pool_size} images (dfkd_lib.config.BOOK_SCHEDULE); paper = DistillConfig's "
                        "(200 x 50 iterations of the method's t and k, no bank)")
    d.add_argument("--epochs", type=int, default=None)
    d.add_argument("--iterations", type=int, default=None, help="Algorithm 1 iterations per epoch")
    d.add_argument("--t", type=int, default=None, help="generator steps per iteration")
    d.add_argument("--k", type=int, default=None, help="student steps per iteration")
    d.add_argument("--pool-size", type=int, default=None, help="images in the memory bank (0: none)")
    d.add_argument("--batch-size", type=int, default=None)
    d.add_argument("--lr-generator", type=float, default=None)
    d.add_argument("--lr-student", type=float, default=None)
    d.add_argument("--seed", type=int, default=None)
    d.add_argument("--amp", choices=["bf16", "none"], default="none")
    d.add_argument("--compile", action="store_true", help=COMPILE_HELP)
    d.add_argument("--device", default=None)
    d.add_argument("--checkpoint", default=None, help="resumable checkpoint path")
    d.add_argument("--out", default=None, help="result JSON path")
    d.add_argument("--save-weights", action="store_true",
                   help="with --out, also save the final student and generator weights beside the result")
    d.set_defaults(func=_distill)
