"""tools/ablation_table.py: one row per run, a mean row per variant, lost domains counted, and the montage."""

import json
import os
import subprocess
import sys

import numpy as np
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
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "train_00_0099.png: no such grid" in r.stderr
    assert os.listdir(tmp_path) == ["ablation"]  # no montage, no temporary file
    r = run_tool(tmp_path / "nothing")
    assert r.returncode == 1 and "run tools/cogan_ablation.sh first" in r.stderr
