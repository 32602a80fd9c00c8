"""cogan_tf/history.py: the PyTorch ports' per-epoch history (losses.json) survives a resume and a re-run
epoch, and the end of a run draws the GIF of the epoch grids and the loss plots from it."""

import json

import numpy as np
from PIL import Image

from cogan_tf import images
from cogan_tf.history import EpochHistory, finish_outputs


def test_the_history_is_keyed_by_epoch_and_read_back(tmp_path):
    h = EpochHistory(str(tmp_path))
    h.record(0, {"g_loss": 1.0, "d_loss": 2.0, "grid": "img_0.png"})
    h.record(1, {"g_loss": 0.5, "d_loss": 1.5})
    h.record(0, {"g_loss": 0.9, "d_loss": 1.9})  # epoch 0 again (resumed from an older checkpoint): replaced
    again = EpochHistory(str(tmp_path))
    assert again.epochs == {0: {"g_loss": 0.9, "d_loss": 1.9}, 1: {"g_loss": 0.5, "d_loss": 1.5}}
    assert list(again.upto(1)) == [0]  # entries of a longer, earlier run left out
    (tmp_path / "losses.json").write_text("{damaged")
    assert EpochHistory(str(tmp_path)).epochs == {}  # a damaged history starts again rather than stop training


def test_the_end_of_a_run_draws_the_gif_and_the_plots(tmp_path):
    h = EpochHistory(str(tmp_path))
    lines = []
    assert finish_outputs(h, 2, {"loss.png": {"G": "g_loss"}}, log=lines.append) == {}
    assert lines == [" [!] no epoch grids yet: no GIF written", " [!] no complete epoch yet: no loss plot written"]
    for e in range(3):
        name = f"img_{e}.png"
        images.save_grid(str(tmp_path / name), np.full((4, 28, 28, 1), e / 2, np.float32), rows=2, cols=2)
        h.record(e, {"g_loss": 1.0 / (e + 1), "d_loss": 1.0, "grid": name})
    out = finish_outputs(h, 2, {"loss.png": {"G": "g_loss", "D": "d_loss"}}, log=lines.append)
    assert sorted(out) == ["gif", "loss.png"]
    with Image.open(out["gif"]) as gif:
        assert gif.n_frames == 2  # epochs 0 and 1 of a 2-epoch run
    with Image.open(out["loss.png"]) as png:
        assert png.format == "PNG" and png.size == (640, 480)
    assert json.loads((tmp_path / "losses.json").read_text())["epochs"]["2"]["grid"] == "img_2.png"
