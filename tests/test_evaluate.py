"""``python -m cogan_tf.evaluate`` (cogan_tf/evaluate/__init__.py, __main__.py), the evaluation as a program: a
report of grids, of a SavedModel or of two runs' grid folders, reports compared, and every refusal one line (a
damaged SavedModel, grids it cannot read faithfully, a bad count, seed or output, an output onto an input), before
TensorFlow starts where it can be. Its modules have their own tests: test_samples.py, test_scoring.py,
test_reports.py, test_grid_compare.py, test_curve.py, test_image_metrics.py, test_classifier.py."""

import json
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest

from cogan_tf import images, published
from cogan_tf.evaluate import samples as sampling, scoring
from tests.conftest import (AGAIN, ROOT, data_file, digit_grid, error_lines, flip, out_cases, quiet, run_cli, templates,
                            without_tensorflow, write_pair)


@pytest.fixture
def env(evaluation_env):
    """The classifier and the CoGAN run's checkpoint and export that the evaluation is tested on (conftest)."""
    return evaluation_env


# --- a damaged SavedModel: one line naming the folder and what is wrong ---------------------------------

def test_cli_damaged_saved_model_one_line_no_traceback(tmp_path, env):
    d = tmp_path / "cogan"
    shutil.copytree(env["export"], d)
    flip(data_file(d))
    # As a user runs it: TensorFlow's own log level untouched, so its start-up lines would show too.
    r = subprocess.run([sys.executable, "-m", "cogan_tf.evaluate", "--saved_model", str(d), "--data_dir",
                        env["data_dir"]], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | {"PYTHONPATH": ROOT})
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {d}: damaged SavedModel: variables/variables.data-* "
                                                    "damaged or truncated ("), r.stderr
    assert lines[0].endswith(AGAIN)


# --- grids, reports side by side, and the refusals -------------------------------------------------------

def test_cli_refuses_bad_inputs_in_one_line(tmp_path):
    r = run_cli("--grids", "a.png", "b.png", "c.png")
    assert r.returncode == 2 and error_lines(r) == [
        "error: --grids takes pairs TOP.png BOT.png [TOP2.png BOT2.png ...]; got 3 paths"], r.stderr
    odd = str(tmp_path / "odd.png")
    images.save_png(odd, np.zeros((30, 56), np.uint8))
    r = run_cli("--grids", odd, odd, "--data_dir", str(tmp_path))
    assert r.returncode == 2 and error_lines(r) == [
        f"error: {odd}: 56x30 pixels is not a grid of 28x28 cells"], r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli()
    assert r.returncode == 2 and "nothing to evaluate" in r.stderr


def test_cli_refuses_grids_of_single_cells(tmp_path):
    top, bot = str(tmp_path / "top" / "one.png"), str(tmp_path / "bot" / "one.png")
    images.save_png(top, np.zeros((28, 28), np.uint8))
    images.save_png(bot, np.full((28, 28), 255, np.uint8))
    r = run_cli("--grids", top, bot, "--data_dir", str(tmp_path))
    assert r.returncode == 2 and error_lines(r) == [
        f"error: --grids {top} {bot}: 1 pair of 28x28 cells; the report needs at least 2 (an 8x8 grid holds 64)"], r.stderr
    assert "Traceback" not in r.stderr


def test_cli_grids_report_and_compare(tmp_path, env):
    t = templates()[np.arange(64) % 10]
    top = images.save_grid(str(tmp_path / "top" / "g.png"), t)
    bot = images.save_grid(str(tmp_path / "bot" / "g.png"), 1 - t)
    half = images.save_grid(str(tmp_path / "bot" / "h.png"), t)  # not inverted: pixel agreement 0
    a, b = str(tmp_path / "a.json"), str(tmp_path / "b.json")
    r = run_cli("--grids", top, bot, "--data_dir", env["data_dir"], "--out", a)
    assert r.returncode == 0, r.stderr
    assert "negative(G1(z)) vs G2(z)" in r.stdout and "binarised at >0.5" in r.stdout and "1.0000" in r.stdout
    scoring.run_report(sampling.samples_from_grids([top, half]), env["data_dir"], out=b, clf=env["clf"], log=quiet)
    with open(a) as f:
        ra = json.load(f)
    assert ra["n"] == 64 and ra["pairs"]["pixel_agreement"] == 1.0
    r = run_cli("--compare", a, b)
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("pairs.pixel_agreement"))
    assert line.split()[1:] == ["1.0000", "0.0000", "-1.0000"]


@pytest.mark.parametrize("n", ["1", "1000001", "1000000000"])
def test_cli_refuses_a_sample_count_out_of_range_before_tensorflow(tmp_path, n):
    r = run_cli("--saved_model", str(tmp_path / "model"), "--num_samples", n, env=without_tensorflow(tmp_path))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"error: --num_samples={n}: give 2 to 1,000,000 (see --help)"], r.stderr


def test_cli_refuses_a_bad_out_before_any_work(tmp_path):
    shell = without_tensorflow(tmp_path)
    model = str(tmp_path / "model")  # never read: the refusal comes first
    for args, message in out_cases(tmp_path) + [
            (["--grid_dirs", str(tmp_path), "--plot", str(tmp_path)], f"--plot={tmp_path}: is a directory; "),
            (["--compare", "a.json", "b.json", "--out", str(tmp_path / "r.json")],
             "--out goes with --saved_model, --checkpoint_dir, --grids or --grid_dirs (--compare and "
             "--retrain_classifier alone write no report)")]:
        if "--grid_dirs" not in args and "--compare" not in args:
            args = ["--saved_model", model] + args
        r = run_cli(*args, env=shell)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        assert r.stderr.startswith(f"error: {message}"), (args, r.stderr)
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)  # not replaced by a file
    assert sorted(os.listdir(tmp_path)) == ["a_file", "fifo", "no_tensorflow"]


@pytest.mark.parametrize("seed, said", [("-1", "must be 0 or more"),
                                        ("4294967296", "must be at most 4294967295 (2^32 - 1: K-means seeds are 32-bit)")])
def test_cli_refuses_a_seed_out_of_range_before_tensorflow(tmp_path, seed, said):
    r = run_cli("--saved_model", str(tmp_path / "model"), f"--seed={seed}", env=without_tensorflow(tmp_path))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [f"error: --seed={seed}: {said}"], r.stderr


# --- two runs' grid directories, step by step (--grid_dirs) ---------------------------------------------

def test_cli_grid_dirs(tmp_path, env):
    run, ref = tmp_path / "run", tmp_path / "ref"
    t = digit_grid()
    for root, names in ((run, ("train_00_0099", "train_02_0007")), (ref, ("train_02_0007", "train_03_0061"))):
        for name in names:
            write_pair(root, name, t, 1 - t)
    run, ref = str(run), str(ref)
    out, plot = str(tmp_path / "r.json"), str(tmp_path / "c.png")
    r = run_cli("--grid_dirs", run, ref, "--data_dir", env["data_dir"], "--out", out, "--plot", plot,
                "--steps_per_epoch", "100", timeout=600)  # TensorFlow and the classifier start in the subprocess
    assert r.returncode == 0, r.stderr
    assert any(line.split()[:4] == ["208", "train_02_0007", "1.000", "1.000"] for line in r.stdout.splitlines()), \
        r.stdout
    with open(out) as f:
        report = json.load(f)
    assert [g["step"] for g in report["grids"]] == [208] and report["steps_per_epoch"] == 100
    assert report["only_in_run"] == ["train_00_0099"] and report["only_in_reference"] == ["train_03_0061"]
    assert os.path.getsize(plot) > 0
    hint = ("; andrewliao11's published grids: `python download.py andrewliao11` puts them in "
            f"data/andrewliao11/samples (or clone them: {published.CLONE})")
    for args, message in (
            (["--grid_dirs", run, ref, ref], "error: --grid_dirs takes one or two directories, RUN_SAMPLES "
                                            "[REFERENCE_SAMPLES]; got 3"),
            (["--grid_dirs", run, "--data_dir", str(tmp_path / "d")],  # the reference defaults to the published grids
             f"error: REFERENCE {tmp_path}/d/andrewliao11/samples: no such directory{hint}"),
            (["--grid_dirs", run, str(tmp_path / "nope")], f"error: REFERENCE {tmp_path}/nope: no such directory{hint}"),
            (["--grids", "a.png", "b.png", "--plot", plot], "error: --plot goes with --grid_dirs RUN_SAMPLES "
                                                             "REFERENCE_SAMPLES"),
            (["--grid_dirs", run, ref, "--steps_per_epoch", "0"], "error: --steps_per_epoch=0: must be at least 1")):
        r = run_cli(*args)
        assert r.returncode == 2 and error_lines(r) == [message], r.stderr


def test_cli_refuses_grids_it_cannot_read_faithfully_before_tensorflow(tmp_path):
    """A 16-bit grid (read as 8-bit it was clipped to near white), a grid of 2 cells among grids of 64 (scored
    and tabled as "2 pairs each"), a PNG too large to be a grid (a decompression-bomb traceback, or minutes
    and gigabytes): one line naming the file, before TensorFlow starts."""
    from PIL import Image
    from tests.test_images import png_of_zeros

    run, ref = tmp_path / "run", tmp_path / "ref"
    t = digit_grid()
    for name in ("train_00_0099", "train_01_0053"):
        write_pair(ref, name, t, 1 - t)
    write_pair(run, "train_00_0099", t, 1 - t)
    small = [str(run / side / "train_01_0053.png") for side in ("top", "bot")]
    for p in small:
        images.save_png(p, np.zeros((28, 56), np.uint8))
    g16 = str(tmp_path / "g16" / "top.png")
    os.makedirs(os.path.dirname(g16))
    Image.fromarray(np.full((224, 224), 32768, np.uint16)).save(g16)
    huge = png_of_zeros(tmp_path / "huge.png", 14000, 14000)
    shell = without_tensorflow(tmp_path)
    for args, message in (
            (["--grid_dirs", str(run), str(ref)], f"{small[0]}: 56x28 pixels (1x2 = 2 cells), where 6 of the 8 grids "
                                                 "are 224x224 pixels (8x8 = 64 cells): --grid_dirs compares grids of "
                                                 "one size"),
            (["--grids", g16, str(ref / "bot" / "train_00_0099.png")],
             f"{g16}: 16-bit greyscale: grids are read as 8-bit greyscale, and 16 bits would be clipped; save it "
             "with 8 bits per channel"),
            (["--grids", str(ref / "top" / "train_00_0099.png"), huge],
             f"{huge}: 14000x14000 pixels (500x500 = 250000 cells): not a grid of samples (at most 10,000 cells "
             "are read; an 8x8 grid is 224x224 pixels)")):
        r = run_cli(*args, "--data_dir", str(tmp_path / "data"), env=shell)
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [f"error: {message}"], (args, r.stderr)


def test_cli_no_output_replaces_an_input(tmp_path):
    """--out or --plot onto an input grid (or into a grid folder, a SavedModel, a checkpoint or a dataset
    folder, or onto each other) is refused before anything is read or written."""
    run, ref = tmp_path / "run", tmp_path / "ref"
    t = digit_grid()
    write_pair(run, "train_00_0099", t, 1 - t)
    write_pair(ref, "train_00_0099", t, 1 - t)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "saved_model.pb").write_bytes(b"model")
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    os.symlink(run / "top" / "train_00_0099.png", tmp_path / "link.png")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    top, bot = str(run / "top" / "train_00_0099.png"), str(run / "bot" / "train_00_0099.png")
    hint = "an output may not replace an input: give another path"
    grid_dirs = ["--grid_dirs", str(run), str(ref)]
    shell = without_tensorflow(tmp_path)
    for args, message in (
            (grid_dirs + ["--out", top, "--plot", bot], f"--out={top}: is in the input folder {run}/top; {hint}"),
            (grid_dirs + ["--plot", bot], f"--plot={bot}: is in the input folder {run}/bot; {hint}"),
            (grid_dirs + ["--plot", str(ref / "top" / "new.png")],
             f"--plot={ref}/top/new.png: is in the input folder {ref}/top; {hint}"),
            (["--grids", top, bot, "--out", str(tmp_path / "link.png")],
             f"--out={tmp_path}/link.png: is the input {top}; {hint}"),
            (["--saved_model", str(tmp_path / "model"), "--out", str(tmp_path / "model" / "saved_model.pb")],
             f"--out={tmp_path}/model/saved_model.pb: is in the input folder {tmp_path}/model; {hint}"),
            (["--checkpoint_dir", str(run), "--out", str(run / "r.json")],
             f"--out={run}/r.json: is in the input folder {run}; {hint}"),
            (["--grids", top, bot, "--data_dir", str(tmp_path / "data"), "--out",
              str(tmp_path / "data" / "mnist" / "r.json")],
             f"--out={tmp_path}/data/mnist/r.json: is in the input folder {tmp_path}/data/mnist; {hint}"),
            (grid_dirs + ["--out", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.json")],
             f"--plot={tmp_path}/r.json: is --out too; give each its own path")):
        r = run_cli(*args, env=shell)
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [f"error: {message}"], (args, r.stderr)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "no_tensorflow" not in str(p)} == before


