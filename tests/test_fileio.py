"""cogan_tf/fileio.py, atomic file output: a file or a folder is written under a temporary name beside it and
renamed into place only once complete, so an interrupted write leaves what was there before and no temporary
behind; whether a folder can be written is probed without leaving folders, and named precisely when it cannot; a
JSON file is read back or refused in one line naming it."""

import errno
import os

import pytest

from cogan_tf import fileio
from cogan_tf.errors import DataError


def test_an_interrupted_write_leaves_what_was_there_and_no_temporary(tmp_path):
    path = tmp_path / "sub" / "r.json"
    fileio.atomic_write_text(str(path), "old")
    assert path.read_text() == "old" and path.stat().st_mode & 0o777 == 0o644
    with pytest.raises(KeyboardInterrupt):
        with fileio.atomic_path(str(path)) as tmp:
            assert os.path.dirname(tmp) == str(path.parent) and os.path.basename(tmp).startswith(".tmp-r.json-")
            with open(tmp, "w") as f:
                f.write("half")
            raise KeyboardInterrupt
    assert path.read_text() == "old" and os.listdir(path.parent) == ["r.json"]
    # A write that fails is named by the file the user knows, not by its temporary name.
    with pytest.raises(OSError) as e:
        with fileio.atomic_path(str(path)) as tmp:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), tmp)
    assert e.value.filename == str(path) and os.listdir(path.parent) == ["r.json"]
    # A folder is replaced whole, and only once the new one is complete.
    folder = tmp_path / "export"
    with fileio.atomic_path(str(folder), is_dir=True) as tmp:
        with open(os.path.join(tmp, "a"), "w") as f:
            f.write("1")
    with pytest.raises(RuntimeError):
        with fileio.atomic_path(str(folder), is_dir=True) as tmp:
            with open(os.path.join(tmp, "b"), "w") as f:
                f.write("2")
            raise RuntimeError("killed half way")
    assert os.listdir(folder) == ["a"] and sorted(os.listdir(tmp_path)) == ["export", "sub"]
    with fileio.atomic_path(str(folder), is_dir=True) as tmp:
        with open(os.path.join(tmp, "b"), "w") as f:
            f.write("2")
    assert os.listdir(folder) == ["b"] and sorted(os.listdir(tmp_path)) == ["export", "sub"]


def test_read_json_reads_it_back_or_refuses_in_one_line(tmp_path):
    p = tmp_path / "r.json"
    what = "a JSON report"
    fileio.atomic_write_text(str(p), '{"n": 64}')
    assert fileio.read_json(str(p), what) == {"n": 64}
    for content, said in (("", f"{p}: an empty file, not a JSON report"),
                          ("{", f"{p}: not a JSON report (Expecting property name enclosed in double quotes: "
                                "line 1 column 2 (char 1))")):
        p.write_text(content)
        with pytest.raises(DataError) as e:
            fileio.read_json(str(p), what)
        assert str(e.value) == said
    with pytest.raises(DataError, match=f"^{tmp_path}/nothing.json: no such file; expected a JSON report$"):
        fileio.read_json(str(tmp_path / "nothing.json"), what)
    with pytest.raises(DataError, match=f"^{tmp_path}: a folder, not a JSON report$"):
        fileio.read_json(str(tmp_path), what)


def test_probing_leaves_no_folders_and_names_long_names_and_links(tmp_path):
    deep = tmp_path / "a" / "b" / "c"
    assert fileio.unwritable_dir(str(deep)) is None
    assert not (tmp_path / "a").exists()
    long = os.path.join(str(tmp_path), *(["x" * 200] * 16), "y" * 300)
    assert fileio.unwritable_dir(long) == "a name in the path is too long"
    assert os.listdir(tmp_path) == []
    os.symlink(str(tmp_path / "nowhere"), str(tmp_path / "dangling"))
    assert fileio.unwritable_dir(str(tmp_path / "dangling")) == f"a symbolic link to {tmp_path / 'nowhere'}, which does not exist"
    os.symlink(str(tmp_path / "loop"), str(tmp_path / "loop"))
    assert fileio.unwritable_dir(str(tmp_path / "loop")) == "a symbolic link that loops"
