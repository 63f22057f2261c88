"""What one step of the distillation loop costs, and how far each fast path moves it.

Prints a table and writes JSON (``benchmarks/results/step_cost.json`` by default). For the book's sweep
configurations (shipped Fashion-MNIST teacher ResNet-34 w16, ResNet-18 w16 student, attention generator w16,
batch 64) it times a generator step, a student step and one iteration of a schedule, counts their FLOPs
(``torch.utils.flop_counter``) and compares the achieved rate with the machine's measured bf16/fp32
convolution and matmul rates. Beside the library's loop it times *the obvious loop* for the same baseline
(two teacher forwards per generator step, one with the BN hooks and one for the KD loss; gradients kept for
the student's weights in generator steps and for the teacher and generator in student steps; fp32), on the
same models and seed, checks that both compute the same losses, and prints the ratio.

    OMP_NUM_THREADS=1 python benchmarks/step_cost.py             # one thread, as a sweep run
    python benchmarks/step_cost.py --repeats 3 --out /tmp/x.json
    # another teacher (its data, size and classes from its manifest), chosen fast paths, no obvious loop:
    python benchmarks/step_cost.py --teacher results/birds/teachers/warblers_resnet34w16.pt \
        --paths fp32+channels_last --no-obvious --out benchmarks/results/step_cost_warblers.json

Timings are medians over ``--repeats`` measurements of ``--steps`` steps each, after warm-up steps.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from dfkd_lib.data import spec_from_manifest
from dfkd_lib.config import DistillConfig
from dfkd_lib.engine import compile_networks, student_step
from dfkd_lib.synthesizers import GeneratorSynthesizer
from dfkd_lib.experiment import build_generator
from dfkd_lib.hooks import BNStatistics
from dfkd_lib.losses import kd_loss
from dfkd_lib.methods import build_method
from dfkd_lib.models import build_classifier
from dfkd_lib.teachers import default_teacher_path, load_teacher
from dfkd_lib.utils import provenance

VARIANTS = {  # the sweep's baseline and full method (results/dfkd_fgvc_ablation.json)
    "baseline": ({"beta": 0, "gamma": 0}, {"lam": 0}),
    "full": ({"beta": 10, "gamma": 8, "order": 3}, {"lam": 0.05}),
}


TEACHER = default_teacher_path("fashion-mnist")


def build(variant: str, config: DistillConfig, seed: int = 0):
    """Teacher, student, synthesiser, method and student optimiser of a sweep run, set up as ``distill`` does
    (teacher :data:`TEACHER`; data, image size and classes from its manifest)."""
    method_opts, gen_opts = VARIANTS[variant]
    teacher, manifest = load_teacher(TEACHER, "cpu")
    spec = spec_from_manifest(manifest)
    torch.manual_seed(seed)
    student = build_classifier("resnet18", spec.num_classes, spec.in_channels, 16, spec.image_size)
    generator = build_generator("attention", spec, nz=128, width=16, **gen_opts)
    teacher.eval().requires_grad_(False)
    student.train()
    if config.channels_last:
        teacher.to(memory_format=torch.channels_last), student.to(memory_format=torch.channels_last)
    synth = GeneratorSynthesizer(generator)
    synth.setup(config, torch.device("cpu"))
    method = build_method("dfkd-fgvc", **method_opts)
    method.setup(teacher, student, synth.sample(2))
    method.train()
    params = list(student.parameters()) + [p for p in method.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=config.lr_student, momentum=config.momentum, weight_decay=config.weight_decay)
    return teacher, student, synth, method, opt


# ------------------------------------------------------------------------------------------ the obvious loop
def obvious_generator_step(teacher, student, generator, g_opt, alpha, batch_size):
    """Baseline generator step written the obvious way: BN loss and KD loss from two teacher forwards,
    the student's weights left requiring grad (their gradients are computed and thrown away), fp32."""
    x = generator(generator.sample_z(batch_size))
    with BNStatistics(teacher) as bn:
        teacher(x)
        l_bn = bn.loss()
    t_logits = teacher(x)
    s_logits = student(x)
    kd = kd_loss(s_logits, t_logits, 1.0)
    loss = alpha * l_bn - kd
    g_opt.zero_grad()
    loss.backward()
    g_opt.step()
    student.zero_grad()
    return {"L_BN": l_bn.item(), "L_KD": kd.item()}


def obvious_student_step(teacher, student, generator, s_opt, batch_size):
    """Baseline student step written the obvious way: the batch sampled with autograd on, the teacher
    forward recording a graph nobody uses, fp32."""
    teacher.requires_grad_(True)
    x = generator(generator.sample_z(batch_size)).detach()
    t_logits = teacher(x).detach()
    kd = kd_loss(student(x), t_logits, 1.0)
    s_opt.zero_grad()
    kd.backward()
    s_opt.step()
    teacher.requires_grad_(False)
    return {"L_KD": kd.item()}


# ------------------------------------------------------------------------------------------ measurement
def timed(fn, steps: int, repeats: int, warmup: int = 2) -> float:
    """Median seconds per call of ``fn`` over ``repeats`` blocks of ``steps`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    per = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        per.append((time.perf_counter() - t0) / steps)
    return statistics.median(per)


def flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def machine_rates(repeats: int) -> dict[str, float]:
    """GFLOP/s of lone 3x3 convolutions at the student's widest shape and of a 1024^3 matmul, bf16 and fp32."""
    out = {}
    x = torch.randn(64, 32, 16, 16)
    w = torch.randn(32, 32, 3, 3)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    conv_flops = 2 * 64 * 32 * 16 * 16 * 32 * 9
    for dtype in (torch.float32, torch.bfloat16):
        xd, wd, ad, bd = x.to(dtype), w.to(dtype), a.to(dtype), b.to(dtype)
        s = timed(lambda: F.conv2d(xd, wd, padding=1), 10, repeats)
        out[f"conv_{str(dtype)[6:]}_gflops"] = conv_flops / s / 1e9
        s = timed(lambda: ad @ bd, 5, repeats)
        out[f"matmul_{str(dtype)[6:]}_gflops"] = 2 * 1024**3 / s / 1e9
    return out


def measure_ours(variant: str, config: DistillConfig, steps: int, repeats: int) -> dict:
    """Seconds per generator and student step (and their FLOPs); with ``config.compile`` the networks are compiled
    as a run compiles them, and ``compile_s`` is the time of the first two steps of each kind (compiling included,
    or reading torch's on-disk cache of an earlier compile)."""
    teacher, student, synth, method, opt = build(variant, config)
    g = lambda: synth.synthesis_step(teacher, student, method, config)  # noqa: E731
    s = lambda: student_step(teacher, student, synth, method, opt, config)  # noqa: E731
    out = {"generator_step_gflop": flops(g) / 1e9, "student_step_gflop": flops(s) / 1e9}  # eager: the same maths
    if config.compile:
        compile_networks(teacher, student, synth, method)
        t0 = time.perf_counter()
        for _ in range(2):
            g(), s()
        out["compile_s"] = time.perf_counter() - t0
    return {"generator_step_s": timed(g, steps, repeats), "student_step_s": timed(s, steps, repeats), **out}


def same_losses(config_fp32: DistillConfig) -> dict:
    """First generator and student step of the baseline, ours (fp32) vs obvious, from identical states."""
    teacher, student, synth, method, opt = build("baseline", config_fp32)
    teacher2, student2, gen2 = copy.deepcopy(teacher), copy.deepcopy(student), copy.deepcopy(synth.generator)
    g_opt2 = torch.optim.Adam(gen2.parameters(), lr=config_fp32.lr_generator, betas=config_fp32.betas)
    s_opt2 = torch.optim.SGD(student2.parameters(), lr=config_fp32.lr_student, momentum=config_fp32.momentum,
                             weight_decay=config_fp32.weight_decay)
    torch.manual_seed(123)
    ours_g = synth.synthesis_step(teacher, student, method, config_fp32)
    torch.manual_seed(123)
    obv_g = obvious_generator_step(teacher2, student2, gen2, g_opt2, method.alpha, config_fp32.batch_size)
    torch.manual_seed(321)
    ours_s = student_step(teacher, student, synth, method, opt, config_fp32)
    gen2.eval()  # the library samples student batches from the generator in eval mode
    torch.manual_seed(321)
    obv_s = obvious_student_step(teacher2, student2, gen2, s_opt2, config_fp32.batch_size)
    pairs = {"G/L_BN": (ours_g["L_BN"], obv_g["L_BN"]), "G/L_KD": (ours_g["L_KD"], obv_g["L_KD"]),
             "S/L_KD": (ours_s["L_KD"], obv_s["L_KD"])}
    return {k: {"ours": a, "obvious": b, "rel_diff": abs(a - b) / max(abs(b), 1e-12)} for k, (a, b) in pairs.items()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=4, help="steps per timed block (default 4)")
    ap.add_argument("--repeats", type=int, default=3, help="timed blocks; the median is reported (default 3)")
    ap.add_argument("--out", default="benchmarks/results/step_cost.json")
    ap.add_argument("--teacher", default=None, help="teacher checkpoint (default: the shipped Fashion-MNIST one)")
    ap.add_argument("--paths", default=None, help="only these fast paths, comma-separated (e.g. fp32+channels_last)")
    ap.add_argument("--no-obvious", action="store_true", help="skip the obvious loop and the loss comparison")
    args = ap.parse_args(argv)
    global TEACHER
    TEACHER = args.teacher or TEACHER
    base = DistillConfig(batch_size=64)
    paths = {"fp32": base, "fp32+channels_last": DistillConfig(batch_size=64, channels_last=True),
             "bf16": DistillConfig(batch_size=64, amp="bf16"),
             "bf16+channels_last": DistillConfig(batch_size=64, amp="bf16", channels_last=True),
             "fp32+channels_last+compile": DistillConfig(batch_size=64, channels_last=True, compile=True)}
    if args.paths:
        unknown = set(args.paths.split(",")) - set(paths)
        if unknown:
            ap.error(f"unknown paths {', '.join(sorted(unknown))}; known: {', '.join(paths)}")
        paths = {k: v for k, v in paths.items() if k in args.paths.split(",")}
    report = {"provenance": provenance(), "teacher": str(TEACHER), "threads": torch.get_num_threads(),
              "machine": machine_rates(args.repeats), "ours": {}}
    if not args.no_obvious:
        report["losses_equal"] = same_losses(base)
    for variant in VARIANTS:
        for name, cfg in paths.items():
            report["ours"][f"{variant}/{name}"] = measure_ours(variant, cfg, args.steps, args.repeats)
    if args.no_obvious:
        return _print_and_save(report, args.out)
    teacher, student, synth, method, _ = build("baseline", base)
    g_opt = torch.optim.Adam(synth.generator.parameters(), lr=base.lr_generator, betas=base.betas)
    s_opt = torch.optim.SGD(student.parameters(), lr=base.lr_student, momentum=base.momentum)
    synth.generator.eval()
    obv = {"generator_step_s": timed(lambda: obvious_generator_step(teacher, student, synth.generator, g_opt,
                                                                     method.alpha, 64), args.steps, args.repeats),
           "student_step_s": timed(lambda: obvious_student_step(teacher, student, synth.generator, s_opt, 64),
                                   args.steps, args.repeats)}
    report["obvious"] = obv

    def iteration(r, t, k):
        return t * r["generator_step_s"] + k * r["student_step_s"]

    schedules = {"t=20,k=15 (paper)": (20, 15), "t=5,k=10 (book)": (5, 10), "t=1,k=5 (DFAD)": (1, 5)}
    report["schedules"] = {}
    _print_steps(report)
    print("losses, ours (fp32) vs obvious loop: "
          + ", ".join(f"{k} {v['ours']:.5f} vs {v['obvious']:.5f}" for k, v in report["losses_equal"].items()))
    print(f"{'baseline/obvious loop (fp32)':34s} {obv['generator_step_s']:9.3f} {obv['student_step_s']:9.3f}")
    print(f"\n{'schedule, baseline':22s} {'obvious s/iter':>14s} {'ours fp32':>10s} {'ours best':>10s} {'ratio':>6s}")
    best = min((f"baseline/{p}" for p in paths),
               key=lambda n: iteration(report["ours"][n], 20, 15))
    for sname, (t, k) in schedules.items():
        o, f32, b = iteration(obv, t, k), iteration(report["ours"]["baseline/fp32"], t, k), \
            iteration(report["ours"][best], t, k)
        report["schedules"][sname] = {"obvious_s": o, "ours_fp32_s": f32, "ours_best_s": b, "best_path": best,
                                      "ratio_best_to_obvious": b / o, "ratio_fp32_to_obvious": f32 / o}
        print(f"{sname:22s} {o:14.2f} {f32:10.2f} {b:10.2f} {b / o:6.2f}")
    print(f"(ours best = {best}; ratio = ours best / obvious)")
    return _save(report, args.out)


def _print_steps(report: dict) -> None:
    print(f"teacher: {report['teacher']}")
    print(f"CPU: {report['provenance']['cpu']}; bf16 in hardware: {report['provenance']['cpu_bf16_native']}")
    print(f"threads: {report['threads']}; machine GFLOP/s: "
          + ", ".join(f"{k[:-7]} {v:.0f}" for k, v in report["machine"].items()))
    print(f"\n{'path':34s} {'G step s':>9s} {'S step s':>9s} {'G GFLOP':>8s} {'S GFLOP':>8s} {'G GF/s':>7s} "
          f"{'S GF/s':>7s}")
    for name, r in report["ours"].items():
        print(f"{name:34s} {r['generator_step_s']:9.3f} {r['student_step_s']:9.3f} {r['generator_step_gflop']:8.2f} "
              f"{r['student_step_gflop']:8.2f} {r['generator_step_gflop'] / r['generator_step_s']:7.1f} "
              f"{r['student_step_gflop'] / r['student_step_s']:7.1f}")


def _print_and_save(report: dict, out: str) -> dict:
    _print_steps(report)
    for variant in VARIANTS:
        runs = [n for n in report["ours"] if n.startswith(variant + "/")]
        for n in runs:
            r = report["ours"][n]
            print(f"{n}: book schedule (200 iterations of t=5, k=10) ~ "
                  f"{200 * (5 * r['generator_step_s'] + 10 * r['student_step_s']) / 60:.0f} min"
                  + (f" + {r['compile_s']:.0f} s for the first steps (compiling)" if "compile_s" in r else ""))
    return _save(report, out)


def _save(report: dict, out: str) -> dict:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
