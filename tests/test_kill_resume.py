"""A real `python -m dfkd_lib distill` killed with SIGKILL mid-epoch and rerun ends exactly where an uninterrupted
run ends: the same history and the same final student, bit for bit on CPU."""
import json
import os
import signal
import subprocess
import sys
import time

import torch

from conftest import needs_fmnist

ARGS = ["-m", "dfkd_lib", "distill", "--student", "resnet8", "--student-width", "4", "--generator-width", "4",
        "--nz", "8", "--epochs", "3", "--iterations", "3", "--t", "1", "--k", "2", "--batch-size", "8",
        "--save-weights"]


def _run(tmp, name, kill_after_checkpoint=False):
    out, ckpt = tmp / f"{name}.json", tmp / f"{name}.state.pt"
    cmd = [sys.executable, *ARGS, "--out", str(out), "--checkpoint", str(ckpt)]
    env = dict(os.environ, OMP_NUM_THREADS="1", DFKD_FAST="0")
    if kill_after_checkpoint:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # into the next epoch
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not out.exists()  # no result file for a killed run
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    res = json.loads(out.read_text())
    weights = torch.load(tmp / f"{name}.weights.pt", weights_only=True)
    return res, weights


@needs_fmnist
def test_distill_killed_mid_epoch_resumes_to_the_same_student(tmp_path):
    straight, w1 = _run(tmp_path, "straight")
    resumed, w2 = _run(tmp_path, "killed", kill_after_checkpoint=True)
    strip = lambda h: [{k: v for k, v in e.items() if k != "wall_s"} for e in h]  # noqa: E731
    assert strip(resumed["history"]) == strip(straight["history"])
    assert straight["resumed_from_epoch"] is None and resumed["resumed_from_epoch"] in (1, 2)
    for part in ("student", "generator"):
        assert w1[part].keys() == w2[part].keys()
        assert all(torch.equal(w1[part][k], w2[part][k]) for k in w1[part]), part
