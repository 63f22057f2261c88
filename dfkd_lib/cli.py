"""Command line: ``python -m dfkd_lib {train-teacher,distill,...} --help``."""
from __future__ import annotations

import argparse
import shlex
import sys

from . import teachers


def _command_line(argv) -> str:
    return "python -m dfkd_lib " + " ".join(shlex.quote(a) for a in argv)


def _train_teacher(args, argv) -> int:
    cfg = teachers.TeacherConfig(dataset=args.dataset, arch=args.arch, width=args.width, epochs=args.epochs,
                                 batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                 amp=None if args.amp == "none" else args.amp, train_limit=args.train_limit,
                                 root=args.root)
    out = args.out or teachers.default_teacher_path(args.dataset, args.arch, args.width)
    _, manifest = teachers.train_teacher(cfg, out, device=args.device, command=_command_line(argv))
    print(f"teacher {args.arch} (width {args.width}) on {args.dataset}: test accuracy "
          f"{manifest['test_accuracy']:.4f}, {manifest['train_wall_s']:.0f} s -> {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dfkd_lib", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train-teacher", help="train a teacher on real data and save state_dict + manifest")
    t.add_argument("--dataset", default="fashion-mnist")
    t.add_argument("--root", default=None, help="dataset folder (default: search the known places)")
    t.add_argument("--arch", default="resnet34")
    t.add_argument("--width", type=int, default=16)
    t.add_argument("--epochs", type=int, default=12)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=0.1)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--amp", choices=["bf16", "none"], default="bf16")
    t.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    t.add_argument("--device", default=None)
    t.add_argument("--out", default=None, help="checkpoint path (default: dfkd_lib/assets/teachers/...)")
    t.set_defaults(func=_train_teacher)
    from . import cli_distill  # noqa: F401  (adds the distillation commands)
    cli_distill.add_commands(sub)
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    return args.func(args, argv)
