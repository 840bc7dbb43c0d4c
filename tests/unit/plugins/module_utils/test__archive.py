from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
from pathlib import Path
from collections.abc import Iterator
from typing import Optional

import pytest

from ansible_collections.dockhand.containers.plugins.module_utils import _archive as A

NOW = A.utc_now()


def make_tree(root: Path) -> None:
    (root / "dir" / "empty").mkdir(parents=True)
    (root / "dir" / "file").write_bytes(b"hello\n")
    os.chown(root / "dir" / "file", 1234, 5678)
    os.chmod(root / "dir", 0o751)
    os.utime(root / "dir" / "file", ns=(1_600_000_000_500_000_000, 1_600_000_000_500_000_000))
    (root / "dir" / "link").symlink_to("file")
    os.link(root / "dir" / "file", root / "hard")
    (root / "big").write_bytes(os.urandom(3 * A.CHUNK + 17))
    os.chmod(root, 0o700)


def backup(root: Path, dest: Path, compression: str = "zstd", walk_alongside: bool = True) -> tuple[str, A.Manifest]:
    path = str(dest / A.archive_name("vol", NOW, compression))
    with A.ArchiveWriter(path, compression) as writer:
        if walk_alongside:
            listing = A.archive_tree(str(root), writer)
        else:
            listing = A.host_listing(str(root))
            A.archive_directory(str(root), writer, listing)
        digest = writer.commit()
    manifest = A.Manifest(volume="vol", driver="local", options={}, labels={}, created=None,
                          archived_at=NOW.isoformat(), archive=os.path.basename(path), compression=compression,
                          compression_level=A.DEFAULT_LEVELS[compression], archive_bytes=os.path.getsize(path),
                          sha256=digest, files=listing.files, bytes=listing.bytes,
                          listing_sha256=listing.digest(), data_path="fast", collection_version="0.1.0")
    return path, manifest


@pytest.mark.parametrize("walk_alongside", [True, False], ids=["walk-alongside", "walk-first"])
@pytest.mark.parametrize("compression", A.COMPRESSIONS)
def test_backup_then_restore_keeps_content_modes_owners_times_links(
        tmp_path: Path, compression: str, walk_alongside: bool) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    make_tree(src)
    path, manifest = backup(src, tmp_path, compression, walk_alongside)
    assert manifest.sha256 == A.rehash(path)  # the digest of what is on disk, whoever wrote the file
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert not os.path.exists(path + ".partial")
    listing = A.verify_archive(path, manifest)
    A.extract_to_directory(path, manifest, str(out))
    restored = A.host_listing(str(out))
    assert restored.differences(listing) == []
    assert restored.digest() == manifest.listing_sha256
    assert (out / "big").read_bytes() == (src / "big").read_bytes()
    assert os.readlink(out / "dir" / "link") == "file"
    assert os.stat(out / "hard").st_ino == os.stat(out / "dir" / "file").st_ino
    assert os.stat(out / "dir" / "file").st_mtime == 1_600_000_000  # whole seconds, as on the engine path
    assert (os.stat(out / "dir" / "file").st_uid, os.stat(out / "dir" / "file").st_gid) == (1234, 5678)
    assert oct(os.stat(out).st_mode & 0o777) == "0o700"
    assert manifest.files == 6 and manifest.bytes == 6 + 6 + 3 * A.CHUNK + 17  # a hard link counts per name


@pytest.mark.parametrize("compression", A.COMPRESSIONS)
def test_staged_restore_replaces_the_old_data_only_with_the_verified_archive(tmp_path: Path, compression: str) -> None:
    src, vol = tmp_path / "src", tmp_path / "volume"
    data = vol / "_data"
    src.mkdir()
    data.mkdir(parents=True)
    make_tree(src)
    (data / "old").write_text("replaced")
    (data / "dir").mkdir()
    path, manifest = backup(src, tmp_path, compression)
    staging = str(vol / (A.STAGING_PREFIX + "1"))
    listing = A.extract_staged(path, manifest, staging)
    assert (data / "old").read_text() == "replaced"  # nothing the volume's users see changed yet
    A.swap_in(staging, str(data))
    assert sorted(os.listdir(vol)) == ["_data"]
    restored = A.host_listing(str(data))
    assert restored.differences(listing) == [] and restored.digest() == manifest.listing_sha256
    assert os.stat(data / "dir").st_mode & 0o777 == 0o751 and oct(os.stat(data).st_mode & 0o777) == "0o700"
    assert os.stat(data / "hard").st_ino == os.stat(data / "dir" / "file").st_ino
    assert (data / "big").read_bytes() == (src / "big").read_bytes()


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_staged_restore_without_the_decompressor_command_reads_through_the_library(
        tmp_path: Path, compression: str, monkeypatch: pytest.MonkeyPatch) -> None:
    src, vol = tmp_path / "src", tmp_path / "volume"
    (vol / "_data").mkdir(parents=True)
    src.mkdir()
    make_tree(src)
    path, manifest = backup(src, tmp_path, compression)
    only_tar = tmp_path / "bin"  # a host with GNU tar but neither the zstd nor the gzip command
    only_tar.mkdir()
    (only_tar / "tar").symlink_to(shutil.which("tar") or "/bin/tar")
    monkeypatch.setenv("PATH", str(only_tar))
    assert A._decompress_command(compression) is None
    staging = str(vol / (A.STAGING_PREFIX + "1"))
    listing = A.extract_staged(path, manifest, staging)
    A.swap_in(staging, str(vol / "_data"))
    assert A.host_listing(str(vol / "_data")).differences(listing) == []
    assert (vol / "_data" / "big").read_bytes() == (src / "big").read_bytes()


def test_pipe_gate_passes_nothing_of_an_entry_before_its_header_was_allowed(tmp_path: Path) -> None:
    source = tmp_path / "stream"
    source.write_bytes(b"h" * 512 + b"d" * 4096 + b"n" * 512)
    read_end, write_end = os.pipe()
    with open(source, "rb", buffering=0) as handle:
        gate = A._PipeGate(handle.fileno(), write_end)
        assert gate.read(512) == b"h" * 512  # a header: held until it is allowed
        with pytest.raises(A.ArchiveError, match="before its header was checked"):
            gate.seek(512 + 4096)  # passing on the entry's data now would hand tar an unchecked header
        os.set_blocking(read_end, False)
        with pytest.raises(BlockingIOError):
            os.read(read_end, 1)  # nothing reached tar's side
        gate.allow(512 + 4096)
        assert gate.seek(512 + 4096) == 512 + 4096  # header and data go once allowed, the data by splice
        assert gate.read(512) == b"n" * 512  # the next header is held again
        assert os.read(read_end, 8192) == b"h" * 512 + b"d" * 4096
        gate.finish()
        assert os.read(read_end, 8192) == b"n" * 512
    os.close(read_end)
    os.close(write_end)


def test_directory_entry_carries_the_roots_owner_mode_and_mtime(tmp_path: Path) -> None:
    root = A.Entry(".", A.KIND_DIR, 0o2750, 1234, 5678, 0, 1_600_000_000)
    data = A.directory_entry("volume", root)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        members = tar.getmembers()
    assert [(m.name, m.isdir(), m.mode, m.uid, m.gid, m.mtime) for m in members] == [
        ("volume", True, 0o2750, 1234, 5678, 1_600_000_000)]


def damage(path: str) -> None:
    with open(path, "r+b") as handle:
        handle.seek(-100, os.SEEK_END)
        handle.write(b"x")


@pytest.mark.parametrize("fault", ["damaged", "damaged-zstd", "manifest-disagrees", "unsafe-entry"])
def test_staged_restore_that_fails_leaves_the_volume_and_nothing_else(tmp_path: Path, fault: str) -> None:
    src, vol, outside = tmp_path / "src", tmp_path / "volume", tmp_path / "outside"
    for each in (src, vol / "_data", outside):
        each.mkdir(parents=True)
    (vol / "_data" / "old").write_text("kept")
    make_tree(src)
    if fault == "unsafe-entry":
        link = member("./root", tarfile.SYMTYPE, str(outside))
        # the data of an accepted entry goes to tar before the refused entry is reached
        path, manifest = crafted(tmp_path, [(member("./ok"), os.urandom(2 * A.CHUNK + 5)), (link, b""),
                                            (member("./root/x"), b"x")])
        expected = "symlink './root' points outside"
    else:
        path, manifest = backup(src, tmp_path, "none" if fault == "damaged" else "zstd")
        if fault.startswith("damaged"):
            damage(path)
            expected = "sha256 .* but its manifest says"
        else:
            manifest.files += 1
            expected = "holds 6 entries"
    with pytest.raises(A.ArchiveError, match=expected):
        A.extract_staged(path, manifest, str(vol / (A.STAGING_PREFIX + "1")))
    assert sorted(os.listdir(vol)) == ["_data"] and os.listdir(vol / "_data") == ["old"]
    assert os.listdir(outside) == []


def test_stale_staging_directories_are_removed_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "_data").mkdir()
    (tmp_path / (A.STAGING_PREFIX + "99") / "half").mkdir(parents=True)
    (tmp_path / (A.STAGING_PREFIX + "file")).write_text("not a directory we made")
    A.remove_stale_staging(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted(["_data", A.STAGING_PREFIX + "file"])


def test_damaged_archive_is_refused_by_checksum(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    path, manifest = backup(src, tmp_path)
    with open(path, "r+b") as handle:
        handle.seek(-100, os.SEEK_END)
        handle.write(b"x")
    with pytest.raises(A.ArchiveError, match="sha256|zstd"):
        A.verify_archive(path, manifest)


def test_manifest_disagreeing_with_archive_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    path, manifest = backup(src, tmp_path)
    manifest.files += 1
    with pytest.raises(A.ArchiveError, match="holds 6 entries"):
        A.verify_archive(path, manifest)


def test_truncated_zstd_stream_is_reported() -> None:
    codec = A.compressor("zstd")
    data = b"".join(codec.feed(b"abc" * 100000) + codec.finish())
    reader = A.decompressor("zstd")
    assert b"".join(reader.feed(data)) == b"abc" * 100000
    reader = A.decompressor("zstd")
    reader.feed(data[:-5])
    with pytest.raises(A.ArchiveError, match="truncated"):
        reader.finish()


@pytest.mark.parametrize("compression,level,message", [
    ("lz4", None, "compression must be one of zstd, gzip, none"),
    ("zstd", 25, "compression_level for zstd must be 1..19"),
    ("gzip", 0, "compression_level for gzip must be 1..9"),
    ("none", 3, "does not apply"),
])
def test_bad_compression_settings_name_the_fix(compression: str, level: Optional[int], message: str) -> None:
    with pytest.raises(A.ArchiveError, match=message):
        A.check_compression(compression, level)


# Crafted archives: each is refused by the check that runs before anything is written.

def crafted(tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> tuple[str, A.Manifest]:
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    manifest = A.Manifest(volume="v", driver="local", options={}, labels={}, created=None, archived_at="",
                          archive="evil.tar", compression="none", compression_level=0,
                          archive_bytes=path.stat().st_size, sha256=A.rehash(str(path)), files=0, bytes=0,
                          listing_sha256="", data_path="fast", collection_version="0")
    return str(path), manifest


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o644
    return info


@pytest.mark.parametrize("members,message", [
    ([(member("./../escape"), b"x")], r"'./../escape' climbs out of the volume"),
    ([(member("a/../../escape"), b"x")], "climbs out"),
    ([(member("/etc/x"), b"x")], r"'/etc/x' has an absolute path"),
    ([(member("./root", tarfile.SYMTYPE, "/"), b""), (member("./root/etc/x"), b"x")],
     r"symlink './root' points outside the volume"),
    ([(member("./up", tarfile.SYMTYPE, "../.."), b"")], "points outside the volume"),
    ([(member("./d", tarfile.DIRTYPE), b""), (member("./d/in", tarfile.SYMTYPE, "../ok"), b""),
      (member("./d/in/x"), b"x")], r"'./d/in/x' goes through the symlink 'd/in'"),
    ([(member("./passwd", tarfile.LNKTYPE, "/etc/passwd"), b"")], "hard link './passwd' points outside"),
    ([(member("./passwd", tarfile.LNKTYPE, "../../etc/passwd"), b"")], "points outside"),
    ([(member("./later", tarfile.LNKTYPE, "./notyet"), b""), (member("./notyet"), b"x")],
     "not a regular file earlier in the archive"),
    ([(member("./dev", tarfile.CHRTYPE), b"")], "'./dev' is a character device"),
    ([(member("./disk", tarfile.BLKTYPE), b"")], "block device"),
    ([(member("./pipe", tarfile.FIFOTYPE), b"")], "'./pipe' is a FIFO"),
])
def test_crafted_archive_is_refused_naming_the_entry(
        tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]], message: str) -> None:
    path, manifest = crafted(tmp_path, members)
    with pytest.raises(A.UnsafeEntry, match=message):
        A.verify_archive(path, manifest)


def test_links_inside_the_volume_are_accepted(tmp_path: Path) -> None:
    path, manifest = crafted(tmp_path, [
        (member(".", tarfile.DIRTYPE), b""), (member("./a", tarfile.DIRTYPE), b""), (member("./a/f"), b"data"),
        (member("./a/rel", tarfile.SYMTYPE, "../a/f"), b""), (member("./a/hard", tarfile.LNKTYPE, "a/f"), b""),
    ])
    listing, _digest = A.scan_archive(path, "none")
    assert listing.files == 4 and listing.bytes == 8
    assert listing.entries["a/hard"].kind == "f"


def test_host_listing_refuses_what_restore_would_refuse(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(A.UnsafeEntry, match="'./pipe' is a FIFO"):
        A.host_listing(str(tmp_path))
    os.unlink(tmp_path / "pipe")
    (tmp_path / "out").symlink_to("/etc")
    with pytest.raises(A.UnsafeEntry, match="points outside"):
        A.host_listing(str(tmp_path))


def test_walk_yields_parents_first_in_name_order_and_skips_sockets(tmp_path: Path) -> None:
    for name in ("b/y", "b/x", "a"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "c").mkdir()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "c" / "sock"))
        check = A.SafetyCheck()
        walked = list(A.walk_checked(str(tmp_path), check))
    assert walked[:4] == [".", "a", "b", "c"]
    assert sorted(walked[4:]) == ["b/x", "b/y"] and walked.index("b/x") < walked.index("b/y")
    assert list(check.listing.entries) == walked


@pytest.mark.parametrize("batch", [1, 10, 1 << 16])
def test_tar_names_are_nul_terminated_relative_names_in_batches(batch: int) -> None:
    paths = [".", "a", "dir/f", "sp ace", "new\nline", "caf\u00e9"]
    chunks = list(A._tar_names(paths, batch))  # pylint: disable=protected-access
    assert b"".join(chunks) == b"".join(n + b"\0" for n in (b".", b"./a", b"./dir/f", b"./sp ace", b"./new\nline",
                                                            "./caf\u00e9".encode()))
    assert all(c.endswith(b"\0") for c in chunks)  # a name never spans two writes to tar
    assert all(len(c) >= batch for c in chunks[:-1])
    assert len(chunks) == {1: len(paths), 10: 3, 1 << 16: 1}[batch]


@pytest.mark.parametrize("compression", A.COMPRESSIONS)
def test_unsafe_entry_found_while_tar_already_runs_leaves_no_archive(tmp_path: Path, compression: str) -> None:
    """The walk feeds tar as it goes: an entry refused late (tar has the big file already) still fails the
    backup, and nothing is left in the destination."""
    src, dest = tmp_path / "src", tmp_path / "dest"
    (src / "a-last").mkdir(parents=True)
    dest.mkdir()
    (src / "big").write_bytes(os.urandom(8 * A.CHUNK))
    for index in range(50):
        (src / ("d%02d" % index)).mkdir()
        (src / ("d%02d" % index) / "f").write_bytes(b"x" * 1000)
    (src / "a-last" / "out").symlink_to("/etc")  # the walk reaches this directory last (a stack of directories)
    with pytest.raises(A.UnsafeEntry, match="'a-last/out' points outside the volume"):
        with A.ArchiveWriter(str(dest / A.archive_name("vol", NOW, compression)), compression) as writer:
            A.archive_tree(str(src), writer)
            writer.commit()
    assert os.listdir(dest) == []


def test_direct_writer_hashes_what_another_process_wrote(tmp_path: Path) -> None:
    data = os.urandom(3 * A.FOLLOW_READ + 5)
    (tmp_path / "in").write_bytes(data)
    path = str(tmp_path / "x.tar")
    with A.ArchiveWriter(path, "none") as writer:
        with open(tmp_path / "in", "rb") as source:
            subprocess.run(["cat"], stdin=source, stdout=writer.direct_fd(), check=True)
        digest = writer.commit()
    assert digest == hashlib.sha256(data).hexdigest()
    assert Path(path).read_bytes() == data and oct(os.stat(path).st_mode & 0o777) == "0o600"
    with pytest.raises(A.ArchiveError, match="written by another process"):
        with A.ArchiveWriter(str(tmp_path / "y.tar"), "none") as other:
            other.direct_fd()
            other.write(b"x")
    assert sorted(os.listdir(tmp_path)) == ["in", "x.tar"]


def test_failed_write_leaves_no_partial_archive(tmp_path: Path) -> None:
    path = str(tmp_path / "x.tar.zst")
    with pytest.raises(RuntimeError):
        with A.ArchiveWriter(path, "zstd") as writer:
            writer.write(b"some data")
            raise RuntimeError("copy failed midway")
    assert os.listdir(tmp_path) == []


def test_full_disk_is_reported_and_cleaned(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    writer = A.ArchiveWriter(str(tmp_path / "x.tar"), "none")
    os.dup2(os.open("/dev/full", os.O_WRONLY), writer.fd)
    with pytest.raises(A.ArchiveError, match="No space left"):
        with writer:
            for _chunk in range(64):
                writer.write(b"x" * A.CHUNK)
            writer.commit()
    assert os.listdir(tmp_path) == []


def test_manifest_round_trip_and_refusals(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    path, manifest = backup(src, tmp_path)
    A.write_file_atomically(A.manifest_path(path), manifest.to_json().encode())
    assert A.Manifest.load(A.manifest_path(path)) == manifest
    with pytest.raises(A.ArchiveError, match="not a dockhand.containers volume archive manifest"):
        A.Manifest.from_json(json.dumps({"format": "other"}), "m.json")
    with pytest.raises(A.ArchiveError, match="format_version 9"):
        A.Manifest.from_json(json.dumps({"format": A.FORMAT, "format_version": 9}), "m.json")
    with pytest.raises(A.ArchiveError, match="lacks"):
        A.Manifest.from_json(json.dumps({"format": A.FORMAT, "format_version": 1}), "m.json")


def test_retention_deletes_oldest_of_that_volume_only(tmp_path: Path) -> None:
    def store(volume: str, stamp: str) -> str:
        path = tmp_path / ("%s-%s.tar" % (volume, stamp))
        path.write_bytes(b"")
        manifest = dict(json.loads(A.Manifest(
            volume=volume, driver="local", options={}, labels={}, created=None, archived_at=stamp,
            archive=path.name, compression="none", compression_level=0, archive_bytes=0, sha256="0" * 64, files=0,
            bytes=0, listing_sha256="", data_path="fast", collection_version="0").to_json()))
        (tmp_path / (path.name + ".json")).write_text(json.dumps(manifest))
        return str(path)

    old, mid, new = store("a", "1"), store("a", "2"), store("a", "3")
    other = store("b", "0")
    assert A.prune_archives(str(tmp_path), "a", 2) == [old]
    assert not os.path.exists(old) and not os.path.exists(old + ".json")
    assert [s.path for s in A.stored_archives(str(tmp_path), "a")] == [mid, new]
    assert os.path.exists(other)


def test_archive_name_is_safe_and_sortable() -> None:
    name = A.archive_name("my/vol", NOW, "gzip")
    assert name.startswith("my_vol-") and name.endswith(".tar.gz")
    assert A.compression_of(name) == "gzip"


@pytest.mark.parametrize("base,target,inside", [
    (".", "a/b", True), ("d", "../x", True), ("d/e", "../../x", True), ("d", "../../x", False),
    (".", "..", False), (".", "/", False), ("d", "s/..", False), ("d", "./f", True),
])
def test_symlink_targets_are_judged_without_following_links(base: str, target: str, inside: bool) -> None:
    assert A._inside(base, target) is inside  # pylint: disable=protected-access


def test_recorded_collection_version_is_galaxy_version() -> None:
    galaxy = (Path(__file__).resolve().parents[4] / "galaxy.yml").read_text()
    assert "\nversion: %s\n" % A.COLLECTION_VERSION in galaxy


def test_without_the_zstd_command_libzstd_compresses_the_same_format(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(A.shutil, "which", lambda _name: None)
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    make_tree(src)
    path, manifest = backup(src, tmp_path)
    with open(path, "rb") as handle:
        assert handle.read(4) == b"\x28\xb5\x2f\xfd"  # a zstd frame, written by libzstd in this process
    A.extract_to_directory(path, manifest, str(out))
    assert A.host_listing(str(out)).differences(A.verify_archive(path, manifest)) == []


# ---------------------------------------------------------------------------------------------------------------
# Streams between hosts (send on one, receive on the other): here through a file, with the real GNU tar.


def sent(tmp_path: Path, root: Path, compression: str = "zstd") -> Path:
    path = tmp_path / "stream"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        A.send_directory(str(root), fd, compression)
    finally:
        os.close(fd)
    return path


def frames_of(path: Path) -> list[tuple[bytes, bytes]]:
    with open(path, "rb") as handle:
        return list(A.read_frames(handle))


def write_frames(path: Path, frames: list[tuple[bytes, bytes]]) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for kind, payload in frames:
            A.write_frame(fd, kind, payload)
    finally:
        os.close(fd)
    return path


def received(path: Path, out: Path, **kwargs: object) -> dict[str, object]:
    with open(path, "rb") as handle:
        return A.receive_directory(str(out), handle, **kwargs)  # type: ignore[arg-type]


def crafted_stream(tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    """A well-formed stream (header, data, trailer with the right sha256) carrying a crafted tar."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    data = buffer.getvalue()
    header = dict(format=A.STREAM_FORMAT, format_version=A.STREAM_VERSION, compression="none")
    trailer = dict(sha256=hashlib.sha256(data).hexdigest(), stream_bytes=len(data), files=len(members), bytes=0,
                   listing_sha256="")
    return write_frames(tmp_path / "crafted", [(A.FRAME_HEADER, json.dumps(header).encode()), (A.FRAME_DATA, data),
                                               (A.FRAME_TRAILER, json.dumps(trailer).encode())])


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    make_tree(src)
    return src, out


@pytest.mark.parametrize("compression", A.STREAM_COMPRESSIONS)
def test_stream_writes_the_same_tree_and_reports_both_ends(tmp_path: Path, dirs: tuple[Path, Path],
                                                           compression: str) -> None:
    src, out = dirs
    result = received(sent(tmp_path, src, compression), out)
    source = A.host_listing(str(src))
    assert A.host_listing(str(out)).differences(source) == []
    assert result["listing_sha256"] == result["source_listing_sha256"] == source.digest()
    assert result["files"] == source.files and result["source_changed"] is False
    assert (out / "big").read_bytes() == (src / "big").read_bytes()
    assert os.stat(out / "hard").st_ino == os.stat(out / "dir" / "file").st_ino


@pytest.mark.parametrize("compression,message", [("none", "altered on the way"), ("zstd", "zstd|altered|unreadable")])
def test_stream_with_a_flipped_byte_is_refused_and_the_target_emptied(
        tmp_path: Path, dirs: tuple[Path, Path], compression: str, message: str) -> None:
    src, out = dirs
    frames = frames_of(sent(tmp_path, src, compression))
    data = [i for i, (kind, _payload) in enumerate(frames) if kind == A.FRAME_DATA]
    stream = bytearray(b"".join(frames[i][1] for i in data))
    if compression == "none":
        # A byte of a file's content, not of a tar header (which tar itself would reject first): the frames'
        # sizes follow how the sender's reads happened to split the pipe, so the middle of one is anywhere.
        where = bytes(stream).find((src / "big").read_bytes()[A.CHUNK:A.CHUNK + 64])
        assert where > 0
    else:
        where = len(stream) // 2
    stream[where] ^= 0x01
    for i in data:  # the same frame sizes, one byte altered
        size = len(frames[i][1])
        frames[i], stream = (A.FRAME_DATA, bytes(stream[:size])), stream[size:]
    with pytest.raises(A.ArchiveError, match=message):
        received(write_frames(tmp_path / "tampered", frames), out)
    assert os.listdir(out) == []


def test_stream_cut_before_its_trailer_is_refused_and_the_target_emptied(tmp_path: Path,
                                                                         dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    frames = frames_of(sent(tmp_path, src))
    with pytest.raises(A.ArchiveError, match="ended before its trailer"):
        received(write_frames(tmp_path / "cut", frames[:-1]), out)
    assert os.listdir(out) == []


def test_stream_error_frame_reports_the_senders_reason(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    os.mkfifo(src / "pipe")
    with pytest.raises(A.ArchiveError, match="is a FIFO"):
        sent(tmp_path, src)
    with pytest.raises(A.ArchiveError, match="the sender stopped: .*is a FIFO"):
        received(tmp_path / "stream", out)
    assert os.listdir(out) == []


@pytest.mark.parametrize("members,message", [
    ([(member("./ok"), b"fine"), (member("./../escape"), b"x")], "climbs out of the volume"),
    ([(member("./ok"), b"fine"), (member("/abs"), b"x")], "has an absolute path"),
    ([(member("./ok"), b"fine"), (member("./root", tarfile.SYMTYPE, "OUTSIDE"), b""), (member("./root/x"), b"x")],
     "points outside the volume"),
    ([(member("./passwd", tarfile.LNKTYPE, "/etc/passwd"), b"")], "hard link './passwd' points outside"),
    ([(member("./dev", tarfile.CHRTYPE), b"")], "is a character device"),
    ([(member("./pipe", tarfile.FIFOTYPE), b"")], "is a FIFO"),
])
def test_stream_with_an_unsafe_entry_is_refused_before_tar_sees_it(
        tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]], message: str) -> None:
    out, outside = tmp_path / "vol" / "out", tmp_path / "outside"
    out.mkdir(parents=True)
    outside.mkdir()
    for info, _data in members:
        info.linkname = info.linkname.replace("OUTSIDE", str(outside))
    with pytest.raises(A.ArchiveError, match=message + ".*emptied again"):
        received(crafted_stream(tmp_path, members), out)
    assert os.listdir(out) == [] and os.listdir(outside) == []
    assert sorted(os.listdir(tmp_path / "vol")) == ["out"]


def test_stream_into_a_directory_with_data_is_refused_unless_it_is_the_first_copy(
        tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    (out / "other").write_text("keep me")
    with pytest.raises(A.ArchiveError, match="is not empty .* nothing was written"):
        received(sent(tmp_path, src), out)
    assert (out / "other").read_text() == "keep me"
    os.unlink(out / "other")
    first = received(sent(tmp_path, src), out, live=True)
    (src / "added").write_text("after the first copy")
    final = received(sent(tmp_path, src), out, replace_listing=first["listing_sha256"])
    assert final["listing_sha256"] == A.host_listing(str(src)).digest() != first["listing_sha256"]


def test_stream_of_a_source_that_changed_while_read_is_refused_unless_live(tmp_path: Path,
                                                                           dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    frames = frames_of(sent(tmp_path, src))
    trailer = json.loads(frames[-1][1])
    frames[-1] = (A.FRAME_TRAILER, json.dumps(dict(trailer, files=trailer["files"] + 1)).encode())
    with pytest.raises(A.ArchiveError, match="the data changed while it was read"):
        received(write_frames(tmp_path / "changed", frames), out)
    assert os.listdir(out) == []
    assert received(tmp_path / "changed", out, live=True)["source_changed"] is True


def test_walk_of_a_tree_in_use_leaves_out_what_vanished_only_when_asked(tmp_path: Path) -> None:
    for flag in (False, True):
        root = tmp_path / str(flag)
        (root / "c").mkdir(parents=True)
        for name in ("a", "b", "c/x"):
            (root / name).write_text(name)
        walk = A.walk_checked(str(root), A.SafetyCheck(), vanished_ok=flag)
        assert [next(walk), next(walk)] == [".", "a"]  # the root was listed: a, b, c
        (root / "b").unlink()
        shutil.rmtree(root / "c")
        if flag:
            assert list(walk) == []
        else:
            with pytest.raises(FileNotFoundError):
                list(walk)


def test_live_send_of_files_removed_while_read_arrives_verified(tmp_path: Path, dirs: tuple[Path, Path],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A first copy of a volume in use: a file removed after the walk saw it, before tar read it, is left out."""
    src, out = dirs
    real_walk = A.walk_checked
    victim = src / "removed-while-read"
    victim.write_text("soon gone")

    def walk_then_remove(root: str, check: A.SafetyCheck, vanished_ok: bool = False) -> Iterator[str]:
        for path in real_walk(root, check, vanished_ok):
            yield path
            if path == victim.name:
                victim.unlink()  # tar gets the name in a later batch, after this

    monkeypatch.setattr(A, "walk_checked", walk_then_remove)
    with pytest.raises(A.ArchiveError, match="removed-while-read: Cannot stat"):
        sent(tmp_path, src)
    victim.write_text("soon gone")
    path = tmp_path / "live"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        A.send_directory(str(src), fd, "zstd", live=True)
    finally:
        os.close(fd)
    result = received(path, out, live=True)
    assert result["source_changed"] is True
    assert not (out / victim.name).exists()
    assert A.host_listing(str(out)).differences(A.host_listing(str(src))) == []
