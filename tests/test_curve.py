"""cogan_tf/evaluate/curve.py, the CoGAN paper's score over training: every checkpoint of a run scored as its
export is (the last point is the export's), points already scored reused, runs of one pair and setting combined
step by step (runs of different pairs or settings refused), runs of different sharing tabulated; and its command
line, tools/cogan_curve.py, writing the JSON and the plot."""

import json
import os

import pytest


@pytest.fixture
def env(edge_pair_env):
    """The classifier and a CoGAN run of two steps on the edge pair, a checkpoint after each (conftest)."""
    return edge_pair_env


def test_the_curve_scores_every_checkpoint_and_reuses_done_points(env, tmp_path):
    from cogan_tf.errors import DataError, UsageError
    from cogan_tf.evaluate import curve

    lines = []
    c = curve.score_checkpoints(env["checkpoint"], env["data_dir"], n=64, clf=env["clf"], log=lines.append)
    assert c["pair"] == "edge" and [p["step"] for p in c["points"]] == [1, 2]
    assert c["last"] is c["points"][-1]
    assert c["best"]["pixel_agreement"] == max(p["pixel_agreement"] for p in c["points"])
    assert len([x for x in lines if "pixel agreement" in x]) == 2
    # Each point is the checkpoint's own generator: the last one is the training's export.
    last = curve.score_saved_model(env["export"], env["clf"], env["ref"], n=64)
    assert last["pixel_agreement"] == pytest.approx(c["points"][-1]["pixel_agreement"])
    assert c["points"][0]["pixel_agreement"] != pytest.approx(c["points"][1]["pixel_agreement"])
    lines.clear()
    again = curve.score_checkpoints(env["checkpoint"], env["data_dir"], n=64, clf=env["clf"], done=c, log=lines.append)
    assert again["points"] == c["points"] and not [x for x in lines if "pixel agreement" in x]
    # Two runs combine step by step; another pair does not.
    both = curve.combine([c, json.loads(json.dumps(again))])
    assert [r["step"] for r in both["rows"]] == [1, 2] and both["rows"][0]["pixel_agreement"]["std"] == 0.0
    with pytest.raises(UsageError, match="different pairs"):
        curve.combine([c, dict(c, pair="negative")])
    # The run's setting is recorded; --max_step leaves out the later checkpoints, and none at all is refused.
    assert c["setting"] == {"recipe": "original", "g_shared_layers": 4, "d_shared_layers": 3}
    early = curve.score_checkpoints(env["checkpoint"], env["data_dir"], n=64, clf=env["clf"], done=c, max_step=1,
                                    log=lines.append)
    assert [p["step"] for p in early["points"]] == [1] and early["points"][0] == c["points"][0]
    with pytest.raises(DataError, match="no checkpoint to score at step 0 or earlier"):
        curve.score_checkpoints(env["checkpoint"], env["data_dir"], n=64, clf=env["clf"], max_step=0)


def fake_curve(run, g, d, agreement, recipe="paper", pair="edge", warning=None, ink=(0.1, 0.1)):
    """A scored run as score_checkpoints returns it, its last point at step 1,001."""
    p = {"step": 1001, "pixel_agreement": agreement, "agreement_within_1px": 0.99,
         "ink": {"top": ink[0], "bot": ink[1]}, "warning": warning, "classifier_score": {"top": 5.0, "bot": 4.0},
         "label_agreement": 0.5}
    return {"run": run, "pair": pair, "dataset": "mnist", "n": 100, "threshold": 0.5, "points": [p], "last": p,
            "best": p, "setting": {"recipe": recipe, "g_shared_layers": g, "d_shared_layers": d}}


def test_runs_of_different_sharing_are_tabulated_not_combined():
    from cogan_tf.errors import UsageError
    from cogan_tf.evaluate import curve

    runs = [fake_curve("a", 4, 3, 0.92), fake_curve("b", 0, 3, 0.81),
            fake_curve("c", 4, 0, 0.97, warning="blank", ink=(0.014, 0.007))]
    with pytest.raises(UsageError, match=r"runs of different settings \(recipe paper, G shares 0, D shares 3; "
                                         r"recipe paper, G shares 4, D shares 0; .*--sharing_table"):
        curve.combine(runs)
    table = curve.sharing_table(runs)
    assert sorted(table["cells"]) == ["0/3", "4/0", "4/3"] and table["cells"]["0/3"]["run"] == "b"
    lines = curve.format_sharing_table(table).splitlines()
    assert lines[0] == "| G layers shared | D shares 0 | D shares 1 | D shares 2 | D shares 3 |"
    assert len(lines) == 2 + 5  # a row per G setting 0-4
    # Each cell: the agreement, its step, and what it is read against (ink, classifier score, label agreement,
    # blank pairs).
    assert lines[2] == "| 0 |  |  |  | 0.810 (1,001): ink 10.0% / 10.0%, score 5.00, same label 50% |"
    assert lines[6] == ("| 4 | 0.970 (1,001): ink 1.4% / 0.7%, score 5.00, same label 50%, blank |  |  | "
                        "0.920 (1,001): ink 10.0% / 10.0%, score 5.00, same label 50% |")
    assert table["cells"]["4/0"]["label_agreement"] == 0.5 and table["cells"]["4/0"]["classifier_score"]["bot"] == 4.0
    with pytest.raises(UsageError, match="a and d share the same layers \\(G 4, D 3\\): give one run per setting"):
        curve.sharing_table(runs + [fake_curve("d", 4, 3, 0.9)])
    with pytest.raises(UsageError, match="runs of recipe conditional, paper: a sharing table is of the paper"):
        curve.sharing_table(runs + [fake_curve("e", 4, 2, 0.9, recipe="conditional")])
    with pytest.raises(UsageError, match="runs of different pairs"):
        curve.sharing_table(runs + [fake_curve("f", 4, 2, 0.9, pair="negative")])
    # Seeds of one setting still combine.
    assert curve.combine([fake_curve("a", 4, 3, 0.92), fake_curve("g", 4, 3, 0.90)])["last"]["pixel_agreement"][
        "mean"] == pytest.approx(0.91)


@pytest.mark.slow  # a TensorFlow process scoring two checkpoints; the library's curve is tested above
def test_cogan_curve_tool_writes_json_and_plot_and_refuses_bad_flags(env, tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    tool = os.path.join(ROOT, "tools", "cogan_curve.py")
    run = lambda *a: subprocess.run([sys.executable, tool, *a], capture_output=True, text=True, timeout=600,  # noqa: E731
                                    env=dict(os.environ, PYTHONPATH=ROOT), cwd=str(tmp_path))
    r = run("--checkpoint_dir", env["checkpoint"], "--agreement_threshold", "0")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1] == (
        "error: --agreement_threshold=0.0: give a value between 0 and 1 (exclusive)")
    out, png = str(tmp_path / "curve.json"), str(tmp_path / "curve.png")
    r = run("--checkpoint_dir", env["checkpoint"], "--data_dir", env["data_dir"], "--num_samples", "64",
            "--out", out, "--plot", png)
    assert r.returncode == 0, r.stderr[-2000:]
    with open(out) as f:
        result = json.load(f)
    assert [p["step"] for p in result["curves"][0]["points"]] == [1, 2] and result["combined"] is None
    assert "best step" in r.stdout and os.path.getsize(png) > 10_000
    # A sharing table is of the paper recipe's runs: this run is refused before it is scored.
    r = run("--checkpoint_dir", env["checkpoint"], "--data_dir", env["data_dir"], "--sharing_table")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith(
        "error: runs of recipe original: a sharing table is of the paper CoGAN's runs")
