"""Command line: ``python -m dfkd_lib {train-teacher,distill,...} --help``."""
from __future__ import annotations

import argparse
import shlex
import sys

from . import cli_distill, teachers

TEACHER = teachers.TeacherConfig()  # the defaults of train-teacher's flags


def _command_line(argv) -> str:
    return "python -m dfkd_lib " + " ".join(shlex.quote(a) for a in argv)


def _train_teacher(args, argv) -> int:
    cfg = teachers.TeacherConfig(dataset=args.dataset, arch=args.arch, width=args.width, epochs=args.epochs,
                                 batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                 amp=cli_distill.amp_value(args.amp), train_limit=args.train_limit,
                                 root=args.root, image_size=args.image_size, classes=args.classes,
                                 pretrained=args.pretrained)
    if args.out is None and args.dataset not in ("fashion-mnist", "fashion-mnist-upper", "mnist"):
        raise ValueError(f"--out is required for {args.dataset} (the shipped-teacher folder holds the "
                         "Fashion-MNIST and MNIST teachers only), e.g. --out teachers/birds.pt")
    out = args.out or teachers.default_teacher_path(args.dataset, args.arch, args.width)
    _, manifest = teachers.train_teacher(cfg, out, device=args.device, command=_command_line(argv))
    print(f"teacher {args.arch} (width {args.width}) on {args.dataset}: test accuracy "
          f"{manifest['test_accuracy']:.4f}, {manifest['train_wall_s']:.0f} s -> {out}")
    return 0


def _invert(args, argv) -> int:
    from .inversion_grid import inversion_grid, load_grid_spec

    spec = load_grid_spec(args.spec)  # checked before the teacher is loaded
    teacher, manifest = teachers.load_or_train_teacher(spec["teacher"], device=args.device)
    results = inversion_grid(args.spec, teacher, manifest)
    for name, res in results.items():
        print(f"{name:28s} teacher accuracy on the final images {100 * res.final['teacher_acc']:5.1f}%, "
              f"CE {res.final['CE']:.3f}")
    print(f"{len(results)} settings -> results/{spec['name']}/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dfkd_lib", description=__doc__)
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train-teacher", help="train a teacher on real data and save state_dict + manifest")
    t.add_argument("--dataset", default=TEACHER.dataset)
    t.add_argument("--root", default=None, help="dataset folder (default: search the known places)")
    t.add_argument("--image-size", type=int, default=None,
                   help="RGB datasets: image side in px (default 64; the paper uses 224)")
    t.add_argument("--classes", default=None,
                   help="folder/cub200: only these classes, comma-separated names or patterns, e.g. '*_Warbler'")
    t.add_argument("--pretrained", default=None,
                   help="torchvision ImageNet weights on disk for --arch tv_resnet18/tv_resnet34")
    t.add_argument("--arch", default=TEACHER.arch)
    t.add_argument("--width", type=int, default=TEACHER.width)
    t.add_argument("--epochs", type=int, default=TEACHER.epochs)
    t.add_argument("--batch-size", type=int, default=TEACHER.batch_size)
    t.add_argument("--lr", type=float, default=TEACHER.lr)
    t.add_argument("--seed", type=int, default=TEACHER.seed)
    t.add_argument("--amp", choices=["bf16", "none"], default=TEACHER.amp or "none")
    t.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    t.add_argument("--device", default=None)
    t.add_argument("--out", default=None, help="checkpoint path (default: dfkd_lib/assets/teachers/...)")
    t.set_defaults(func=_train_teacher)
    g = sub.add_parser("invert", help="run the missing settings of a DeepInversion grid spec and store them")
    g.add_argument("spec", help="JSON grid spec, e.g. results/bn_inversion_grid.json")
    g.add_argument("--device", default=None)
    g.set_defaults(func=_invert)
    cli_distill.add_commands(sub)  # distill, sweep, methods, ...
    return p


def main(argv=None) -> int:
    """Run a subcommand. Bad input (a missing file, an unknown name, a wrong value) prints one line,
    ``error: ...``, and returns 2; ``--debug`` shows the traceback instead."""
    from .checkpoint import CheckpointError
    from .data import CorruptImageError, DatasetNotFoundError

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args, argv)
    except (DatasetNotFoundError, CorruptImageError, CheckpointError, FileNotFoundError, KeyError,
            ValueError) as e:
        if args.debug:
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"{parser.prog} {args.cmd}: error: {msg}", file=sys.stderr)
        return 2
