"""The tools are programs that users run: each is an absl program as the entry scripts are, answers --help at
once (without PyTorch, without starting TensorFlow, without doing its work), and checks its inputs and outputs
first, refusing what it cannot do in one line (exit 2, no traceback) before TensorFlow starts and before it
writes anything. tools/ablation_table.py has its own tests (tests/test_ablation_table.py)."""

import ast
import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from cogan_tf import config as C, record as record_lib, runner
from cogan_tf.data import load_split
from tests.conftest import ROOT, quiet, write_fake_dataset
from tests.test_clustergan import train_cfg

TOOLS = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "tools", "*.py")))


def without(tmp_path, *modules):
    """The environment of a process in which importing ``modules`` fails. The package is found as an installed
    one is (here: this tree on PYTHONPATH, after the shim); a tool does not change ``sys.path`` itself."""
    shim = tmp_path / "shim"
    for m in modules:
        (shim / m).mkdir(parents=True, exist_ok=True)
        (shim / m / "__init__.py").write_text(f"raise ImportError('{m} was imported')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return dict(env, PYTHONPATH=os.pathsep.join([str(shim), ROOT]))


def run_tool(tool, *args, cwd, env, timeout=120):
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools", f"{tool}.py"), *map(str, args)], cwd=str(cwd),
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_the_tools_are_all_tested_here():
    assert set(TOOLS) == {"ablation_table", "clustergan_curve", "clustergan_seeds", "clustergan_side_by_side",
                          "cogan_curve", "host_overhead", "multiworker_bench", "ship_classifier", "step_drift",
                          "trace_step", "vanilla_loss_plot", "vanilla_torch_reference"}


def source(tool):
    with open(os.path.join(ROOT, "tools", f"{tool}.py")) as f:
        return f.read()


@pytest.mark.parametrize("tool", TOOLS)
def test_a_tool_is_an_absl_program_that_leaves_the_path_alone(tool):
    """One style for every tool, the entry scripts': flags defined in ``define_flags()`` (none when the module
    is imported), run by ``cli.run``; the package is imported as installed, never by changing ``sys.path``; no
    second parser, and no raw ``sys.argv`` (also not in what a tool hands its subprocesses)."""
    src = source(tool)
    for word in ("sys.path", "argparse", "sys.argv", "app.run", "PYTHONPATH=ROOT"):
        assert word not in src, (tool, word)
    tree = ast.parse(src)
    main_block = [n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
    assert len(main_block) == 1, tool
    calls = [ast.unparse(n.value.func) for n in main_block[0].body if isinstance(n, ast.Expr)]
    defines = "flags.DEFINE" in src
    assert calls == (["define_flags", "cli.run"] if defines else ["cli.run"]), (tool, calls)
    at_import = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n not in main_block]
    assert not any("flags.DEFINE" in ast.unparse(n) for n in at_import), tool


@pytest.mark.parametrize("tool", TOOLS)
def test_help_at_once_without_torch_or_tensorflow(tmp_path, tool):
    r = run_tool(tool, "--help", cwd=tmp_path, env=without(tmp_path, "torch", "tensorflow"), timeout=60)
    assert "Traceback" not in r.stderr and r.returncode == 1, r.stderr[-2000:]  # absl's --help exits 1
    doc = source(tool).split('"""')[1]
    shown = {line.strip() for line in r.stdout.splitlines()}
    # the docstring line by line: a command's trailing backslash kept (a non-raw docstring joins the lines)
    assert [line for line in doc.splitlines() if line.strip() not in shown] == [], r.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A fake MNIST, a small ClusterGAN run with a validation split and three checkpoints, and a CoGAN run's
    folder (its config.json)."""
    root = tmp_path_factory.mktemp("tools")
    data_dir = write_fake_dataset(root / "data", n_train=48, n_test=30)
    runner.run(C.ClusterGanConfig(), train_cfg(root / "cg", data_dir=data_dir, dataset="mnist", val_size=12,
                                               max_steps=6, save_every=3, keep_checkpoints=None,
                                               sample_every_epochs=0), log=quiet)
    cogan = root / "cogan" / "checkpoint" / "cogan_mnist_4_28"
    cogan.mkdir(parents=True)
    record_lib.save_run_config(str(cogan / "config.json"), "cogan", C.CoganConfig(),
                           C.TrainConfig(batch_size=4, checkpoint_dir=str(cogan.parent)))
    run = root / "cg" / "checkpoint" / "clustergan_mnist_4_28"
    (root / "bad.json").write_text("{bad")
    (root / "a_file").write_text("")
    _, y = load_split(data_dir, "mnist", "test")
    enc = dict(ge_updates=np.int64(1), info=json.dumps({"seed": 3}), test_zn=np.zeros((30, 30), np.float32),
               test_logits=np.zeros((30, 10), np.float32), test_labels=y.astype(np.int64))
    enc["test_zn"][4, 2] = np.nan
    np.savez(root / "nan.npz", **enc)
    (root / "good.log").write_text("epoch 0: epoch_g_loss: 1.0, epoch_d_loss: 2.0\n")
    (root / "empty.log").write_text("no loss lines here\n")
    return dict(root=root, data=data_dir, cg=root / "cg" / "checkpoint", run=run, cogan=root / "cogan" / "checkpoint")


# (tool, arguments, the refusal's line); {root}, {data}, {cg}, {run}, {cogan} stand for the fixture's paths.
CASES = [
    ("clustergan_curve", ["--checkpoint_dir", "{root}/nope"], "{root}/nope: no such checkpoint directory"),
    ("clustergan_curve", ["--checkpoint_dir", "{cogan}"], "{cogan}: no config.json for --model clustergan here or in "
                                                          "a subdirectory"),
    ("clustergan_curve", ["--checkpoint_dir", "{cg}", "--out", "{root}/bad"],
     "{root}/bad.json: not a ClusterGAN clustering curve (Expecting property name enclosed in double "
     "quotes: line 1 column 2 (char 1)); pass --recompute to score every checkpoint again, or another --out"),
    ("clustergan_curve", ["--checkpoint_dir", "{cg}", "--out", "{run}/config"],
     "--out={run}/config.json: is the input {run}/config.json; an output may not replace an input"),
    ("clustergan_seeds", ["--train_seeds", "0", "--runs_root", "{root}/r", "--main_flags", '--recipe "paper'],
     '--main_flags=--recipe "paper: No closing quotation (quote it as a shell would)'),
    ("clustergan_seeds", ["--checkpoint_dirs", "{cg},{run}", "--data_dir", "{data}"],
     "--checkpoint_dirs: {run} and {cg} are the same run; give each run once"),
    ("clustergan_seeds", ["--checkpoint_dirs", "{cg}", "--data_dir", "{data}", "--out", "{run}/best/best"],
     "--out={run}/best/best.json: is in the input folder {cg}; an output may not replace an input"),
    ("clustergan_seeds", ["--checkpoint_dirs", "{cg}", "--data_dir", "{data}", "--out", "{root}/a_file/seeds"],
     "--out={root}/a_file/seeds.json: {root}/a_file is a file, not a folder"),
    ("clustergan_side_by_side", ["--port_runs", "{cg}", "--encodings", "{root}/nan.npz", "--data_dir", "{data}",
                                 "--out", "{root}/sbs"],
     "{root}/nan.npz: its test_zn holds 1 NaN or infinite values; encode with a model whose outputs are finite"),
    ("clustergan_side_by_side", ["--port_runs", "{cogan}", "--encodings", "{root}/nan.npz", "--data_dir", "{data}"],
     "{cogan}: no config.json for --model clustergan here or in a subdirectory"),
    ("multiworker_bench", ["--rounds", "0"], "--rounds=0: must be at least 1"),
    ("multiworker_bench", ["--out", "{root}/a_file/bench.json"],
     "--out={root}/a_file/bench.json: {root}/a_file is a file, not a folder"),
    ("multiworker_bench", ["--out", ""], "--out='': give a file path, or leave the flag out"),
    ("vanilla_loss_plot", ["{root}/p.png", "port={root}/missing.log"],
     "{root}/missing.log: cannot read it (No such file or directory)"),
    ("vanilla_loss_plot", ["{root}/p.png", "port={root}/empty.log"],
     "{root}/empty.log: no 'epoch N: epoch_g_loss: X, epoch_d_loss: Y' lines"),
    ("vanilla_loss_plot", ["{root}/good.log", "port={root}/good.log"],
     "OUT.png={root}/good.log: is the input {root}/good.log; an output may not replace an input"),
    ("vanilla_loss_plot", ["{root}/p.png", "{root}/good.log"], "{root}/good.log: give each run as LABEL=LOG"),
    ("vanilla_torch_reference", ["--data_dir", "{data}", "--out", "{root}/torch"],
     "this tool needs PyTorch, which cogan_tf does not depend on: pip install torch"),
    ("vanilla_torch_reference", ["--epochs", "0"], "--epochs=0: must be at least 1"),
    ("vanilla_loss_plot", ["{root}/p.png"], "give OUT.png, the plot to write, and one or more LABEL=LOG"),
    ("trace_step", ["--rows", "nope"], "--rows=nope: choose from cogan:port, cogan:port+xla, "),
    ("trace_step", ["--rows", "cogan:loop"], "--rows=cogan:loop: choose from cogan:port, "),
    ("trace_step", ["--batch", "-1"], "--batch=-1: must be 0 or more"),
    ("ablation_table", [], "give OUT_DIR, the folder tools/cogan_ablation.sh wrote its runs to (see --help)"),
    ("ablation_table", ["{root}", "{root}/work"], "unexpected arguments '{root}/work': give one OUT_DIR (see --help)"),
    ("ship_classifier", ["--data_dir", "{data}"], "name the datasets, e.g. python tools/ship_classifier.py mnist "
                                                  "(choose from mnist, fashion_mnist)"),
    ("ship_classifier", ["--from_cache", "mnsit"], "unknown dataset 'mnsit': choose from mnist, fashion_mnist"),
    ("step_drift", ["extra"], "unexpected arguments 'extra' (see --help)"),
    # absl's own refusals (an unknown flag, a value of the wrong type, a required flag left out) are one line too
    ("multiworker_bench", ["--rounds", "x"], "flag --rounds=x: invalid literal for int() with base 10: 'x' (see --help)"),
    ("step_drift", ["--steps", "2"], "Unknown command line flag 'steps' (see --help)"),
    ("vanilla_torch_reference", ["--out"], "Missing value for flag --out (see --help)"),
    ("clustergan_curve", [], "flag --checkpoint_dir=None: Flag --checkpoint_dir must have a value other than None. "
                             "(see --help)"),
    ("host_overhead", ["--steps", "x"], "flag --steps=x: invalid literal for int() with base 10: 'x' (see --help)"),
    ("cogan_curve", ["--checkpoint_dir", "{root}/a", "{root}/b", "--num_samples", "1"], "--num_samples=1: give 2 to "),
    ("cogan_curve", ["--checkpoint_dir", "{root}/a", "--max_step", "0"], "--max_step=0: give a step of 1 or more"),
]


def snapshot(root):
    """Every file under ``root`` with its size and modification time, and every folder: what a refusal must
    leave alone (a folder's own time changes when a write probe comes and goes)."""
    return {str(p): "folder" if p.is_dir() else (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if "shim" not in p.parts}


@pytest.mark.parametrize("tool, args, message", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_a_tool_refuses_in_one_line_before_tensorflow_and_writes_nothing(runs, tool, args, message):
    paths = {k: str(v) for k, v in runs.items()}
    work = runs["root"] / "work"  # the tool's current folder, where a default output would go
    work.mkdir(exist_ok=True)
    before = snapshot(runs["root"])
    r = run_tool(tool, *[a.format(**paths) for a in args], cwd=work, env=without(runs["root"], "torch", "tensorflow"))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message.format(**paths)}"), r.stderr
    assert snapshot(runs["root"]) == before and not os.listdir(work)


def test_the_seeds_tool_scores_the_newest_checkpoint_when_the_state_file_is_lost(runs, tmp_path):
    run = tmp_path / "lost"
    shutil.copytree(runs["cg"], run)
    os.remove(run / "clustergan_mnist_4_28" / "checkpoint")
    r = run_tool("clustergan_seeds", "--checkpoint_dirs", run, "--data_dir", runs["data"], "--checkpoint", "latest",
                 "--out", tmp_path / "seeds", cwd=tmp_path, env=dict(os.environ, PYTHONPATH=ROOT), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    newest = record_lib.RunRecord.read(str(run / "clustergan_mnist_4_28")).checkpoint_paths()[0]
    summary = json.loads((tmp_path / "seeds.json").read_text())
    assert summary["runs"][0]["checkpoint"] == os.path.basename(newest) and summary["runs"][0]["step"] == 6


@pytest.mark.parametrize("tool", ["clustergan_curve", "clustergan_seeds", "clustergan_side_by_side"])
def test_the_clustergan_tools_are_thin_absl_programs(tool):
    """What they compute is the package's (cogan_tf/evaluate/<tool>.py); the program parses flags, calls it and
    prints, as main.py does (the style of every tool: test_a_tool_is_an_absl_program_that_leaves_the_path_alone)."""
    src = source(tool)
    assert "from absl import flags" in src and f"from cogan_tf.evaluate import {tool}" in src
    assert "from tools" not in src
    code = [line for line in src.split('"""', 2)[2].splitlines() if line.strip()]
    assert len(code) < 60, len(code)


def test_the_loss_plot_takes_its_plot_and_runs_as_plain_arguments(runs, tmp_path):
    """OUT.png LABEL=LOG ..., as docs/PORTS.md writes the command: absl hands the plain arguments to the tool."""
    (tmp_path / "b.log").write_text("epoch 0: epoch_g_loss: 1.5, epoch_d_loss: 1.0\n"
                                    "epoch 1: epoch_g_loss: 2.0, epoch_d_loss: 0.5\n")
    png = tmp_path / "plot.png"
    r = run_tool("vanilla_loss_plot", png, f"port={runs['root']}/good.log", f"PyTorch={tmp_path}/b.log", cwd=tmp_path,
                 env=without(tmp_path, "torch", "tensorflow"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == f"wrote {png} (1 epochs of port, PyTorch)" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # two TensorFlow workers tracing the CoGAN step twice each
def test_the_multiworker_bench_counts_the_collectives_with_workers_that_get_the_batch_from_their_environment(tmp_path):
    """The tool's worker processes (their program a string, no arguments): the batch comes in the environment,
    the package from the tool's own; the step all-reduces more with --sync_batchnorm."""
    code = ("import json, runpy; ns = runpy.run_path('tools/multiworker_bench.py'); "
            "print(json.dumps(ns['collectives_per_step'](8)))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 0, r.stderr[-3000:]
    counts = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(counts) == {"default", "sync_batchnorm"} and 0 < counts["default"] < counts["sync_batchnorm"], counts
