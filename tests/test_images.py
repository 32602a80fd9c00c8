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


def png_of_zeros(path, width, height, depth=8, colour=0):
    """A valid PNG of width x height black pixels, written row by row (a 14000 x 14000 one in a fraction of
    a second and 200 kB), without holding the image in memory."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    row = b"\0" * (1 + width * channels * depth // 8)  # filter byte, then the pixels
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    with open(path, "wb") as f:
        f.write(images.PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
                + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return str(path)


def saved(tmp_path, name, array, mode):
    from PIL import Image

    path = tmp_path / f"{name}.png"
    Image.fromarray(array).convert(mode).save(path) if mode else Image.fromarray(array).save(path)
    return str(path)


def test_grids_of_every_faithful_kind_read_the_same_values(tmp_path):
    """8-bit greyscale, RGB or palette with equal channels (the original's grids are RGB), 1-bit and
    opaque alpha give the very pixels written."""
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (56, 84), dtype=np.uint8)
    expected = images.read_grid(saved(tmp_path, "grey", grey, None))
    assert expected.shape == (6, 28, 28, 1) and expected.max() > 0.99
    np.testing.assert_array_equal(expected.reshape(2, 3, 28, 28).transpose(0, 2, 1, 3).reshape(56, 84),
                                  grey.astype(np.float32) / 255)
    for mode in ("RGB", "RGBA", "LA", "P"):
        np.testing.assert_array_equal(images.read_grid(saved(tmp_path, mode, grey, mode)), expected, err_msg=mode)
    bits = (grey > 127).astype(np.uint8) * 255
    np.testing.assert_array_equal(images.read_grid(saved(tmp_path, "bits", bits, "1")).reshape(-1),
                                  images.read_grid(saved(tmp_path, "bits_l", bits, None)).reshape(-1))


def test_grids_that_cannot_be_read_faithfully_are_refused_by_name(tmp_path):
    from PIL import Image

    wide = np.full((28, 56), 30000, np.uint16)  # 16-bit greyscale: 0.46 of white, which L would clip to 1.0
    p16 = str(tmp_path / "g16.png")
    Image.fromarray(wide).save(p16)
    with pytest.raises(images.GridError, match=f"^{p16}: 16-bit greyscale: grids are read as 8-bit greyscale, and 16 "
                                               "bits would be clipped; save it with 8 bits per channel$"):
        images.read_grid(p16)
    rgb48 = png_of_zeros(tmp_path / "rgb48.png", 56, 28, depth=16, colour=2)
    with pytest.raises(images.GridError, match="^.*rgb48.png: 16-bit RGB: grids are read as 8-bit"):
        images.read_grid(rgb48)
    colour = np.zeros((28, 28, 3), np.uint8)
    colour[3, 4] = (200, 10, 10)
    pc = str(tmp_path / "colour.png")
    Image.fromarray(colour).save(pc)
    with pytest.raises(images.GridError, match=f"^{pc}: a colour image \\(its channels differ\\); a grid is greyscale"):
        images.read_grid(pc)
    clear = np.full((28, 28, 4), 255, np.uint8)
    clear[0, 0, 3] = 0
    pt = str(tmp_path / "clear.png")
    Image.fromarray(clear).save(pt)
    with pytest.raises(images.GridError, match=f"^{pt}: has transparent pixels"):
        images.read_grid(pt)
    jpeg = str(tmp_path / "grid.png")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(jpeg, format="JPEG")  # lossy, whatever its name
    with pytest.raises(images.GridError, match=f"^{jpeg}: not a readable image \\(not a PNG file"):
        images.read_grid(jpeg)


@pytest.mark.parametrize("side", [14000, 9800, 2828])
def test_a_huge_png_is_refused_from_its_header(tmp_path, side):
    """Not decoded: PIL's decompression-bomb error for 14000 x 14000, 116 s and 4 GB for 9800 x 9800."""
    import time

    path = png_of_zeros(tmp_path / "huge.png", side, side)
    start = time.perf_counter()
    with pytest.raises(images.GridError) as e:
        images.read_grid(path)
    assert time.perf_counter() - start < 1.0
    cells = (side // 28) ** 2
    assert str(e.value) == (f"{path}: {side}x{side} pixels ({side // 28}x{side // 28} = {cells} cells): not a grid of "
                            "samples (at most 10,000 cells are read; an 8x8 grid is 224x224 pixels)")
    assert images.read_grid(png_of_zeros(tmp_path / "largest.png", 2800, 2800)).shape == (10_000, 28, 28, 1)
