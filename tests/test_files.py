"""One-line file errors: reading, writing, devices, output folders."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from recastkit._atomic import write_text_atomic
from recastkit._files import check_output_dir, read_text
from recastkit.exceptions import ConfigError, FileAccessError


def test_read_text_errors_name_the_file_and_never_paste_bytes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_bytes(b"ok: 1\n\xc3\x28 broken")
    with pytest.raises(ConfigError) as err:
        read_text(bad, "configuration file", ConfigError)
    assert str(err.value) == (f"{bad}: cannot read configuration file: not UTF-8 text "
                              "(undecodable byte 0xc3 at offset 6)")
    with pytest.raises(FileAccessError, match="is a directory, not a file"):
        read_text(tmp_path)
    with pytest.raises(FileAccessError, match="no such file or folder"):
        read_text(tmp_path / "missing.txt")


def test_atomic_write_errors_are_file_access_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(FileAccessError) as err:
        write_text_atomic(blocker / "sub" / "out.json", "{}")
    assert isinstance(err.value, OSError)
    assert f"{blocker} is a file, not a folder" in str(err.value)
    with pytest.raises(FileAccessError, match="is a directory, not a file"):
        write_text_atomic(tmp_path, "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null")
def test_devices_are_written_in_place_not_replaced() -> None:
    write_text_atomic("/dev/null", "discarded\n")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_check_output_dir(tmp_path: Path) -> None:
    check_output_dir(tmp_path / "new" / "deeper")  # creatable: fine, nothing created
    assert not (tmp_path / "new").exists()
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(FileAccessError, match="it is a file, not a folder"):
        check_output_dir(f)
    with pytest.raises(FileAccessError, match=f"{f} is a file, not a folder"):
        check_output_dir(f / "a" / "b")
