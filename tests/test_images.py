import numpy as np
import pytest

from cogan_tf import images


def test_grid_layout_size_and_values(tmp_path):
    x = np.zeros((64, 28, 28, 1), np.float32)
    for i in range(64):
        x[i] = i / 63.0
    g = images.make_grid(x)
    assert g.shape == (224, 224) and g.dtype == np.uint8
    assert g[0, 0] == 0 and g[0, 28] == round(255 / 63) and g[28, 0] == round(8 * 255 / 63) and g[-1, -1] == 255


def test_grid_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((128, 28, 28, 1)).astype(np.float32)
    p = images.save_grid(str(tmp_path / "top" / "train_00_0099.png"), x)
    back = images.read_grid(p)
    assert back.shape == (64, 28, 28, 1)
    np.testing.assert_allclose(back, np.rint(x[:64] * 255) / 255, atol=1e-6)


def test_grid_errors(tmp_path):
    with pytest.raises(images.GridError, match="at least 64"):
        images.make_grid(np.zeros((10, 28, 28)))
    p = tmp_path / "odd.png"
    images.save_png(str(p), np.zeros((30, 56), np.uint8))
    with pytest.raises(images.GridError, match="56x30 pixels is not a grid of 28x28"):
        images.read_grid(str(p))
    (tmp_path / "not.png").write_bytes(b"hello")
    with pytest.raises(images.GridError, match="not a readable image"):
        images.read_grid(str(tmp_path / "not.png"))
    with pytest.raises(images.GridError, match="no such file"):
        images.read_grid(str(tmp_path / "missing.png"))


def test_gif(tmp_path):
    paths = [images.save_grid(str(tmp_path / f"{i}.png"), np.full((64, 28, 28), i / 3.0)) for i in range(3)]
    out = images.save_gif(str(tmp_path / "a.gif"), paths)
    from PIL import Image
    with Image.open(out) as im:
        assert im.n_frames == 3 and im.size == (224, 224)
