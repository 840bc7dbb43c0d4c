from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from ansible_collections.dockhand.containers.plugins.module_utils._migrate import directory_contents, tar_contents


def tree(root: Path) -> None:
    (root / "dir" / "empty").mkdir(parents=True)
    (root / "dir" / "file").write_bytes(b"content")
    (root / "top").write_bytes(b"")
    os.link(root / "dir" / "file", root / "hard")
    os.symlink("dir/file", root / "link")


def as_tar(root: Path) -> list[bytes]:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(str(root), arcname=".")
    data = buffer.getvalue()
    return [data[i:i + 1000] for i in range(0, len(data), 1000)]  # chunked like the Engine's stream


def test_a_tree_and_its_tar_have_the_same_contents_hard_links_as_files(tmp_path: Path) -> None:
    tree(tmp_path)
    on_disk = directory_contents(str(tmp_path))
    assert on_disk == tar_contents(as_tar(tmp_path))
    assert on_disk["dir"] == on_disk["dir/empty"] == "dir"
    assert on_disk["hard"] == on_disk["dir/file"] != on_disk["top"]
    assert on_disk["link"] == "link:dir/file"
    assert len(on_disk) == 6


def test_a_changed_byte_changes_the_contents(tmp_path: Path) -> None:
    tree(tmp_path)
    archived = tar_contents(as_tar(tmp_path))
    (tmp_path / "dir" / "file").write_bytes(b"Content")
    assert directory_contents(str(tmp_path)) != archived
