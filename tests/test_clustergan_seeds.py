"""cogan_tf/evaluate/clustergan_seeds.py: the ClusterGAN paper's selection over N seeds (the best of N by
validation purity, the mean +- std of the test scores), the main.py commands that train the seeds, and
(``-m slow``) tools/clustergan_seeds.py training two seeds and reporting."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cogan_tf import runner
from cogan_tf.errors import UsageError
from cogan_tf.evaluate import clustergan_seeds
from tests.conftest import ROOT, quiet, write_fake_dataset
from tests.test_clustergan import train_cfg
from tests.test_clustergan_paper import FASHION


def test_seeds_tool_selects_by_validation_purity_and_averages_the_test_scores(tmp_path):
    tool = clustergan_seeds
    data_dir = write_fake_dataset(tmp_path / "data", dataset="fashion_mnist", n_train=48, n_test=30)
    dirs = []
    for seed in (5, 6):  # two tiny runs of the Fashion-MNIST variant, 12 images held out
        cfg = train_cfg(tmp_path / f"s{seed}", data_dir=data_dir, dataset="fashion_mnist", seed=seed, val_size=12,
                        max_steps=2, sample_every_epochs=0)
        runner.run(FASHION, cfg, log=quiet)
        dirs.append(str(tmp_path / f"s{seed}" / "checkpoint"))
    saved = json.loads((tmp_path / "s5/checkpoint/clustergan_fashion_mnist_4_28/config.json").read_text())
    assert (saved["model_config"]["z_dim"], saved["model_config"]["betan"], saved["model_config"]["networks"]) == (
        40, 0.0, "paper")  # the variant, recorded
    # ... and in its export, whose evaluation then clusters the softmax alone, as the run's own report
    assert not tf.saved_model.load(str(tmp_path / "s5" / "export" / "clustergan")).kmeans_on_zn.numpy()
    lines = []
    out = str(tmp_path / "seeds")
    summary = tool.seeds_report(dirs, data_dir, out, log=lines.append)
    runs = summary["runs"]
    assert [r["seed"] for r in runs] == [5, 6] and summary["n"] == 2 and len(lines) == 3
    assert all(r["kmeans_features"] == "softmax" and r["g_iterations"] == 0 for r in runs)  # 2 critic steps
    best = max(runs, key=lambda r: r["validation"]["kmeans_purity"])
    # The selected run's scores are what its own evaluation gives (main.py --is_train False).
    cfg = train_cfg(tmp_path / f"s{best['seed']}", data_dir=data_dir, dataset="fashion_mnist", seed=best["seed"],
                    val_size=12)
    gan = runner.run(FASHION, cfg, is_train=False, log=quiet)
    own = json.loads((tmp_path / f"s{best['seed']}" / "evaluate" / "clustergan_clustering.json").read_text())
    assert best["test"] == pytest.approx({k: own[k] for k in best["test"]})
    assert best["step"] == own["checkpoint"]["step"] == 2
    assert best["validation"]["kmeans_purity"] == pytest.approx(own["checkpoint"]["validation"]["kmeans_purity"])
    assert best["validation"]["kmeans_purity"] == pytest.approx(
        gan.cluster_report(*gan.validation_set())["kmeans_purity"])
    assert summary["best_of_n"]["seed"] == best["seed"] and summary["best_of_n"]["test"] == best["test"]
    for k in ("kmeans_purity", "kmeans_nmi", "kmeans_ari", "acc"):
        values = [r["test"][k] for r in runs]
        assert summary["mean_std"][k]["mean"] == pytest.approx(np.mean(values))
        assert summary["mean_std"][k]["std"] == pytest.approx(abs(values[0] - values[1]) / 2)  # ddof 0
    assert json.loads(open(out + ".json").read()) == json.loads(json.dumps(summary))
    table = open(out + ".md").read().splitlines()
    assert table[2].startswith("| run | checkpoint step |") and len(table) == 8  # title, blank, header, rule, 2 runs,
    # the best of 2 and the mean +- std
    assert table[-2].startswith(f"| **best of 2 by validation purity** (seed {best['seed']}) |")
    assert f"**{best['test']['kmeans_purity']:.4f}**" in table[-2]
    s = summary["mean_std"]["kmeans_nmi"]
    assert f"{s['mean']:.4f} +- {s['std']:.4f}" in table[-1]

    # Runs of different setups, or without a validation split, are refused in one line.
    with pytest.raises(UsageError, match="differ in model_config"):
        tool.summarize([runs[0], {**runs[1], "model_config": {**runs[1]["model_config"], "betan": 10.0}}])
    noval = tmp_path / "noval"
    noval.mkdir()
    (noval / "config.json").write_text(json.dumps({**saved, "val_size": 0}))
    with pytest.raises(UsageError, match=r"noval was trained without --val_size: it has no validation split"):
        tool.seeds_report([str(noval)], data_dir, out, log=quiet)


def test_seeds_tool_training_commands_and_refusals(tmp_path):
    tool = clustergan_seeds
    cmd = tool.train_command(3, str(tmp_path / "r"), "data", ["--recipe", "paper", "--val_size=5000"])
    assert cmd[1:4] == ["-m", "cogan_tf", "main"] and cmd[-3:] == ["--recipe", "paper", "--val_size=5000"]
    assert {"--is_train=True", "--model=clustergan", "--seed=3", "--data_dir=data"} <= set(cmd)
    for flag, sub in (("checkpoint", "checkpoint"), ("sample", "samples"), ("log", "logs"), ("export", "export"),
                      ("evaluate", "evaluate")):
        assert f"--{flag}_dir={tmp_path / 'r' / 'seed3' / sub}" in cmd
    with pytest.raises(UsageError, match="--main_flags: --seed=1 is set by the tool for each seed; leave it out"):
        tool.train_command(3, "r", "data", ["--seed=1"])
    assert tool.parse_seeds("0, 1,2") == [0, 1, 2]
    for bad in ("0,x", "1,1", "-1"):
        with pytest.raises(UsageError, match="--train_seeds="):
            tool.parse_seeds(bad)


@pytest.mark.slow
def test_seeds_tool_trains_two_seeds_with_main_and_reports(tmp_path):
    data_dir = write_fake_dataset(tmp_path / "data", n_train=40, n_test=20)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "clustergan_seeds.py"), "--train_seeds=0,1",
                        f"--runs_root={tmp_path / 'runs'}", f"--data_dir={data_dir}", f"--out={tmp_path / 'seeds'}",
                        "--main_flags=--recipe paper --dataset mnist --batch_size 4 --val_size 12 --max_steps 2 --save_every 0 "
                        "--sample_every_epochs 0 --log_every 0"], capture_output=True, text=True, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((tmp_path / "seeds.json").read_text())
    assert [run["seed"] for run in summary["runs"]] == [0, 1] and summary["recipe"] == "paper"
    assert all(run["model_config"]["networks"] == "paper" and run["step"] == 2 for run in summary["runs"])
    assert r.stdout.strip().splitlines()[-1].startswith("best of 2 by validation purity: seed ")
