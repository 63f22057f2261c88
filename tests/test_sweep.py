import functools
import json

import pytest

import pandas as pd

from dfkd_lib.experiment import run_distillation
from dfkd_lib.sweep import (expected_fields, is_current, load_histories, load_results, load_run, load_spec,
                            pending_runs, plan_summary, planned_runs, result_path, run_states, run_sweep, sweep_plan,
                            sweep_provenance, sweep_status)


def test_planned_runs_merge_common_and_variant_options(tmp_path):
    spec = {"name": "s", "datasets": ["fashion-mnist", "fashion-mnist-upper"], "seeds": [0, 1],
            "common": {"student": "resnet18", "method_options": {"alpha": 0.3}, "config": {"epochs": 3}},
            "variants": {"a": {"method": "baseline"},
                         "b": {"method": "dfkd-fgvc", "method_options": {"beta": 10}, "config": {"epochs": 4}}}}
    p = tmp_path / "s.json"
    p.write_text(json.dumps(spec))
    runs = planned_runs(p)
    assert len(runs) == 2 * 2 * 2
    b = [r for r in runs if r["variant"] == "b" and r["seed"] == 1 and r["dataset"] == "fashion-mnist"][0]
    assert b["kwargs"]["method_options"] == {"alpha": 0.3, "beta": 10}
    assert b["config"] == {"epochs": 4, "seed": 1}
    assert b["out"] == result_path(p, "b", "fashion-mnist", 1)
    assert result_path(p, "b", "fashion-mnist", 1, fast=False) == tmp_path / "s" / "b__fashion-mnist__s1.json"
    assert result_path(p, "b", "fashion-mnist", 1, fast=True).name == "b__fashion-mnist__s1.fast.json"


def test_spec_must_name_its_parts(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"name": "x", "seeds": [0]}))
    with pytest.raises(ValueError, match="datasets"):
        load_spec(p)


SPEC = {"name": "s", "datasets": ["fashion-mnist", "fashion-mnist-upper"], "seeds": [0, 1],
        "common": {"student": "resnet18", "student_width": 8, "method": "dfkd-fgvc", "generator": "attention",
                   "generator_width": 8, "config": {"epochs": 2, "iterations_per_epoch": 3}},
        "variants": {"baseline": {"method_options": {"beta": 0, "gamma": 0}},
                     "full": {"method_options": {"beta": 10, "gamma": 8}, "generator_options": {"lam": 0.05}}}}


def _result_of(run, **change):
    """A result file as run_distillation writes it for ``run``, with some fields changed."""
    res = {**expected_fields(run), "best_accuracy": 0.5, "last_accuracy": 0.4, "teacher_accuracy": 0.9,
           "wall_s": 60, "provenance": {"fast_mode": False}}
    for k, v in change.items():
        res[k] = {**res[k], **v}
    return res


def _with_resolved(res, part, **values):
    res = json.loads(json.dumps(res))
    res["resolved"][part].update(values)
    return res


def test_runs_go_seed_by_seed_and_stale_results_are_recognised(tmp_path, monkeypatch):
    monkeypatch.delenv("DFKD_FAST", raising=False)
    p = tmp_path / "s.json"
    p.write_text(json.dumps(SPEC))
    runs = planned_runs(p)
    assert [(r["seed"], r["variant"]) for r in runs[:4]] == [(0, "baseline"), (0, "full")] * 2
    run = runs[1]
    assert is_current(run, _result_of(run))
    assert not is_current(run, _result_of(run, config={"epochs": 1}))  # another budget
    assert not is_current(run, _with_resolved(_result_of(run), "method", gamma=0))
    assert not is_current(run, _with_resolved(_result_of(run), "generator", lam=0.0))
    # load_results keeps the current file and leaves the stale one out
    run["out"].parent.mkdir(parents=True)
    run["out"].write_text(json.dumps(_result_of(run)))
    runs[0]["out"].write_text(json.dumps(_result_of(runs[0], config={"epochs": 1})))
    df = load_results(p)
    assert list(df["variant"]) == ["full"] and df["best"].iloc[0] == 50
    # run_states: the one reading of the files; pending_runs: what is missing or stale, and which is stale
    states = list(run_states(p))
    assert [(r is not None, current) for _, r, current in states[:3]] == [(True, False), (True, True), (False, False)]
    pending = {(run["variant"], run["seed"], run["dataset"]): stale for run, stale, _ in pending_runs(p, seeds="0")}
    assert pending == {("baseline", 0, "fashion-mnist"): True, ("baseline", 0, "fashion-mnist-upper"): False,
                       ("full", 0, "fashion-mnist-upper"): False}


def test_a_file_older_than_a_config_field_counts_as_its_default(tmp_path, monkeypatch):
    monkeypatch.delenv("DFKD_FAST", raising=False)
    p = tmp_path / "s.json"
    p.write_text(json.dumps(SPEC))
    run = planned_runs(p)[0]
    old = _result_of(run)
    del old["config"]["pool_size"], old["config"]["channels_last"]  # written before these fields existed
    assert is_current(run, old)
    changed = json.loads(p.read_text())
    changed["common"]["config"]["pool_size"] = 640  # asking for a bank: the old file is stale
    p.write_text(json.dumps(changed))
    assert not is_current(planned_runs(p)[0], old)


def test_results_record_every_default_and_a_changed_default_makes_them_stale(tmp_path, monkeypatch):
    from dfkd_lib.methods import METHODS
    from dfkd_lib.methods.dfkd_fgvc import DFKDFGVC

    monkeypatch.delenv("DFKD_FAST", raising=False)
    p = tmp_path / "s.json"
    p.write_text(json.dumps(SPEC))
    run = planned_runs(p)[1]
    res = _result_of(run)
    # the spec leaves tau, alpha and the generator's SAM reduction out: the file records what they were
    assert res["resolved"]["method"]["tau"] == 0.07 and res["resolved"]["method"]["alpha"] == 0.3
    assert res["resolved"]["generator"]["reduction"] == 8 and res["resolved"]["synthesizer"] is None
    assert is_current(run, res)
    legacy = {k: v for k, v in res.items() if k != "resolved"}
    assert not is_current(run, legacy)  # a file that does not say what it resolved to is not trusted
    monkeypatch.setitem(METHODS, "dfkd-fgvc", functools.partial(DFKDFGVC, tau=0.5))  # a new default
    assert not is_current(run, res)
    assert expected_fields(run)["resolved"]["method"]["tau"] == 0.5


def test_execution_fields_do_not_make_a_result_stale(tmp_path, monkeypatch):
    monkeypatch.delenv("DFKD_FAST", raising=False)
    p = tmp_path / "s.json"
    p.write_text(json.dumps(SPEC))
    run = planned_runs(p)[0]
    fp32 = _result_of(run, config={"amp": None, "channels_last": not run["config"].get("channels_last", False),
                                   "compile": True})
    assert is_current(run, fp32)  # the same method and schedule in other arithmetic / memory format
    run["out"].parent.mkdir(parents=True)
    run["out"].write_text(json.dumps(fp32))
    assert list(load_results(p)["amp"]) == ["fp32"]  # what each run used stays visible in the table
    with pytest.raises(ValueError, match="execution options are amp, channels_last, compile; got epochs"):
        run_sweep(p, execution={"epochs": 1})


def test_run_sweep_names_unknown_parts(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps(SPEC))
    with pytest.raises(ValueError, match="no variant R7"):
        run_sweep(p, only="baseline,R7")
    with pytest.raises(ValueError, match="no dataset cub200"):
        run_sweep(p, datasets=["cub200"])
    with pytest.raises(ValueError, match="no seed 7"):
        run_sweep(p, seeds="0,7")


def test_real_results_can_be_read_in_fast_mode(tmp_path, monkeypatch):
    p = tmp_path / "s.json"
    p.write_text(json.dumps(SPEC))
    monkeypatch.delenv("DFKD_FAST", raising=False)
    run = planned_runs(p)[0]
    run["out"].parent.mkdir(parents=True)
    run["out"].write_text(json.dumps(_result_of(run)))
    monkeypatch.setenv("DFKD_FAST", "1")
    assert load_results(p).empty  # fast mode reads its own .fast.json files by default
    assert len(load_results(p, fast=False)) == 1
    fast_run = planned_runs(p)[0]  # a fast-mode result: its shrunk schedule is not compared
    fast_run["out"].write_text(json.dumps(_result_of(fast_run, config={"epochs": 1},
                                                     provenance={"fast_mode": True})))
    assert len(load_results(p)) == 1


def test_load_run_returns_one_current_result_or_says_how_to_make_it(tmp_path, monkeypatch):
    p = tmp_path / "s.json"
    p.write_text(json.dumps(SPEC))
    monkeypatch.setenv("DFKD_FAST", "1")  # load_run reads the real result in fast mode too
    run = planned_runs(p, fast=False)[1]
    with pytest.raises(FileNotFoundError, match="sweep .* --only full --dataset fashion-mnist --seed 0"):
        load_run(p, "full", "fashion-mnist", 0)
    run["out"].parent.mkdir(parents=True)
    run["out"].write_text(json.dumps(_result_of(run, config={"epochs": 1})))
    with pytest.raises(FileNotFoundError, match="missing or stale"):
        load_run(p, "full", "fashion-mnist", 0)
    run["out"].write_text(json.dumps(_result_of(run)))
    result, path = load_run(p, "full", "fashion-mnist", 0)
    assert path == run["out"] and result["best_accuracy"] == 0.5
    with pytest.raises(KeyError, match="plans no run 'full' on 'cub200'"):
        load_run(p, "full", "cub200", 0)


def test_library_modified_sees_an_uncommitted_change(tmp_path, monkeypatch):
    import subprocess

    from dfkd_lib import utils

    if subprocess.run(["git", "--version"], capture_output=True).returncode != 0:
        pytest.skip("git is not installed")
    (tmp_path / "dfkd_lib").mkdir()
    (tmp_path / "dfkd_lib" / "m.py").write_text("x = 1\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "c"], check=True)
    monkeypatch.setattr(utils, "project_root", lambda: tmp_path)
    assert utils.library_modified() is False
    (tmp_path / "dfkd_lib" / "m.py").write_text("x = 2\n")
    assert utils.library_modified() is True
    (tmp_path / "notes.txt").write_text("outside the library\n")
    subprocess.run(git + ["add", "notes.txt"], check=True)
    (tmp_path / "dfkd_lib" / "m.py").write_text("x = 1\n")
    assert utils.library_modified() is False


def test_run_sweep_runs_only_the_picked_missing_runs(tmp_path, monkeypatch):
    from dfkd_lib import experiment

    monkeypatch.delenv("DFKD_FAST", raising=False)
    p = tmp_path / "s.json"
    p.write_text(json.dumps(SPEC))
    done_run = [r for r in planned_runs(p) if (r["variant"], r["dataset"], r["seed"]) == ("full", "fashion-mnist", 0)][0]
    done_run["out"].parent.mkdir(parents=True)
    done_run["out"].write_text(json.dumps(_result_of(done_run)))
    calls = []

    @functools.wraps(experiment.run_distillation)  # keeps the signature, whose defaults the sweep reads
    def fake(dataset, config, out, checkpoint, **kw):
        calls.append((out.name, checkpoint.name))

    monkeypatch.setattr(experiment, "run_distillation", fake)
    run_sweep(p, only="full", datasets="fashion-mnist,fashion-mnist-upper", seeds=[0], progress=False)
    assert calls == [("full__fashion-mnist-upper__s0.json", "full__fashion-mnist-upper__s0.state.pt")]
    # the command line's execution options reach the run's config
    real = fake.__wrapped__
    monkeypatch.setattr(experiment, "run_distillation",
                        functools.wraps(real)(lambda config, **kw: calls.append(config)))
    from dfkd_lib.cli import main
    assert main(["sweep", str(p), "--only", "full", "--seed", "1", "--dataset", "fashion-mnist", "--amp", "none",
                 "--compile"]) == 0
    assert calls[-1].compile and calls[-1].amp is None


def test_sweep_status_counts_result_files(tmp_path):
    spec = {"name": "s", "datasets": ["fashion-mnist", "fashion-mnist-upper"], "seeds": [0, 1],
            "variants": {"baseline": {}, "full": {}}}
    p = tmp_path / "s.json"
    p.write_text(json.dumps(spec))
    run = [r for r in planned_runs(p) if (r["variant"], r["dataset"], r["seed"]) == ("full", "fashion-mnist-upper", 1)][0]
    out = run["out"]
    out.parent.mkdir(parents=True)
    out.write_text(json.dumps({
        **expected_fields(run), "best_accuracy": 0.5, "last_accuracy": 0.4, "teacher_accuracy": 0.9, "wall_s": 90,
        "history": [{"epoch": 1, "test_accuracy": 0.3, "S/L_KD": 1.0},
                    {"epoch": 2, "test_accuracy": 0.5, "S/L_KD": 0.5, "S/L_SFCL": 4.8}],
        "provenance": {"fast_mode": False, "command": "python -m dfkd_lib sweep s.json", "git_commit": "a" * 40,
                       "date_utc": "2026-12-01T10:00:00Z", "machine": "m", "torch_threads": 2}}))
    st = sweep_status(p)
    assert list(st.index) == ["baseline", "full"]
    assert st.loc["full", "fashion-mnist-upper"] == "1/2" and st.loc["baseline", "fashion-mnist"] == "0/2"
    assert sweep_status(p, results=pd.DataFrame()).loc["full", "fashion-mnist-upper"] == "0/2"
    h = load_histories(p)
    assert len(h) == 2 and list(h["test_accuracy"]) == [30.0, 50.0]
    assert h["S/L_SFCL"].isna().tolist() == [True, False] and set(h["variant"]) == {"full"}
    prov = sweep_provenance(p)
    assert len(prov) == 1 and prov.loc[0, "git_commit"] == "a" * 12 and prov.loc[0, "wall_min"] == 1.5


def test_sweep_helpers_without_results(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"name": "s", "datasets": ["a"], "seeds": [0], "variants": {"v": {}}}))
    assert load_histories(p).empty and sweep_provenance(p).empty
    assert sweep_status(p).loc["v", "a"] == "0/1"


def test_expected_fields_fill_in_the_defaults_of_run_distillation(tmp_path, monkeypatch):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"name": "s", "datasets": ["a"], "seeds": [0], "variants": {"v": {}}}))
    (run,) = planned_runs(p)
    want = expected_fields(run)
    assert want["student"] == {"architecture": "resnet18", "width": 16}
    assert want["generator"] == {"name": "dcgan", "width": 32, "nz": 128}
    assert want["method"] == {"name": "baseline"}
    assert want["resolved"]["method"] == {"alpha": 0.3, "temperature": 1.0, "generator_steps": 20,
                                          "student_steps": 15}
    # the defaults are read from run_distillation's signature, so a changed default moves with it
    monkeypatch.setattr(run_distillation, "__kwdefaults__", {**run_distillation.__kwdefaults__, "student_width": 8})
    assert expected_fields(run)["student"]["width"] == 8


def test_datasets_may_be_labels_with_their_own_options(tmp_path, monkeypatch):
    monkeypatch.delenv("DFKD_FAST", raising=False)
    spec = dict(SPEC, datasets={"warblers": {"dataset": "folder", "root": "photos", "teacher": "w.pt"}})
    p = tmp_path / "s.json"
    p.write_text(json.dumps(spec))
    run = planned_runs(p)[0]
    assert run["dataset"] == "warblers" and run["out"].name == "baseline__warblers__s0.json"
    assert (run["kwargs"]["dataset"], run["kwargs"]["root"], run["kwargs"]["teacher"]) == ("folder", "photos", "w.pt")
    assert is_current(run, _result_of(run))


def test_sweep_plan_lists_the_missing_runs_with_estimates_from_the_finished_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DFKD_FAST", raising=False)
    p = tmp_path / "s.json"
    p.write_text(json.dumps(SPEC))
    plan = sweep_plan(p)
    assert len(plan) == 8 and plan["estimate_min"].isna().all()                  # nothing finished yet
    runs = {(r["variant"], r["dataset"], r["seed"]): r for r in planned_runs(p)}
    for key, minutes in ((("full", "fashion-mnist", 0), 30), (("full", "fashion-mnist", 1), 40),
                         (("baseline", "fashion-mnist-upper", 0), 10)):
        out = runs[key]["out"]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**_result_of(runs[key]), "wall_s": 60 * minutes}))
    plan = sweep_plan(p).set_index(["variant", "dataset", "seed"])
    assert len(plan) == 5 and ("full", "fashion-mnist", 0) not in plan.index
    assert plan.loc[("full", "fashion-mnist-upper", 0), "estimate_min"] == 35            # same variant elsewhere
    assert plan.loc[("baseline", "fashion-mnist-upper", 1), "estimate_min"] == 10        # same variant and data
    assert plan.loc[("baseline", "fashion-mnist", 1), "estimated_from"] == 1
    assert len(sweep_plan(p, only="full", seeds="1")) == 1
    with pytest.raises(ValueError, match="no variant nope"):
        sweep_plan(p, only="nope")
    from dfkd_lib.cli import main
    assert main(["sweep", str(p), "--plan", "--only", "baseline"]) == 0
    assert "3 runs to make: about 0.5 CPU hours for 3 of them" in capsys.readouterr().out


def test_sweep_plan_scales_estimates_from_another_cpu_by_the_runs_made_on_both(tmp_path, monkeypatch):
    from dfkd_lib import utils
    monkeypatch.delenv("DFKD_FAST", raising=False)
    monkeypatch.setattr(utils, "cpu_name", lambda: "here")
    p = tmp_path / "s.json"
    p.write_text(json.dumps(SPEC))
    runs = {(r["variant"], r["dataset"], r["seed"]): r for r in planned_runs(p)}
    for key, minutes, cpu in ((("baseline", "fashion-mnist", 0), 10, "elsewhere"),
                              (("baseline", "fashion-mnist", 1), 30, "here"),
                              (("full", "fashion-mnist", 0), 20, "elsewhere")):
        result = _result_of(runs[key])
        result["provenance"] = {**result["provenance"], "cpu": cpu}
        runs[key]["out"].parent.mkdir(parents=True, exist_ok=True)
        runs[key]["out"].write_text(json.dumps({**result, "wall_s": 60 * minutes}))
    plan = sweep_plan(p).set_index(["variant", "dataset", "seed"])
    assert plan.loc[("full", "fashion-mnist", 1), "estimate_min"] == 60         # 20 min elsewhere, x3 here
    assert plan.loc[("baseline", "fashion-mnist-upper", 0), "estimate_min"] == 30   # a run here is taken as is
    assert plan_summary(plan.iloc[:0]).startswith("nothing to run")
    # a run here in other arithmetic is not this machine's time: it is scaled like a run elsewhere
    result = _result_of(runs[("full", "fashion-mnist-upper", 0)], config={"amp": "bf16"})
    result["provenance"] = {**result["provenance"], "cpu": "here"}
    runs[("full", "fashion-mnist-upper", 0)]["out"].write_text(json.dumps({**result, "wall_s": 60 * 5}))
    assert sweep_plan(p, amp="bf16").set_index(["variant", "dataset", "seed"]).loc[
        ("full", "fashion-mnist-upper", 1), "estimate_min"] == 5
    fp32 = sweep_plan(p, amp="fp32").set_index(["variant", "dataset", "seed"])
    assert fp32.loc[("full", "fashion-mnist-upper", 1), "estimate_min"] == 15   # 5 min, x3
    with pytest.raises(ValueError, match="amp is 'bf16' or 'fp32'"):
        sweep_plan(p, amp="none")


def test_a_spec_copies_the_identical_runs_of_the_sweeps_it_reuses(tmp_path, monkeypatch):
    from dfkd_lib import experiment
    from dfkd_lib.checkpoint import sha256
    from dfkd_lib.teachers import default_teacher_path

    monkeypatch.delenv("DFKD_FAST", raising=False)
    (tmp_path / "a.json").write_text(json.dumps(SPEC))
    other = {**SPEC, "name": "b", "seeds": [0], "reuse": ["a.json"],
             "variants": {"mine": SPEC["variants"]["full"], "other_lam": {**SPEC["variants"]["full"],
                                                                          "generator_options": {"lam": 0.5}}}}
    (tmp_path / "b.json").write_text(json.dumps(other))
    teacher_sha = {d: sha256(default_teacher_path(d)) for d in SPEC["datasets"]}
    for r in planned_runs(tmp_path / "a.json"):
        if r["variant"] == "full" and r["seed"] == 0:
            r["out"].parent.mkdir(parents=True, exist_ok=True)
            weights = r["out"].with_name(r["out"].name.replace(".json", ".weights.pt"))
            weights.write_bytes(b"w-" + r["dataset"].encode())
            # the upper view's file records another teacher: not the same run
            sha = teacher_sha[r["dataset"]] if r["dataset"] == "fashion-mnist" else "0" * 64
            r["out"].write_text(json.dumps({**_result_of(r), "dataset": r["dataset"],
                                            "teacher": {"sha256": sha},
                                            "weights": {"file": weights.name, "sha256": sha256(weights)}}))
    calls = []

    @functools.wraps(experiment.run_distillation)
    def fake(dataset, config, out, checkpoint, **kw):
        calls.append(out.name)

    monkeypatch.setattr(experiment, "run_distillation", fake)
    plan = sweep_plan(tmp_path / "b.json").set_index(["variant", "dataset"])
    assert plan.loc[("mine", "fashion-mnist"), "copy_of"].endswith("a/full__fashion-mnist__s0.json")
    assert plan.loc[("mine", "fashion-mnist-upper"), "copy_of"] == ""
    run_sweep(tmp_path / "b.json", progress=False, copy_only=True)
    assert calls == [] and len(sweep_plan(tmp_path / "b.json")) == 3               # copied, nothing run
    run_sweep(tmp_path / "b.json", progress=False)
    assert sorted(calls) == ["mine__fashion-mnist-upper__s0.json", "other_lam__fashion-mnist-upper__s0.json",
                             "other_lam__fashion-mnist__s0.json"]
    copied = json.loads((tmp_path / "b" / "mine__fashion-mnist__s0.json").read_text())
    assert copied["provenance"]["copied_from"].endswith("a/full__fashion-mnist__s0.json")
    assert (tmp_path / "b" / copied["weights"]["file"]).read_bytes() == b"w-fashion-mnist"
    assert load_results(tmp_path / "b.json")["variant"].tolist() == ["mine"]      # read as a current result
