"""Real command-line runs killed with SIGKILL mid-epoch and rerun end exactly where uninterrupted runs end: the
same histories and the same final weights, bit for bit on CPU, for `distill`, `train-teacher` and `sweep`; a
killed run never leaves a result file behind, and a resumed sweep counts each run once."""
import json
import os
import signal
import subprocess
import sys
import time

import torch

from conftest import needs_fmnist

ENV = dict(os.environ, OMP_NUM_THREADS="1", DFKD_FAST="0")
SMALL = ["--student", "resnet8", "--student-width", "4", "--generator-width", "4", "--nz", "8"]


def _kill_once(cmd, first_state, cwd=None):
    """Start ``cmd``, wait until ``first_state`` (its first checkpoint) exists, let it run into the next epoch,
    then SIGKILL it."""
    proc = subprocess.Popen(cmd, env=ENV, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not first_state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _finish(cmd, cwd=None):
    subprocess.run(cmd, env=ENV, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=600)


def _strip(history):
    return [{k: v for k, v in e.items() if k != "wall_s"} for e in history]


def _same_weights(a, b):
    assert a.keys() == b.keys()
    return all(torch.equal(a[k], b[k]) for k in a)


@needs_fmnist
def test_distill_killed_mid_epoch_resumes_to_the_same_student(tmp_path):
    args = [sys.executable, "-m", "dfkd_lib", "distill", *SMALL, "--epochs", "3", "--iterations", "3", "--t", "1",
            "--k", "2", "--batch-size", "8", "--save-weights"]
    runs = {}
    for name, kill in (("straight", False), ("killed", True)):
        out, ckpt = tmp_path / f"{name}.json", tmp_path / f"{name}.state.pt"
        cmd = args + ["--out", str(out), "--checkpoint", str(ckpt)]
        if kill:
            _kill_once(cmd, ckpt)
            assert not out.exists()  # no result file for a killed run
        _finish(cmd)
        runs[name] = json.loads(out.read_text()), torch.load(tmp_path / f"{name}.weights.pt", weights_only=True)
    (straight, w1), (resumed, w2) = runs["straight"], runs["killed"]
    assert _strip(resumed["history"]) == _strip(straight["history"])
    assert straight["resumed_from_epoch"] is None and resumed["resumed_from_epoch"] in (1, 2)
    assert _same_weights(w1["student"], w2["student"]) and _same_weights(w1["generator"], w2["generator"])


@needs_fmnist
def test_train_teacher_killed_mid_epoch_resumes_to_the_same_teacher(tmp_path):
    args = [sys.executable, "-m", "dfkd_lib", "train-teacher", "--arch", "resnet8", "--width", "4", "--epochs", "3",
            "--batch-size", "32", "--train-limit", "512", "--amp", "none"]
    runs = {}
    for name, kill in (("straight", False), ("killed", True)):
        out = tmp_path / f"{name}.pt"
        cmd = args + ["--out", str(out)]
        if kill:
            _kill_once(cmd, tmp_path / f"{name}.pt.state.pt")
            assert not out.exists()
        _finish(cmd)
        manifest = json.loads((tmp_path / f"{name}.json").read_text())
        runs[name] = manifest, torch.load(out, weights_only=True)
        assert not (tmp_path / f"{name}.pt.state.pt").exists()  # the training state goes once the teacher is saved
    (straight, w1), (resumed, w2) = runs["straight"], runs["killed"]
    assert _strip(resumed["history"]) == _strip(straight["history"])
    assert straight["resumed_from_epoch"] is None and resumed["resumed_from_epoch"] in (1, 2)
    assert _same_weights(w1, w2)


@needs_fmnist
def test_sweep_killed_mid_run_resumes_and_counts_each_run_once(tmp_path):
    from dfkd_lib.sweep import load_results

    spec = {"name": "tiny", "datasets": ["fashion-mnist"], "seeds": [0, 1],
            "common": {"student": "resnet8", "student_width": 4, "generator_width": 4, "nz": 8, "test_limit": 500,
                       "save_weights": True,
                       "config": {"epochs": 3, "iterations_per_epoch": 3, "generator_steps": 1, "student_steps": 2,
                                  "batch_size": 8}},
            "variants": {"baseline": {}}}
    results = {}
    for name, kill in (("straight", False), ("killed", True)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "tiny.json").write_text(json.dumps(spec))
        cmd = [sys.executable, "-m", "dfkd_lib", "sweep", "tiny.json"]
        if kill:
            _kill_once(cmd, folder / "tiny" / "baseline__fashion-mnist__s0.state.pt", cwd=folder)
            assert not (folder / "tiny" / "baseline__fashion-mnist__s0.json").exists()
        _finish(cmd, cwd=folder)
        # every run once, no half-written or left-over files
        assert sorted(p.name for p in (folder / "tiny").iterdir()) == [
            f"baseline__fashion-mnist__s{s}.{ext}" for s in (0, 1) for ext in ("json", "weights.pt")]
        assert len(load_results(folder / "tiny.json", fast=False)) == 2
        results[name] = {s: (json.loads((folder / "tiny" / f"baseline__fashion-mnist__s{s}.json").read_text()),
                             torch.load(folder / "tiny" / f"baseline__fashion-mnist__s{s}.weights.pt",
                                        weights_only=True)) for s in (0, 1)}
    for s in (0, 1):
        (straight, w1), (resumed, w2) = results["straight"][s], results["killed"][s]
        assert _strip(resumed["history"]) == _strip(straight["history"])
        assert _same_weights(w1["student"], w2["student"]) and _same_weights(w1["generator"], w2["generator"])
    assert results["killed"][0][0]["resumed_from_epoch"] in (1, 2)
