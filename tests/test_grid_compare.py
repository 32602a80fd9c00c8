"""cogan_tf/evaluate/grid_compare.py, ``--grid_dirs RUN REFERENCE``: a CoGAN run's sample grids against another
run's, by name and training step (``train_EE_IIII`` is step EE x 546 + IIII + 1); each grid stretched to 0..255 as
the original's imsave wrote it, so a dim grid scores as a stretched one; the names only one side holds named, not
scored; the table, the JSON and the plot; directories it cannot compare refused in one line."""

import json
import os

import numpy as np
import pytest

from cogan_tf import images
from cogan_tf.errors import UsageError
from cogan_tf.evaluate import grid_compare as gc
from tests.conftest import ROOT, digit_grid, write_pair


@pytest.fixture
def env(evaluation_env):
    """The classifier and the CoGAN run's checkpoint and export that the evaluation is tested on (conftest)."""
    return evaluation_env


PUBLISHED = os.path.join(os.path.dirname(ROOT), "shared", "reference", "andrewliao11", "samples")


def test_grid_step_from_name():

    assert gc.STEPS_PER_EPOCH == 70000 // 128 == 546
    assert gc.grid_step("train_00_0099") == 100
    assert gc.grid_step("train_01_0053") == 546 + 53 + 1
    assert gc.grid_step("train_24_0495") == 24 * 546 + 496
    assert gc.grid_step("train_02_0010", steps_per_epoch=100) == 211
    assert gc.grid_step("test_00") is None and gc.grid_step("train_00_0099.png") is None


def test_stretch_maps_each_grid_to_full_range():

    x = np.linspace(0.2, 0.6, 64 * 28 * 28, dtype=np.float32).reshape(64, 28, 28, 1)
    y = gc.stretch(x)
    assert y.min() == 0.0 and y.max() == 1.0
    np.testing.assert_allclose(y, (x - 0.2) / 0.4, atol=0.5 / 255 + 1e-6)  # linear, then rounded to bytes
    np.testing.assert_array_equal(gc.stretch(y), y)  # a stretched grid stays as it is
    # A constant grid: bytescale takes max - min as 1, so it comes out black, as the original wrote it.
    np.testing.assert_array_equal(gc.stretch(np.full((64, 28, 28, 1), 0.3, np.float32)), 0.0)


@pytest.fixture
def grid_dirs(tmp_path):
    """RUN: three perfect pairs (bot = 1 - top) plus one name only it holds (and a top without its bot).
    REFERENCE: the same three names, perfect / not inverted / inverse of other digits, plus its own name."""
    run, ref = tmp_path / "run", tmp_path / "ref"
    t = digit_grid()
    for name in ("train_00_0099", "train_01_0053", "train_02_0007", "train_03_0061"):
        write_pair(run, name, t, 1 - t)
    images.save_grid(str(run / "top" / "train_04_0015.png"), t)  # no bot/train_04_0015.png: not a pair
    write_pair(ref, "train_00_0099", t, 1 - t)
    write_pair(ref, "train_01_0053", t, t)  # not inverted: 1 - bot disagrees with top everywhere
    write_pair(ref, "train_02_0007", t, 1 - digit_grid(shift=5))  # coupled to the wrong digit
    write_pair(ref, "train_05_0069", t, 1 - t)
    return str(run), str(ref)


def test_grid_dirs_scores_common_names_by_step(tmp_path, env, grid_dirs):
    from PIL import Image

    run, ref = grid_dirs
    out, plot = str(tmp_path / "o" / "report.json"), str(tmp_path / "o" / "curves.png")
    lines = []
    report = gc.run(gc.read_grid_dirs(run, ref), env["data_dir"], out=out, plot=plot, clf=env["clf"],
                    log=lines.append)
    g = report["grids"]
    assert [x["name"] for x in g] == ["train_00_0099", "train_01_0053", "train_02_0007"]
    assert [x["step"] for x in g] == [100, 600, 2 * 546 + 8]
    assert report["only_in_run"] == ["train_03_0061"] and report["only_in_reference"] == ["train_05_0069"]
    assert report["run"]["pairs"] == report["reference"]["pairs"] == 4
    for x in g:
        assert x["run"]["pixel_agreement"] == 1.0 and x["run"]["label_agreement"] == 1.0
        assert x["run"]["top"]["effective_classes"] == pytest.approx(10, rel=0.05)  # 64 cells of 10 digits
    assert g[0]["reference"]["pixel_agreement"] == 1.0 and g[0]["reference"]["label_agreement"] == 1.0
    assert g[1]["reference"]["pixel_agreement"] == 0.0
    assert g[2]["reference"]["label_agreement"] < 0.1 and 0.0 < g[2]["reference"]["pixel_agreement"] < 1.0
    assert report["mean"]["reference"]["pixel_agreement"] == pytest.approx(
        np.mean([x["reference"]["pixel_agreement"] for x in g]))
    for side in ("run", "reference"):
        for d in ("top", "bot"):
            assert np.isfinite(g[0][side][d]["frechet_distance"]) and len(g[0][side][d]["histogram"]) == 10

    with open(out) as f:
        assert json.load(f) == json.loads(json.dumps(report))
    table = "\n".join(lines)
    row = next(x for x in table.splitlines() if " train_01_0053 " in x).split()
    assert row[:4] == ["600", "train_01_0053", "1.000", "0.000"]  # pixel agreement: run, reference
    assert row[4:6] == [f"{g[1][side]['label_agreement']:.3f}" for side in ("run", "reference")]
    assert row[12:14] == [f"{g[1][side]['bot']['effective_classes']:.3f}" for side in ("run", "reference")]
    assert row[-2:] == [f"{g[1][side]['ink']['bot']:.3f}" for side in ("run", "reference")]
    assert "train_03_0061" in table and "train_05_0069" in table  # named as not scored
    assert "train_04_0015" not in table
    with Image.open(plot) as im:
        assert im.format == "PNG" and im.size == (2000, 800)  # 2x4 panels: the ink is the sixth
        assert np.asarray(im.convert("L")).std() > 10  # drawn on, not blank


def test_grid_dirs_stretch_scores_a_dim_run_like_a_stretched_one(tmp_path, env):

    t = digit_grid()
    write_pair(tmp_path / "dim", "train_00_0099", 0.1 + 0.3 * t, 0.1 + 0.3 * (1 - t))  # written x 255: 26..102
    write_pair(tmp_path / "full", "train_00_0099", t, 1 - t)
    report = gc.compare_grid_dirs(gc.read_grid_dirs(str(tmp_path / "dim"), str(tmp_path / "full")), env["clf"],
                                  env["ref"])
    dim, full = report["grids"][0]["run"], report["grids"][0]["reference"]
    assert report["stretched"] is True
    assert dim["pixel_agreement"] == full["pixel_agreement"] == 1.0  # unstretched, no pixel would pass 0.5
    assert dim["top"]["classifier_score"] == pytest.approx(full["top"]["classifier_score"], rel=1e-3)


def test_grid_dirs_refusals(tmp_path):

    a, b = tmp_path / "a", tmp_path / "b"
    write_pair(a, "train_00_0099", digit_grid(), 1 - digit_grid())
    with pytest.raises(UsageError, match=r"^REFERENCE .*/nope: no such directory; andrewliao11's published grids: "
                                         r"`python download.py andrewliao11` puts them in data/andrewliao11/samples"):
        gc.read_grid_dirs(str(a), str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"^RUN .*/empty: no top/\*\.png or bot/\*\.png grids here"):
        gc.read_grid_dirs(str(tmp_path / "empty"), str(a))
    write_pair(b, "g1", digit_grid(), 1 - digit_grid())
    write_pair(b, "g2", digit_grid(), 1 - digit_grid())
    with pytest.raises(UsageError) as e:
        gc.read_grid_dirs(str(a), str(b))
    assert str(e.value) == (f"no grid name in common: RUN {a} holds 1 pair (train_00_0099); "
                            f"REFERENCE {b} holds 2 pairs (g1, g2)")
    with pytest.raises(UsageError, match="--plot: no grid name of the form train_EE_IIII"):
        write_pair(a, "g1", digit_grid(), 1 - digit_grid())
        gc.check_plot(gc.read_grid_dirs(str(a), str(b)))
    broken = b / "bot" / "train_00_0099.png"
    write_pair(b, "train_00_0099", digit_grid(), 1 - digit_grid())
    broken.write_bytes(b"not a png")
    with pytest.raises(images.GridError, match=f"^{broken}: not a readable image"):
        gc.read_grid_dirs(str(a), str(b))


def test_grid_dirs_on_the_published_grids(tmp_path, env):
    """andrewliao11's published grids (shared/, beside the repository; not shipped with the project) as
    REFERENCE: they are RGB with equal channels and each spans 0..255; read and scored by name and step."""
    if not os.path.isdir(PUBLISHED):
        pytest.skip(f"{PUBLISHED}: andrewliao11's published grids are not beside this repository")

    t = digit_grid()
    for name in ("train_00_0099", "train_24_0495"):
        write_pair(tmp_path / "run", name, t, 1 - t)
    dirs = gc.read_grid_dirs(str(tmp_path / "run"), PUBLISHED)
    assert dirs.names == ["train_00_0099", "train_24_0495"] and len(dirs.reference_names) == 136
    for name in dirs.names:
        for d in ("top", "bot"):
            raw = images.read_grid(os.path.join(PUBLISHED, d, f"{name}.png"))  # RGB, read as L
            assert raw.shape == (64, 28, 28, 1) and raw.min() == 0.0 and raw.max() == 1.0
            np.testing.assert_array_equal(dirs.pairs["reference"][name].images[d], raw)  # stretching: no change
    report = gc.compare_grid_dirs(dirs, env["clf"], env["ref"])
    assert [g["step"] for g in report["grids"]] == [100, 13600]
    assert len(report["only_in_reference"]) == 134
    first, last = (g["reference"]["pixel_agreement"] for g in report["grids"])
    # By the last epoch the published pairs are coupled (the bottom image is the top one inverted);
    # at step 100 both are textures.
    assert last > 0.9 and last > first
