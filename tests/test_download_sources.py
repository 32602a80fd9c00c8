"""cogan_tf/download_sources.py, where the dataset files come from: a file lands only once its bytes verify (gzip or
raw, in chunks of any size; one that does not verify never lands, and what was there stays), and MNIST is rebuilt
byte for byte from deeplearning.net's pickle, which is read without running any code it holds. The sources in
order, through :func:`cogan_tf.download.download`: test_download.py."""

import gzip
import hashlib
import os
import pickle

import numpy as np
import pytest

from cogan_tf import data
from cogan_tf import download_sources as srcs
from cogan_tf.errors import FileFailed
from tests.conftest import small_mnist_pickle


def chunks(raw, size=100):
    """A source's ``fetch``: ``raw`` fed to the sink ``size`` bytes at a time."""
    def feed(sink):
        for i in range(0, len(raw), size):
            sink.write(raw[i:i + size])
    return feed


def test_a_file_lands_only_once_its_bytes_verify(tmp_path):
    content = data.encode_idx(np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8))
    assert len(content) == 16 + 3 * 784
    expected = (hashlib.sha256(content).hexdigest(), len(content))
    dest = tmp_path / data.TRAIN_IMAGES
    # gzip (one byte at a time: its two-byte magic split), raw, and gzip of two members back to back.
    for raw, size in ((gzip.compress(content), 1), (content, 100),
                      (gzip.compress(content[:1000]) + gzip.compress(content[1000:]), 7)):
        srcs.land(str(dest), expected, chunks(raw, size))
        assert dest.read_bytes() == content
    assert srcs.describe_mismatch(str(dest), expected) is None
    flipped = content[:-1] + bytes([content[-1] ^ 1])
    for raw, why in ((content[:-1], "wrong size: 2367 bytes, expected 2368"),
                     (content + b"x", "more than the expected 2368 bytes"),
                     (flipped, "sha256 mismatch"),
                     (gzip.compress(content)[:50], "truncated gzip data")):
        with pytest.raises(FileFailed, match=f"^{why}"):
            srcs.land(str(dest), expected, chunks(raw))
        assert dest.read_bytes() == content and os.listdir(tmp_path) == [dest.name]
    dest.write_bytes(flipped)
    assert srcs.describe_mismatch(str(dest), expected) == "sha256 mismatch"


@pytest.mark.parametrize("protocol", [2, 5])
def test_mnist_pickle_rebuilds_idx_bytes(protocol):
    raw, expected = small_mnist_pickle(protocol)
    got = srcs.idx_from_mnist_pickle(raw)
    assert got == expected
    # Written out by hand: IDX header of 40 images of 28x28, then train+valid pixels in order.
    assert got[data.TRAIN_IMAGES][:16] == bytes.fromhex("00000803" "00000028" "0000001c" "0000001c")
    assert got[data.TRAIN_IMAGES][16:19] == bytes([0, 255, 128])
    assert got[data.TRAIN_LABELS][:8] == bytes.fromhex("00000801" "00000028")


def test_mnist_pickle_refuses_code_and_foreign_values(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with pytest.raises(data.DataError, match=r"refusing to load (posix|os)\.system"):
        srcs.idx_from_mnist_pickle(pickle.dumps(Evil()))
    assert not marker.exists()
    x = np.full((1, 784), 0.3, np.float32)  # not byte / 256
    bad = pickle.dumps(((x, np.zeros(1)), (x[:0], np.zeros(0)), (x, np.zeros(1))))
    with pytest.raises(data.DataError, match="not byte/256"):
        srcs.idx_from_mnist_pickle(bad)
