"""tools/ablation_table.py: one row per run, a mean row per variant, lost domains counted, and the montage."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT

TOOL = os.path.join(ROOT, "tools", "ablation_table.py")


def write_run(out, name, seed, top_score, bot_score, label, shade):
    d = out / f"{name}_s{seed}"
    report = {"domains": {"top": {"frechet_distance": 100.0 + seed, "classifier_score": top_score},
                          "bot": {"frechet_distance": 200.0 + seed, "classifier_score": bot_score}},
              "pairs": {"pixel_agreement": 0.5 + seed / 10, "label_agreement": label}}
    d.mkdir(parents=True)
    (d / "report.json").write_text(json.dumps(report))
    for side in ("top", "bot"):
        (d / "samples" / side).mkdir(parents=True)
        Image.fromarray(np.full((224, 224), shade, np.uint8)).save(d / "samples" / side / "train_00_0499.png")


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_table_means_lost_domains_and_montage(tmp_path):
    out = tmp_path / "ablation"
    write_run(out, "corrected", 0, 8.0, 7.0, 0.9, 200)
    write_run(out, "faithful", 0, 5.0, 1.2, 0.6, 10)   # bottom lost: score below 1.5
    write_run(out, "faithful", 1, 3.0, 4.0, 0.8, 60)
    png = tmp_path / "montage.png"
    r = run_tool(out, "--montage", png)
    assert r.returncode == 0, r.stderr
    rows = r.stdout.strip().splitlines()
    assert len(rows) == 2 + 3 + 2 and all(line.startswith("|") for line in rows)  # stdout is the table alone
    assert rows[2] == "| faithful (no flag) | 0 | 100.0 | 5.00 | 200.0 | 1.20 | 0.500 | 0.600 | 1 |"
    assert rows[4] == ("| **faithful (no flag), mean of 2** | | **100.5** | **4.00** | **200.5** | **2.60** | "
                       "**0.550** | **0.700** | **1 of 4** |")
    assert rows[5].startswith("| `--corrected` | 0 |")  # the variants in the documented order, not alphabetical
    assert rows[6].endswith("| **0 of 2** |")
    assert f"wrote {png}" in r.stderr
    with Image.open(png) as im:
        m = np.asarray(im)
    assert m.shape == (2 * 112, 2 * 2 * 112)  # a row per variant; top and bot per seed
    assert m[0, 0] == 10 and m[0, 2 * 112] == 60 and m[112, 0] == 200 and m[112, 2 * 112] == 0  # no seed 1


def test_missing_grid_and_empty_folder_fail_in_one_line(tmp_path):
    out = tmp_path / "ablation"
    write_run(out, "faithful", 0, 5.0, 5.0, 0.6, 10)
    r = run_tool(out, "--montage", tmp_path / "m.png", "--grid", "train_00_0099")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "train_00_0099.png: no such grid" in r.stderr
    assert os.listdir(tmp_path) == ["ablation"]  # no montage, no temporary file
    r = run_tool(tmp_path / "nothing")
    assert r.returncode == 2 and "run tools/cogan_ablation.sh first" in r.stderr


def damage(out, case):
    """Damage the ablation folder ``out`` (one run, faithful_s0) as ``case`` says; returns the extra arguments
    and the one line that refuses them (``{out}`` standing for the folder)."""
    report = out / "faithful_s0" / "report.json"
    grid = out / "faithful_s0" / "samples" / "top" / "train_00_0499.png"
    what = "a JSON report of python -m cogan_tf.evaluate (written with --out)"
    if case == "malformed":
        report.write_text("{bad")
        return [], f"{report}: not {what} (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"
    if case == "empty":
        report.write_text("")
        return [], f"{report}: an empty file, not {what}"
    if case == "list":
        report.write_text("[1, 2]")
        return [], f'{report}: not a report written by python -m cogan_tf.evaluate (no "domains" object)'
    if case == "not cogan":
        report.write_text(json.dumps({"domains": {"images": {"classifier_score": 3.0}}}))
        return [], f"{report}: not a CoGAN report (its domains top and bot and its pairs need their"
    if case == "folder":
        report.unlink()
        report.mkdir()
        return [], f"{report}: a folder, not {what}"
    if case == "empty grid":
        grid.write_bytes(b"")
        return ["--montage", str(out.parent / "m.png")], f"{grid}: not a readable image (not a PNG file"
    if case == "montage under a file":
        (out.parent / "a_file").write_text("")
        return (["--montage", str(out.parent / "a_file" / "m.png")],
                f"--montage={out.parent}/a_file/m.png: {out.parent}/a_file is a file, not a folder")
    if case == "montage a folder":
        return ["--montage", str(out.parent) + "/new/"], f"--montage={out.parent}/new/: ends in /, so names a folder"
    if case == "montage empty":
        return ["--montage", ""], "--montage='': give a file path, or leave the flag out"
    if case == "montage onto a grid":
        return ["--montage", str(grid)], f"--montage={grid}: is in the input folder {out}; an output may not replace"
    raise ValueError(case)


CASES = ("malformed", "empty", "list", "not cogan", "folder", "empty grid", "montage under a file", "montage a folder",
         "montage empty", "montage onto a grid")


@pytest.mark.parametrize("case", CASES)
def test_bad_inputs_and_outputs_are_one_line_before_anything_is_printed_or_written(tmp_path, case):
    out = tmp_path / "ablation"
    write_run(out, "faithful", 0, 5.0, 5.0, 0.6, 10)
    args, message = damage(out, case)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    r = run_tool(out, *args)
    assert r.returncode == 2 and r.stdout == "", (case, r.stdout, r.stderr)  # no table printed either
    assert r.stderr.strip().splitlines()[0].startswith(f"error: {message}") and r.stderr.count("\n") == 1, r.stderr
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing written, nothing left behind


def test_a_montage_into_a_missing_folder_makes_it(tmp_path):
    out = tmp_path / "ablation"
    write_run(out, "faithful", 0, 5.0, 5.0, 0.6, 10)
    r = run_tool(out, "--montage", tmp_path / "new" / "sub" / "m.png")
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "new" / "sub" / "m.png") as im:
        assert im.size == (2 * 112, 112)
