"""Atomic writes: a file is complete or absent; a failed write leaves no temporary file behind."""

import pytest

from asr.fileio import atomic_path, atomic_write_text


def test_atomic_write_replaces_the_file_whole(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.flac"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target, ".flac") as tmp:
            assert tmp.name == "a.flac.tmp.flac"
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.flac"]
