"""cogan_tf/evaluate/curve.py, the CoGAN paper's score over training: every checkpoint of a run scored as its
export is (the last point is the export's), points already scored reused, runs of one pair combined step by step
(runs of different pairs refused); and its command line, tools/cogan_curve.py, writing the JSON and the plot."""

import json
import os

import pytest


@pytest.fixture
def env(edge_pair_env):
    """The classifier and a CoGAN run of two steps on the edge pair, a checkpoint after each (conftest)."""
    return edge_pair_env


def test_the_curve_scores_every_checkpoint_and_reuses_done_points(env, tmp_path):
    from cogan_tf.errors import UsageError
    from cogan_tf.evaluate import curve

    lines = []
    c = curve.score_checkpoints(env["checkpoint"], env["data_dir"], n=64, clf=env["clf"], log=lines.append)
    assert c["pair"] == "edge" and [p["step"] for p in c["points"]] == [1, 2]
    assert c["last"] is c["points"][-1] and c["best"]["pixel_agreement"] == max(p["pixel_agreement"] for p in c["points"])
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
