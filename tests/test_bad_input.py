"""Bad input, table-driven: each case is what a user might get wrong and the message it must give.

Command-line cases must exit with status 2 and print exactly one line, ``python -m dfkd_lib CMD: error: ...``;
API cases must raise the named exception with the named message, before any work is done.
"""
import gzip
import json
import re
import struct

import pytest
import torch
from PIL import Image

from dfkd_lib.checkpoint import CheckpointError, save_model
from dfkd_lib.cli import main
from dfkd_lib.config import DistillConfig
from dfkd_lib.data import CorruptImageError, DatasetNotFoundError, dataset_spec, get_dataset, resolve_spec
from dfkd_lib.experiment import build_generator, load_run_models
from dfkd_lib.hooks import NoBatchNormError
from dfkd_lib.losses import mhad_loss, sfcl_loss
from dfkd_lib.methods import build_method
from dfkd_lib.models import build_classifier
from dfkd_lib.sweep import load_spec, run_sweep
from dfkd_lib.teachers import load_teacher


@pytest.fixture
def env(tmp_path):
    """A folder of photos, a tiny teacher on it, a truncated IDX set and assorted bad files."""
    for split in ("train", "test"):
        for c, colour in (("A_Warbler", 40), ("B_Warbler", 200)):
            (tmp_path / "photos" / split / c).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (20, 20), (colour, i * 50, 90)).save(tmp_path / "photos" / split / c / f"{i}.jpg")
    teacher = tmp_path / "t.pt"
    save_model(build_classifier("resnet8", 2, 3, 4), teacher,
               {"architecture": "resnet8", "width": 4, "num_classes": 2, "in_channels": 3, "image_size": 32,
                "dataset": "folder", "test_accuracy": 0.5,
                "data": {**dataset_spec("folder").to_dict(), "num_classes": 2, "image_size": 32,
                         "class_names": ["A_Warbler", "B_Warbler"], "root": str(tmp_path / "photos")}})
    fm = tmp_path / "fm"
    fm.mkdir()
    for prefix in ("train", "t10k"):
        with gzip.open(fm / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(bytes([0, 0, 8, 3]) + struct.pack(">III", 5, 28, 28) + bytes(100))  # header says 5 images
        with gzip.open(fm / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 5) + bytes(5))
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pt")  # a whole module: not weights-only
    return tmp_path


CLI = [  # (argv with {tmp} for the fixture's folder, message regex)
    (["distill", "--epochs", "-1"], r"epochs, iterations_per_epoch and batch_size must be >= 1"),
    (["distill", "--batch-size", "0"], r"must be >= 1, got 10, 20, 0"),
    (["distill", "--option", "beta=abc"], r"method 'baseline' has no option 'beta'.*'beta' is an option of dafl, dfkd-fgvc, dfq, zskt"),
    (["distill", "--method", "dfkd-fgvc", "--option", "beta=abc"], r"option 'beta' of 'dfkd-fgvc' is a number"),
    (["distill", "--option", "alpha"], r"option 'alpha' must look like name=value"),
    (["distill", "--dataset", "imagenet-42"], r"unknown dataset 'imagenet-42'; known datasets"),
    (["distill", "--method", "dfkd-xl"], r"unknown method 'dfkd-xl'; known methods"),
    (["distill", "--student", "resnet1000"], r"unknown model 'resnet1000'; known models"),
    (["distill", "--generator", "vae"], r"unknown generator 'vae'; known generators"),
    (["distill", "--dataset", "folder", "--teacher", "{tmp}/t.pt", "--image-size", "64"],
     r"takes 32 px images, not 64 px"),
    (["distill", "--dataset", "folder", "--teacher", "{tmp}/t.pt", "--root", "{tmp}/nowhere"], r"does not exist"),
    (["distill", "--dataset", "fashion-mnist", "--teacher", "{tmp}/t.pt"], r"was trained on 'folder', not 'fashion-mnist'"),
    (["distill", "--dataset", "folder", "--teacher", "{tmp}/missing.pt"], r"no teacher checkpoint at .*missing.pt"),
    (["train-teacher", "--dataset", "fashion-mnist", "--root", "{tmp}/nonexistent"], r"nonexistent does not exist"),
    (["train-teacher", "--dataset", "folder", "--root", "{tmp}/photos", "--classes", "*_Gull", "--out", "{tmp}/x.pt"],
     r"class '\*_Gull' matches none of the 2 classes"),
    (["train-teacher", "--dataset", "folder", "--root", "{tmp}/photos", "--image-size", "40", "--out", "{tmp}/x.pt"],
     r"image_size must be a multiple of 16"),
    (["train-teacher", "--dataset", "folder", "--root", "{tmp}/photos"], r"--out is required for folder"),
    (["train-teacher", "--dataset", "folder", "--root", "{tmp}/photos", "--pretrained", "{tmp}/w.pth",
      "--out", "{tmp}/x.pt"], r"use --arch tv_resnet18 or tv_resnet34"),
    (["sweep", "{tmp}/spec.json"], r"unknown key\(s\) datsets"),
]


@pytest.mark.parametrize("argv,message", CLI, ids=[" ".join(a)[:60] for a, _ in CLI])
def test_command_line_says_what_is_wrong_in_one_line(env, argv, message, capsys, monkeypatch):
    monkeypatch.setenv("DFKD_FAST", "1")
    (env / "spec.json").write_text(json.dumps({"name": "x", "datasets": [], "datsets": [], "seeds": [0],
                                               "variants": {}}))
    argv = [a.replace("{tmp}", str(env)) for a in argv]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"python -m dfkd_lib {argv[0]}: error: ") and re.search(message, err), err
    assert err.strip().count("\n") == 0, err  # one line


def _corrupt_folder(env):
    (env / "photos" / "train" / "A_Warbler" / "0.jpg").write_bytes(b"not a jpeg")
    return resolve_spec("folder", env / "photos", image_size=32)


def _other_arch(env):
    state = build_classifier("resnet18", 2, 3, 4).state_dict()
    torch.save(state, env / "t.pt")
    manifest = json.loads((env / "t.json").read_text())
    manifest.pop("sha256")  # an honest manifest, a file of another architecture
    (env / "t.json").write_text(json.dumps(manifest))
    return load_teacher(env / "t.pt")


def _tampered(env):
    t = torch.load(env / "t.pt", weights_only=True)
    t["fc.bias"] += 1
    torch.save(t, env / "t.pt")
    return load_teacher(env / "t.pt")


def _bad_weights_sha(env):
    res = env / "r.json"
    (env / "r.weights.pt").write_bytes(b"x")
    res.write_text(json.dumps({"weights": {"file": "r.weights.pt", "sha256": "0" * 64}, "dataset": "fashion-mnist"}))
    return load_run_models(res)


def _bn_free_teacher(env):
    from dfkd_lib.config import DistillConfig as C
    from dfkd_lib.engine import distill
    from dfkd_lib.synthesizers import GeneratorSynthesizer

    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 2))
    gen = build_generator("dcgan", dataset_spec("folder"), nz=4, width=2)
    return distill(teacher, build_classifier("resnet8", 2, 3, 4), GeneratorSynthesizer(gen), build_method("baseline"),
                   [], C(epochs=1, iterations_per_epoch=1, batch_size=2))


API = [  # (name, callable of the fixture's folder, exception, message regex)
    ("R < 1", lambda env: build_method("dfkd-fgvc", order=0), ValueError, r"order R must be >= 1, got 0"),
    ("tau <= 0", lambda env: build_method("dfkd-fgvc", tau=0), ValueError, r"tau must be > 0"),
    ("tau <= 0 in the loss", lambda env: sfcl_loss(torch.randn(4, 3), torch.randn(4, 3), tau=-1), ValueError,
     r"tau must be > 0"),
    ("negative weights", lambda env: build_method("dfkd-fgvc", beta=-1), ValueError, r"beta and gamma must be >= 0"),
    ("negative alpha", lambda env: build_method("baseline", alpha=-0.1), ValueError, r"alpha must be >= 0"),
    ("MHAD channel mismatch", lambda env: mhad_loss([torch.randn(2, 4, 4, 4)], [torch.randn(2, 8, 4, 4)],
                                                    [torch.nn.Identity()]),
     ValueError, r"student has 4 channels but the teacher 8"),
    ("class-count mismatch", lambda env: __import__("dfkd_lib.engine", fromlist=["check_pair"]).check_pair(
        build_classifier("resnet8", 2, 1, 4), build_classifier("resnet8", 3, 1, 4), build_method("baseline"),
        torch.randn(2, 1, 32, 32)), ValueError, r"teacher predicts 2 classes but the student 3"),
    ("input channel mismatch", lambda env: build_classifier("resnet8", 2, 1, 4)(torch.randn(2, 3, 32, 32)),
     ValueError, r"expected input \(N, 1, H, W\)"),
    ("generator size", lambda env: build_generator("dcgan", dataset_spec("folder").__class__(
        "folder", 2, 3, 40, (0.5,) * 3, (0.5,) * 3)), ValueError, r"image_size must be a multiple of 16"),
    ("BN-free teacher", _bn_free_teacher, NoBatchNormError, r"uses the teacher's BN statistics"),
    ("empty class list", lambda env: resolve_spec("folder", env / "photos", classes=""), ValueError,
     r"class '' matches none"),
    ("unknown class", lambda env: get_dataset("folder", root=env / "photos", classes="Robin"), ValueError,
     r"class 'Robin' matches none of the 2 classes"),
    ("truncated IDX", lambda env: get_dataset("fashion-mnist", root=env / "fm"), ValueError,
     r"header says \(5, 28, 28\) but holds 100 bytes"),
    ("corrupt image", _corrupt_folder, CorruptImageError, r"cannot read image .*A_Warbler/0.jpg"),
    ("missing root", lambda env: get_dataset("folder", root=env / "nowhere"), DatasetNotFoundError, r"does not exist"),
    ("checkpoint of another architecture", _other_arch, CheckpointError, r"saved from another architecture"),
    ("sha256 mismatch", _tampered, CheckpointError, r"does not match the sha256 in its manifest"),
    ("weights sha256 mismatch", _bad_weights_sha, ValueError, r"does not match the sha256 recorded"),
    ("pickled checkpoint", lambda env: __import__("dfkd_lib.checkpoint", fromlist=["safe_load"]).safe_load(
        env / "pickled.pt"), CheckpointError, r"not a weights-only checkpoint .* refused"),
    ("bad schedule", lambda env: DistillConfig(pool_fraction=2), ValueError, r"pool_fraction in \[0, 1\]"),
    ("unknown run option in a spec", lambda env: load_spec(_spec(env, {"variants": {"v": {"studnet": "x"}}})),
     ValueError, r"variant v: unknown option\(s\) studnet"),
    ("unknown config field in a spec", lambda env: load_spec(_spec(env, {"common": {"config": {"epoch": 2}}})),
     ValueError, r"common: unknown config field\(s\) epoch"),
    ("unknown sweep part", lambda env: run_sweep(_spec(env, {}), only="R7"), ValueError, r"has no variant R7"),
]


def _spec(env, extra):
    spec = {"name": "x", "datasets": ["fashion-mnist"], "seeds": [0], "variants": {"v": {}}, **extra}
    (env / "s.json").write_text(json.dumps(spec))
    return env / "s.json"


@pytest.mark.parametrize("name,call,exc,message", API, ids=[a[0] for a in API])
def test_api_raises_a_clear_error(env, name, call, exc, message):
    with pytest.raises(exc, match=message):
        call(env)


def test_at_least_25_bad_inputs_are_covered():
    assert len(CLI) + len(API) >= 25
