"""``python download.py andrewliao11``: andrewliao11's published grids, fetched at a pinned commit and
verified file by file, from a local copy, a URL (file:// here: the same urllib path as https://), or
refused in one line that says how to clone them."""

import hashlib
import os
import subprocess
import sys

import pytest

from cogan_tf import published
from cogan_tf.errors import DownloadError
from tests.conftest import ROOT

REFERENCE = os.path.join(ROOT, "..", "shared", "reference", "andrewliao11")


def test_manifest_is_every_grid_the_original_wrote():
    """136 pairs: the grids of steps 100, 200, ..., 13,600 of 25 epochs of 546 steps, named by the
    epoch and index of the step counted from 0 (docs/ORIGINAL.md §1.8)."""
    names = {f"train_{(s - 1) // 546:02d}_{(s - 1) % 546:04d}.png" for s in range(100, 25 * 546 + 1, 100)}
    assert len(names) == 136
    assert set(published.MANIFEST) == {f"{d}/{n}" for d in ("top", "bot") for n in names}
    assert all(len(digest) == 64 and size > 1000 for digest, size in published.MANIFEST.values())
    assert len(published.COMMIT) == 40 and published.COMMIT in published.BASE_URL


def fake_mirror(tmp_path, n=3):
    """A folder laid out like the repository (samples/top, samples/bot) and its manifest."""
    root = tmp_path / "mirror"
    manifest = {}
    for d in ("top", "bot"):
        (root / "samples" / d).mkdir(parents=True)
        for i in range(n):
            blob = f"{d} grid {i}".encode() * 50
            (root / "samples" / d / f"train_00_{i:04d}.png").write_bytes(blob)
            manifest[f"{d}/train_00_{i:04d}.png"] = (hashlib.sha256(blob).hexdigest(), len(blob))
    return root, manifest


def test_fetch_from_a_url_verifies_keeps_and_repairs(tmp_path):
    root, manifest = fake_mirror(tmp_path)
    data_dir = str(tmp_path / "data")
    url = (root / "samples").as_uri() + "/"
    logs = []
    dest = published.fetch(data_dir, base_url=url, manifest=manifest, log=logs.append)
    assert dest == os.path.join(data_dir, "andrewliao11", "samples")
    assert sorted(os.listdir(os.path.join(dest, "top"))) == ["train_00_0000.png", "train_00_0001.png",
                                                              "train_00_0002.png"]
    assert "(6 fetched)" in logs[-1]
    # A damaged file is fetched again; intact ones are kept.
    damaged = os.path.join(dest, "bot", "train_00_0001.png")
    with open(damaged, "r+b") as f:
        f.write(b"X")
    logs.clear()
    published.fetch(data_dir, base_url=url, manifest=manifest, log=logs.append)
    assert logs[0].startswith("andrewliao11: 1 of 6 grids") and "(1 fetched)" in logs[-1]
    assert published.verified(damaged, manifest["bot/train_00_0001.png"])


def test_fetch_from_a_clone_or_a_samples_folder(tmp_path):
    root, manifest = fake_mirror(tmp_path)
    for i, source in enumerate((root, root / "samples")):
        dest = published.fetch(str(tmp_path / f"d{i}"), source=str(source), base_url="http://127.0.0.1:9/",
                               manifest=manifest, log=lambda s: None)
        assert len(os.listdir(os.path.join(dest, "bot"))) == 3


def test_a_file_that_is_not_the_published_one_is_refused(tmp_path):
    root, manifest = fake_mirror(tmp_path)
    (root / "samples" / "top" / "train_00_0002.png").write_bytes(b"something else")
    with pytest.raises(DownloadError, match="1 of 6 grids missing .*top/train_00_0002.png.*git clone") as e:
        published.fetch(str(tmp_path / "d"), source=str(root), base_url="http://127.0.0.1:9/",
                        manifest=manifest, log=lambda s: None)
    assert "\n" not in str(e.value)
    assert not os.path.exists(tmp_path / "d" / "andrewliao11" / "samples" / "top" / "train_00_0002.png")


def test_offline_fails_in_one_line_with_the_clone_command(tmp_path):
    r = subprocess.run([sys.executable, "download.py", "andrewliao11", "--data_dir", str(tmp_path),
                        "--andrewliao11_url", "http://127.0.0.1:9/", "--timeout", "2"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: andrewliao11: 272 of 272 grids missing") and "unreachable" in last
    assert f"git clone https://github.com/{published.REPOSITORY}" in last
    assert not os.path.exists(tmp_path / "andrewliao11" / "samples" / "top")


@pytest.mark.skipif(not os.path.isdir(REFERENCE), reason="needs a copy of andrewliao11's samples/ folder")
def test_the_manifest_matches_the_published_grids(tmp_path):
    dest = published.fetch(str(tmp_path), source=REFERENCE, base_url="http://127.0.0.1:9/", log=lambda s: None)
    assert len(os.listdir(os.path.join(dest, "top"))) == len(os.listdir(os.path.join(dest, "bot"))) == 136
