# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The volume archive: tar + zstd/gzip/none, a JSON manifest beside it, sha256, streaming, safe extraction.

An archive holds one volume's tree as a tar (GNU or pax format) whose entries are relative to the volume root
(``./``, ``./dir``, ``./dir/file``), numeric owners only. Nothing here talks to the Engine: callers hand
in a directory on this host (the fast path) or a tar stream read through the Engine (the engine path).

Safety rule, applied the same way to a directory being archived and to an archive being restored: an
entry must stay inside the volume (no ``..``, no absolute name, no path through a symlink), a symlink
must point inside the volume, a hard link must name an earlier regular file of the same archive, and
only regular files, directories, symlinks and hard links are allowed (no device nodes, FIFOs, sockets).
So a backup is never taken that its restore would refuse.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime
import errno
import fcntl
import hashlib
import json
import os
import posixpath
import queue
import re
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import threading
import zlib
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Callable, Iterable, Iterator, Optional, Union

FORMAT = "dockhand.containers/volume-archive"
COLLECTION_VERSION = "0.1.0"  # galaxy.yml's version (a unit test holds them equal), recorded in each manifest
FORMAT_VERSION = 1
COMPRESSIONS = ("zstd", "gzip", "none")
SUFFIXES = {"zstd": ".tar.zst", "gzip": ".tar.gz", "none": ".tar"}
MANIFEST_SUFFIX = ".json"
DEFAULT_LEVELS = {"zstd": 3, "gzip": 6, "none": 0}
LEVEL_RANGES = {"zstd": (1, 19), "gzip": (1, 9), "none": (0, 0)}
CHUNK = 1 << 20
_F_SETPIPE_SZ = 1031  # Linux: a 1 MiB pipe lets tar and us move data in fewer, larger reads


class ArchiveError(Exception):
    """An archive that cannot be written, read or trusted; the message says which file and why."""


class UnsafeEntry(ArchiveError):
    """An entry that would write outside the volume or create something a volume must not hold."""


# ---------------------------------------------------------------------------------------------------------------
# Compression: zstd through the system's libzstd (present wherever apt/dpkg or rpm is), gzip through zlib.


class _ZBuffer(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_void_p), ("size", ctypes.c_size_t), ("pos", ctypes.c_size_t)]


_ZSTD_C_LEVEL = 100
_ZSTD_C_WORKERS = 400
_ZSTD_C_CHECKSUM = 201
_ZSTD_E_CONTINUE = 0
_ZSTD_E_END = 2
_zstd_lib: Optional[ctypes.CDLL] = None


def _libzstd() -> ctypes.CDLL:
    global _zstd_lib  # pylint: disable=global-statement
    if _zstd_lib is not None:
        return _zstd_lib
    name = ctypes.util.find_library("zstd") or "libzstd.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        raise ArchiveError("compression zstd needs libzstd on this host (Debian/Ubuntu package libzstd1, "
                           "RHEL/Fedora libzstd); install it or set compression: gzip")
    vp, sz, buf = ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(_ZBuffer)
    for fn, restype, argtypes in (
            ("ZSTD_createCCtx", vp, []), ("ZSTD_freeCCtx", sz, [vp]),
            ("ZSTD_CCtx_setParameter", sz, [vp, ctypes.c_int, ctypes.c_int]),
            ("ZSTD_compressStream2", sz, [vp, buf, buf, ctypes.c_int]),
            ("ZSTD_createDCtx", vp, []), ("ZSTD_freeDCtx", sz, [vp]),
            ("ZSTD_decompressStream", sz, [vp, buf, buf]),
            ("ZSTD_isError", ctypes.c_uint, [sz]), ("ZSTD_getErrorName", ctypes.c_char_p, [sz])):
        func = getattr(lib, fn)
        func.restype = restype
        func.argtypes = argtypes
    _zstd_lib = lib
    return lib


Buffer = Union[bytes, bytearray, memoryview]


def _address(data: Buffer) -> tuple[Optional[int], Any]:
    """The address of ``data``'s bytes without copying them, and the object keeping them alive."""
    if not len(data):
        return None, None
    if isinstance(data, bytes):
        pointer = ctypes.c_char_p(data)
        return ctypes.cast(pointer, ctypes.c_void_p).value, pointer
    view = (ctypes.c_char * len(data)).from_buffer(data)
    return ctypes.addressof(view), view


def _zstd_check(lib: ctypes.CDLL, code: int, what: str) -> int:
    if lib.ZSTD_isError(code):
        raise ArchiveError("zstd %s failed: %s" % (what, lib.ZSTD_getErrorName(code).decode()))
    return code


class Codec:
    """Turns chunks into chunks; ``finish`` flushes. The identity codec is ``none``."""

    def feed(self, data: Buffer) -> list[bytes]:
        return [bytes(data)] if len(data) else []

    def finish(self) -> list[bytes]:
        return []

    def close(self) -> None:
        """Release native resources."""


class _ZstdCompressor(Codec):
    def __init__(self, level: int, workers: int) -> None:
        self.lib = _libzstd()
        self.ctx = self.lib.ZSTD_createCCtx()
        _zstd_check(self.lib, self.lib.ZSTD_CCtx_setParameter(self.ctx, _ZSTD_C_LEVEL, level), "level")
        _zstd_check(self.lib, self.lib.ZSTD_CCtx_setParameter(self.ctx, _ZSTD_C_CHECKSUM, 1), "checksum flag")
        if workers:
            # A libzstd built without threads refuses workers; single-threaded is still correct.
            self.lib.ZSTD_CCtx_setParameter(self.ctx, _ZSTD_C_WORKERS, workers)
        self.out = ctypes.create_string_buffer(CHUNK + (CHUNK >> 7) + 4096)

    def _run(self, data: Buffer, mode: int) -> list[bytes]:
        address, keep = _address(data)
        inbuf = _ZBuffer(address, len(data), 0)
        chunks = []
        while True:
            outbuf = _ZBuffer(ctypes.addressof(self.out), len(self.out), 0)
            code = self.lib.ZSTD_compressStream2(self.ctx, ctypes.byref(outbuf), ctypes.byref(inbuf), mode)
            left = _zstd_check(self.lib, code, "compression")
            if outbuf.pos:
                chunks.append(ctypes.string_at(self.out, outbuf.pos))
            if mode == _ZSTD_E_CONTINUE and inbuf.pos == inbuf.size:
                del keep
                return chunks
            if mode == _ZSTD_E_END and left == 0:
                return chunks

    def feed(self, data: Buffer) -> list[bytes]:
        return self._run(data, _ZSTD_E_CONTINUE) if len(data) else []

    def finish(self) -> list[bytes]:
        return self._run(b"", _ZSTD_E_END)

    def close(self) -> None:
        if self.ctx:
            self.lib.ZSTD_freeCCtx(self.ctx)
            self.ctx = None


class _ZstdDecompressor(Codec):
    def __init__(self) -> None:
        self.lib = _libzstd()
        self.ctx = self.lib.ZSTD_createDCtx()
        self.out = ctypes.create_string_buffer(CHUNK)
        self.frame_done = True

    def feed(self, data: Buffer) -> list[bytes]:
        if not len(data):
            return []
        address, keep = _address(data)
        inbuf = _ZBuffer(address, len(data), 0)
        chunks = []
        while True:
            outbuf = _ZBuffer(ctypes.addressof(self.out), len(self.out), 0)
            code = self.lib.ZSTD_decompressStream(self.ctx, ctypes.byref(outbuf), ctypes.byref(inbuf))
            hint = _zstd_check(self.lib, code, "decompression")
            self.frame_done = hint == 0
            if outbuf.pos:
                chunks.append(ctypes.string_at(self.out, outbuf.pos))
            if inbuf.pos == inbuf.size and outbuf.pos < outbuf.size:
                del keep
                return chunks

    def finish(self) -> list[bytes]:
        if not self.frame_done:
            raise ArchiveError("the zstd stream ends in the middle of a frame (truncated archive)")
        return []

    def close(self) -> None:
        if self.ctx:
            self.lib.ZSTD_freeDCtx(self.ctx)
            self.ctx = None


class _GzipCompressor(Codec):
    def __init__(self, level: int) -> None:
        self.z = zlib.compressobj(level, zlib.DEFLATED, 31)

    def feed(self, data: Buffer) -> list[bytes]:
        out = self.z.compress(data)
        return [out] if out else []

    def finish(self) -> list[bytes]:
        return [self.z.flush()]


class _GzipDecompressor(Codec):
    def __init__(self) -> None:
        self.z = zlib.decompressobj(31)

    def feed(self, data: Buffer) -> list[bytes]:
        out = [self.z.decompress(data)]
        while self.z.eof and self.z.unused_data:  # concatenated gzip members, as gzip -d reads them
            rest = self.z.unused_data
            self.z = zlib.decompressobj(31)
            out.append(self.z.decompress(rest))
        return [c for c in out if c]

    def finish(self) -> list[bytes]:
        if not self.z.eof:
            raise ArchiveError("the gzip stream ends early (truncated archive)")
        return []


def compressor(compression: str, level: Optional[int] = None, workers: int = 0) -> Codec:
    check_compression(compression, level)
    level = DEFAULT_LEVELS[compression] if level is None else level
    if compression == "zstd":
        return _ZstdCompressor(level, workers)
    if compression == "gzip":
        return _GzipCompressor(level)
    return Codec()


def decompressor(compression: str) -> Codec:
    check_compression(compression, None)
    if compression == "zstd":
        return _ZstdDecompressor()
    if compression == "gzip":
        return _GzipDecompressor()
    return Codec()


def check_compression(compression: str, level: Optional[int]) -> None:
    if compression not in COMPRESSIONS:
        raise ArchiveError("compression must be one of %s (got %r)" % (", ".join(COMPRESSIONS), compression))
    low, high = LEVEL_RANGES[compression]
    if level is not None and not low <= level <= high:
        if compression == "none":
            raise ArchiveError("compression_level does not apply to compression none; leave it unset")
        raise ArchiveError("compression_level for %s must be %d..%d (got %d)" % (compression, low, high, level))


# ---------------------------------------------------------------------------------------------------------------
# Names and the manifest

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def archive_name(volume: str, when: datetime.datetime, compression: str) -> str:
    """``<volume>-<UTC time>.tar.zst``: sorts by time within one volume's archives."""
    stamp = when.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    return "%s-%s%s" % (_UNSAFE_NAME.sub("_", volume), stamp, SUFFIXES[compression])


def manifest_path(archive_path: str) -> str:
    return archive_path + MANIFEST_SUFFIX


def compression_of(path: str) -> str:
    for compression, suffix in SUFFIXES.items():
        if compression != "none" and path.endswith(suffix):
            return compression
    if path.endswith(SUFFIXES["none"]):
        return "none"
    raise ArchiveError("%s: not a volume archive name (expected %s)" % (path, ", ".join(SUFFIXES.values())))


@dataclass
class Manifest:
    """What the JSON file beside an archive says. ``sha256`` covers the archive file byte for byte."""

    volume: str
    driver: str
    options: dict[str, str]
    labels: dict[str, str]
    created: Optional[str]
    archived_at: str
    archive: str
    compression: str
    compression_level: int
    archive_bytes: int
    sha256: str
    files: int
    bytes: int
    listing_sha256: str
    data_path: str
    collection_version: str
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> "Manifest":
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise ArchiveError("%s is not valid JSON: %s" % (where, exc))
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise ArchiveError("%s is not a dockhand.containers volume archive manifest (format %r)"
                               % (where, raw.get("format") if isinstance(raw, dict) else None))
        if raw.get("format_version") != FORMAT_VERSION:
            raise ArchiveError("%s has format_version %r; this collection reads version %d"
                               % (where, raw.get("format_version"), FORMAT_VERSION))
        expected = dict(cls.__annotations__)
        missing = sorted(set(expected) - set(raw))
        if missing:
            raise ArchiveError("%s lacks %s" % (where, ", ".join(missing)))
        if raw["compression"] not in COMPRESSIONS or not re.fullmatch(r"[0-9a-f]{64}", str(raw["sha256"])):
            raise ArchiveError("%s has an invalid compression or sha256" % where)
        return cls(**{k: raw[k] for k in expected})

    @classmethod
    def load(cls, path: str) -> "Manifest":
        try:
            with open(path, encoding="utf-8") as handle:
                return cls.from_json(handle.read(), path)
        except OSError as exc:
            raise ArchiveError("cannot read the manifest %s: %s (it is written beside every archive)"
                               % (path, exc.strerror))


def write_file_atomically(path: str, data: bytes) -> None:
    """Write under a temporary name, fsync, rename: a reader sees the old file or the whole new one."""
    tmp = "%s.tmp-%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


# ---------------------------------------------------------------------------------------------------------------
# Safety and listings

KIND_FILE, KIND_DIR, KIND_LINK = "f", "d", "l"


@dataclass(frozen=True)
class Entry:
    """One path of a volume, as a listing compares it (mtime to the second: every path keeps that)."""

    path: str
    kind: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    target: str = ""

    def line(self) -> str:
        return "%s %s %04o %d %d %d %d %s" % (self.kind, json.dumps(self.path), self.mode, self.uid, self.gid,
                                              self.size, self.mtime, json.dumps(self.target))


@dataclass
class Listing:
    """Every entry of a tree; ``files`` counts all entries but the root, ``bytes`` the regular files' sizes."""

    entries: dict[str, Entry] = field(default_factory=dict)

    @property
    def files(self) -> int:
        return sum(1 for path in self.entries if path != ".")

    @property
    def bytes(self) -> int:
        return sum(e.size for e in self.entries.values() if e.kind == KIND_FILE)

    def digest(self) -> str:
        text = "\n".join(self.entries[p].line() for p in sorted(self.entries))
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()

    def differences(self, other: "Listing", limit: int = 5) -> list[str]:
        found = []
        for path in sorted(set(self.entries) | set(other.entries)):
            mine, theirs = self.entries.get(path), other.entries.get(path)
            if mine != theirs:
                found.append("%s: %s != %s" % (path, mine and mine.line(), theirs and theirs.line()))
                if len(found) >= limit:
                    break
        return found


def normalize_name(name: str) -> str:
    """An entry name relative to the volume root (``.`` for the root), or UnsafeEntry naming it."""
    if name.startswith("/"):
        raise UnsafeEntry("entry %r has an absolute path" % name)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeEntry("entry %r climbs out of the volume with '..'" % name)
    return "/".join(parts) or "."


def _inside(base_dir: str, target: str) -> bool:
    """Whether a symlink in ``base_dir`` with this target stays inside the volume.

    ``..`` is accepted only at the start of the target: after a name it may stand for the parent of
    a symlinked directory, which no lexical check can know.
    """
    if target.startswith("/"):
        return False
    depth = 0 if base_dir == "." else len(base_dir.split("/"))
    climbing = True
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            depth -= 1
            if depth < 0 or not climbing:
                return False
        else:
            climbing = False
            depth += 1
    return True


class SafetyCheck:
    """Applies the safety rule entry by entry, in archive order, and builds the listing as it goes."""

    def __init__(self) -> None:
        self.listing = Listing()
        self.symlinks: set[str] = set()

    def _through_symlink(self, path: str) -> Optional[str]:
        parts = path.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if prefix in self.symlinks:
                return prefix
        return None

    def add(self, raw_name: str, kind: str, mode: int, uid: int, gid: int, size: int, mtime: float,
            target: str = "") -> Entry:
        path = normalize_name(raw_name)
        via = self._through_symlink(path) if self.symlinks else None
        if via is not None:
            raise UnsafeEntry("entry %r goes through the symlink %r" % (raw_name, via))
        return self._add(path, raw_name, kind, mode, uid, gid, size, mtime, target)

    def add_walked(self, path: str, kind: str, mode: int, uid: int, gid: int, size: int, mtime: float,
                   target: str = "") -> Entry:
        """:meth:`add` for a path a walk of a directory on this host found: it is normal already (joined from
        directory entry names, which never hold ``/`` nor are ``.`` or ``..``) and never passes through a
        symlink (a walk enters directories only), so what is left of the rule is the kind and the link target."""
        return self._add(path, path, kind, mode, uid, gid, size, mtime, target)

    def _add(self, path: str, raw_name: str, kind: str, mode: int, uid: int, gid: int, size: int, mtime: float,
             target: str) -> Entry:
        if kind == KIND_LINK:
            if not _inside(posixpath.dirname(path) or ".", target):
                raise UnsafeEntry("symlink %r points outside the volume (to %r)" % (raw_name, target))
            self.symlinks.add(path)
        elif self.symlinks:
            self.symlinks.discard(path)
        entry = Entry(path, kind, stat.S_IMODE(mode), uid, gid, size if kind == KIND_FILE else 0, int(mtime), target)
        self.listing.entries[path] = entry
        return entry

    def add_hardlink(self, raw_name: str, raw_target: str) -> Entry:
        path = normalize_name(raw_name)
        try:
            target_path = normalize_name(raw_target)
        except UnsafeEntry:
            raise UnsafeEntry("hard link %r points outside the volume (to %r)" % (raw_name, raw_target))
        linked = self.listing.entries.get(target_path)
        if linked is None or linked.kind != KIND_FILE:
            raise UnsafeEntry("hard link %r points to %r, which is not a regular file earlier in the archive"
                              % (raw_name, raw_target))
        via = self._through_symlink(path)
        if via is not None:
            raise UnsafeEntry("entry %r goes through the symlink %r" % (raw_name, via))
        self.symlinks.discard(path)
        entry = Entry(path, KIND_FILE, linked.mode, linked.uid, linked.gid, linked.size, linked.mtime)
        self.listing.entries[path] = entry
        return entry

    def add_member(self, member: tarfile.TarInfo) -> Entry:
        if member.isreg():
            return self.add(member.name, KIND_FILE, member.mode, member.uid, member.gid, member.size, member.mtime)
        if member.isdir():
            return self.add(member.name, KIND_DIR, member.mode, member.uid, member.gid, 0, member.mtime)
        if member.issym():
            return self.add(member.name, KIND_LINK, member.mode, member.uid, member.gid, 0, member.mtime,
                            member.linkname)
        if member.islnk():
            return self.add_hardlink(member.name, member.linkname)
        what = {tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device",
                tarfile.FIFOTYPE: "a FIFO"}.get(member.type, "of an unsupported type %r" % member.type)
        raise UnsafeEntry("entry %r is %s; a volume archive holds only files, directories and links"
                          % (member.name, what))


def host_listing(root: str) -> Listing:
    """Walk a directory on this host with the safety rule (no Engine, no helper container)."""
    check = SafetyCheck()
    for _path in walk_checked(root, check):
        pass
    return check.listing


def walk_checked(root: str, check: SafetyCheck, vanished_ok: bool = False) -> Iterator[str]:
    """The paths of a directory tree on this host (``.`` first), each yielded only once ``check`` accepted it.

    Parents come before their children, siblings in name order; sockets are skipped (tar skips them too: they are
    endpoints of running programs, not data). An entry the safety rule refuses raises UnsafeEntry when reached.
    With ``vanished_ok`` (a copy of a tree in use) an entry removed between its directory's listing and its
    ``lstat``, or a directory removed before it was listed, is left out instead of failing the walk.
    """
    seen_inodes: dict[tuple[int, int], str] = {}

    def visit(rel: str, st: os.stat_result) -> bool:
        if stat.S_ISDIR(st.st_mode):
            check.add_walked(rel, KIND_DIR, st.st_mode, st.st_uid, st.st_gid, 0, st.st_mtime)
        elif stat.S_ISLNK(st.st_mode):
            check.add_walked(rel, KIND_LINK, st.st_mode, st.st_uid, st.st_gid, 0, st.st_mtime,
                             os.readlink(os.path.join(root, rel)))
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in seen_inodes:
                check.add_hardlink(rel, seen_inodes[key])
            else:
                seen_inodes[key] = rel
                check.add_walked(rel, KIND_FILE, st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime)
        elif stat.S_ISSOCK(st.st_mode):
            return False
        else:
            kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device node"
            raise UnsafeEntry("entry %r is %s; a volume archive holds only files, directories and links"
                              % ("./" + rel, kind))
        return True

    visit(".", os.lstat(root))
    yield "."
    stack = ["."]
    while stack:
        rel = stack.pop()
        try:
            with os.scandir(os.path.join(root, rel)) as it:
                children = sorted(it, key=lambda d: d.name)
        except (FileNotFoundError, NotADirectoryError):
            if not vanished_ok or rel == ".":
                raise
            continue
        for child in children:
            child_rel = child.name if rel == "." else rel + "/" + child.name
            try:
                st = child.stat(follow_symlinks=False)
                accepted = visit(child_rel, st)  # a link's readlink comes before anything is recorded
            except FileNotFoundError:
                if not vanished_ok:
                    raise
                continue
            if accepted:
                yield child_rel
            if stat.S_ISDIR(st.st_mode):
                stack.append(child_rel)


# ---------------------------------------------------------------------------------------------------------------
# Writing an archive


_SYNC_FILE_RANGE_WRITE = 2  # Linux: start writeback of the range's dirty pages, without waiting for it
WRITE_BEHIND = 8 << 20  # bytes written before their writeback is started
FOLLOW_READ = 4 << 20  # the hashing thread's read size: large reads keep hashlib outside the GIL most of the time


def _sync_file_range() -> Optional[Callable[[int, int, int, int], int]]:
    """libc's sync_file_range where there is one (Linux); ctypes releases the GIL while it runs."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


class _WriteBehind:
    """Starts the writeback of an archive's pages while it is still being written, in a thread of its own.

    The kernel otherwise keeps a whole 1 GiB archive dirty in memory and writes it only when ``fsync`` asks,
    so the disk would idle during the copy and the fsync would take as long as writing everything. This only
    starts writeback early; the fsync before the rename stays and still waits for every page.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.start_writeback = _sync_file_range()
        self.stop = threading.Event()
        self.flushed = 0
        self.thread: Optional[threading.Thread] = None
        if self.start_writeback is not None:
            self.thread = threading.Thread(target=self._run, name="archive-write-behind")
            self.thread.daemon = True
            self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.02):
            try:
                size = os.fstat(self.fd).st_size
            except OSError:
                return
            if size - self.flushed >= WRITE_BEHIND and self.start_writeback is not None:
                if self.start_writeback(self.fd, self.flushed, size - self.flushed, _SYNC_FILE_RANGE_WRITE) != 0:
                    return  # not supported here: the fsync does it all
                self.flushed = size

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()


class _Follower:
    """Hashes an archive file while another process writes it: reads what is there, waits for more, until told
    the writer is done. Reading back the page cache costs less than passing every byte through a pipe here."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.error: Optional[ArchiveError] = None
        self.writer_done = threading.Event()
        self.abort = False
        self.thread = threading.Thread(target=self._run, name="archive-hash")
        self.thread.daemon = True
        self.thread.start()

    def _run(self) -> None:
        buf = bytearray(FOLLOW_READ)
        view = memoryview(buf)
        while not self.abort:
            done = self.writer_done.is_set()  # before the read: a writer done then has nothing after our EOF
            try:
                n = os.preadv(self.fd, [buf], self.size)
            except OSError as exc:
                self.error = ArchiveError("reading back the archive failed: %s" % exc.strerror)
                return
            if n:
                self.sha256.update(view[:n])
                self.size += n
            elif done:
                return
            else:
                self.writer_done.wait(0.005)

    def finish(self) -> str:
        """The sha256 of the whole file; call once its writer has exited."""
        self.writer_done.set()
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.sha256.hexdigest()

    def cancel(self) -> None:
        self.abort = True
        self.writer_done.set()
        self.thread.join()


class ArchiveWriter:
    """Compresses, hashes and writes a tar stream to ``<path>.partial`` (0600); ``commit`` renames it.

    Two ways in: ``write`` (chunks of tar stream compressed here) and ``write_compressed`` (chunks already
    compressed), hashed and written by a thread of their own while the caller reads the next chunk; or
    ``direct_fd``: a compressor process writes the file itself and a thread hashes it as it grows (the fast
    path). Either way a write-behind thread starts the pages' writeback early, so the fsync in ``commit`` does
    not have the whole archive left to write. Used as a context manager: leaving the block without ``commit``
    removes the partial file, so a failed or interrupted backup leaves nothing.
    """

    def __init__(self, path: str, compression: str, level: Optional[int] = None, workers: int = 1) -> None:
        self.path = path
        self.partial = path + ".partial"
        self.compression = compression
        self.level = DEFAULT_LEVELS[compression] if level is None else level
        check_compression(compression, level)
        self.workers = workers
        self._codec: Optional[Codec] = None  # made on first use: the fast path compresses in another process
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.committed = False
        self.error: Optional[ArchiveError] = None
        self.follower: Optional[_Follower] = None
        self.fed = False
        try:
            self.fd = os.open(self.partial, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise ArchiveError("cannot write %s: %s" % (self.partial, exc.strerror))
        self.queue: queue.Queue[Optional[bytes]] = queue.Queue(maxsize=8)
        self.thread = threading.Thread(target=self._drain, name="archive-writer")
        self.thread.daemon = True
        self.thread.start()
        self.write_behind = _WriteBehind(self.fd)

    def __enter__(self) -> "ArchiveWriter":
        return self

    @property
    def codec(self) -> Codec:
        if self._codec is None:
            self._codec = compressor(self.compression, self.level, self.workers)
        return self._codec

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drain(self) -> None:
        while True:
            chunk = self.queue.get()
            if chunk is None:
                return
            if self.error is not None:
                continue  # keep taking chunks so the producer never blocks on a dead writer
            self.sha256.update(chunk)
            view = memoryview(chunk)
            try:
                while view:
                    view = view[os.write(self.fd, view):]
            except OSError as exc:
                self.error = ArchiveError("writing %s failed: %s" % (self.partial, exc.strerror))
            self.size += len(chunk)

    def _out(self, chunks: list[bytes]) -> None:
        if self.error is not None:
            raise self.error
        if self.follower is not None:
            raise ArchiveError("internal: %s is written by another process" % self.partial)
        self.fed = True
        for chunk in chunks:
            self.queue.put(chunk)

    def _stop_thread(self) -> None:
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()

    def write(self, data: Buffer) -> int:
        self._out(self.codec.feed(data))
        return len(data)

    def compressor_command(self) -> Optional[list[str]]:
        """The zstd command, when this host has it: a tar | zstd pipeline whose output :meth:`write_compressed`
        takes is as fast as the raw pipeline; libzstd in this process is the fallback everywhere else.

        ``-T0``: one compression thread per core (the archive is the same format; zstd -d reads it alike).
        """
        command = shutil.which("zstd") if self.compression == "zstd" else None
        return [command, "-q", "-c", "-%d" % self.level, "-T0"] if command else None

    def write_compressed(self, data: Buffer) -> int:
        """Bytes already compressed the way this archive is (by :meth:`compressor_command`)."""
        self._out([bytes(data)])
        return len(data)

    def direct_fd(self) -> int:
        """The partial file's descriptor for a process that writes the compressed archive itself (the
        :meth:`compressor_command`, or tar when there is no compression); it is hashed as it grows."""
        if self.fed:
            raise ArchiveError("internal: %s already has data written through the writer" % self.partial)
        if self.follower is None:
            self.follower = _Follower(self.fd)
        return self.fd

    def commit(self) -> str:
        """Flush, fsync and rename into place; returns the archive's sha256."""
        if self.follower is not None:
            digest = self.follower.finish()
            self.size = self.follower.size
        else:
            self._out(self.codec.finish())
            self._stop_thread()
            if self.error is not None:
                raise self.error
            digest = self.sha256.hexdigest()
        self.write_behind.close()
        try:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
            os.rename(self.partial, self.path)
        except OSError as exc:
            raise ArchiveError("finishing %s failed: %s" % (self.path, exc.strerror))
        self.committed = True
        return digest

    def close(self) -> None:
        self._stop_thread()
        if self.follower is not None:
            self.follower.cancel()
        self.write_behind.close()
        if self._codec is not None:
            self._codec.close()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if not self.committed:
            try:
                os.unlink(self.partial)
            except OSError:
                pass


def _run_tar(argv: list[str], what: str, feed: Optional[Iterable[bytes]] = None,
             sink: Optional[Callable[[Buffer], Any]] = None, through: Optional[list[str]] = None,
             out_fd: Optional[int] = None) -> None:
    """Run GNU tar feeding it ``feed`` and/or reading its output (through the ``through`` filter command, if
    given) into ``sink`` or straight into the file ``out_fd``; raise with the commands' stderr."""
    final_out: Union[int, None] = subprocess.PIPE if sink is not None else subprocess.DEVNULL
    if out_fd is not None:
        final_out = out_fd
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if feed is not None else subprocess.DEVNULL,
                                stdout=final_out if through is None else subprocess.PIPE,
                                stderr=subprocess.PIPE, bufsize=0)
    except OSError as exc:
        raise ArchiveError("%s needs GNU tar on this host: %s" % (what, exc.strerror))
    procs = [proc]
    output = proc.stdout
    if through is not None and proc.stdout is not None:
        _grow_pipe(proc.stdout)
        try:
            procs.append(subprocess.Popen(through, stdin=proc.stdout, stdout=final_out, stderr=subprocess.PIPE,
                                          bufsize=0))
        except OSError as exc:
            proc.kill()
            proc.wait()
            raise ArchiveError("%s: cannot run %s: %s" % (what, through[0], exc.strerror))
        proc.stdout.close()  # the filter holds the read end now
        output = procs[1].stdout
    errors: list[list[bytes]] = [[] for _p in procs]
    helpers = []
    for index, each in enumerate(procs):
        stream = each.stderr
        if stream is not None:
            helpers.append(threading.Thread(target=lambda s=stream, i=index: errors[i].append(s.read())))
    sink_failure: list[BaseException] = []
    if sink is not None and output is not None and feed is not None:
        # Both ends in this process: the output is read by a thread while this one feeds tar.
        def pump(out: IO[bytes] = output, to: Callable[[Buffer], Any] = sink) -> None:
            try:
                _pump(out, to)
            except BaseException as exc:  # pylint: disable=broad-except
                sink_failure.append(exc)
                for each in procs:
                    each.kill()
        helpers.append(threading.Thread(target=pump, name="archive-pump"))
    for helper in helpers:
        helper.daemon = True
        helper.start()
    failure: Optional[BaseException] = None
    try:
        if sink is not None and output is not None and feed is None:
            _pump(output, sink)
        if feed is not None and proc.stdin is not None:
            _grow_pipe(proc.stdin)
            try:
                for chunk in feed:
                    proc.stdin.write(chunk)
            except BrokenPipeError:
                pass  # tar stopped reading; its exit status and stderr say why
            finally:
                proc.stdin.close()
    except BaseException as exc:  # pylint: disable=broad-except
        failure = exc
        for each in procs:
            each.kill()
    codes = [each.wait() for each in procs]
    for helper in helpers:
        helper.join()
    if failure is not None:
        raise failure
    if sink_failure:
        raise sink_failure[0]
    messages = [b"".join(e).decode("utf-8", "replace").strip() for e in errors]
    # GNU tar exits 1 when a file changed while it was read: the archive is complete, the file a moment older.
    if codes[0] not in (0, 1) or (codes[0] == 1 and "--create" not in argv):
        raise ArchiveError("%s failed (tar exit %d): %s" % (what, codes[0], messages[0][-2000:] or "no message"))
    if len(codes) > 1 and codes[1] != 0:
        program = through[0] if through else "filter"
        raise ArchiveError("%s failed (%s exit %d): %s" % (what, program, codes[1], messages[1][-2000:] or "no message"))


def _pump(output: IO[bytes], sink: Callable[[Buffer], Any]) -> None:
    _grow_pipe(output)
    buf = bytearray(CHUNK)
    while True:
        n = output.readinto(buf)  # type: ignore[attr-defined]
        if not n:
            return
        sink(memoryview(buf)[:n])


def _grow_pipe(pipe: IO[bytes]) -> None:
    try:
        fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, CHUNK)
    except OSError:
        pass  # a smaller pipe only costs speed


# GNU format: long names and big files like pax, but no extended header per file (pax's sub-second mtimes cost
# about a fifth of the fast path's speed, and the Engine's archive API keeps whole seconds anyway).
TAR_CREATE = ["tar", "--create", "--file=-", "--format=gnu", "--numeric-owner", "--no-recursion"]


def _tar_names(paths: Iterable[str], batch: int = 1 << 16) -> Iterator[bytes]:
    """NUL-terminated ``./path`` names for ``tar --null --files-from=-``, in batches of about ``batch`` bytes."""
    parts: list[bytes] = []
    size = 0
    for path in paths:
        name = ("./" + path if path != "." else ".").encode("utf-8", "surrogateescape") + b"\0"
        parts.append(name)
        size += len(name)
        if size >= batch:
            yield b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)


def _tar_create_names(root: str, live: bool = False) -> list[str]:
    """GNU tar archiving, from ``root``, the NUL-terminated names fed on its stdin (see :func:`_tar_names`).

    ``live``: a name removed after the walk saw it is a warning, not a failure (``--ignore-failed-read``).
    """
    argv = TAR_CREATE + ["--directory=" + root, "--null", "--verbatim-files-from", "--files-from=-"]
    return argv + ["--ignore-failed-read"] if live else argv


def _archive_names(root: str, writer: ArchiveWriter, names: Iterable[bytes]) -> None:
    """GNU tar archives the names fed to it from ``root`` into ``writer``: compressed by the zstd command, or not
    compressed at all, straight into the archive file; through this process's codec otherwise."""
    argv = _tar_create_names(root)
    through = writer.compressor_command()
    what = "archiving %s" % root
    if through is not None or writer.compression == "none":
        _run_tar(argv, what, feed=names, through=through, out_fd=writer.direct_fd())
    else:
        _run_tar(argv, what, feed=names, sink=writer.write)


def archive_directory(root: str, writer: ArchiveWriter, listing: Listing) -> None:
    """The fast path: GNU tar reads ``root`` on this host; the stream goes through ``writer``.

    tar gets the exact paths of ``listing`` (checked by the safety rule), so what is archived is what
    was checked, in the same order.
    """
    _archive_names(root, writer, _tar_names(listing.entries))


def archive_tree(root: str, writer: ArchiveWriter) -> Listing:
    """The fast path with the safety walk alongside the copy: each path of ``root`` goes to GNU tar as soon as
    the safety rule accepted it, so tar reads and compresses while the rest of the tree is still being walked.

    What is archived is what was checked, in the same order. An entry the rule refuses stops tar and raises
    UnsafeEntry; the caller's ``writer`` then removes the partial archive (nothing is committed).
    """
    check = SafetyCheck()
    _archive_names(root, writer, _tar_names(walk_checked(root, check)))
    return check.listing


def archive_stream(chunks: Iterable[bytes], writer: ArchiveWriter) -> Listing:
    """The engine path: a tar stream read through the Engine (entries ``./...``) goes into ``writer``.

    The stream is checked with the safety rule as it passes; the bytes are written as they came.
    """
    return stream_listing(chunks, writer.write)


def stream_listing(chunks: Iterable[bytes], sink: Optional[Callable[[bytes], Any]] = None) -> Listing:
    """The listing of a tar stream (safety rule applied), passing its bytes to ``sink`` if given."""
    source = _ChunkReader(chunks, sink)
    check = SafetyCheck()
    try:
        for _tar, member in _members(source):
            check.add_member(member)
    except tarfile.TarError as exc:
        raise ArchiveError("the tar stream is unreadable: %s" % exc)
    source.drain()
    return check.listing


def _forward(pos: int, offset: int, whence: int) -> int:
    """The position a ``seek`` of a forward-only stream at ``pos`` goes to; tarfile only ever seeks forward."""
    target = offset if whence == os.SEEK_SET else pos + offset
    if whence not in (os.SEEK_SET, os.SEEK_CUR) or target < pos:
        raise ArchiveError("internal: the archive stream can only be read forward")
    return target


class _ChunkReader:
    """A forward-only file object over an iterator of chunks, for tarfile's random-access mode.

    ``seek`` forward skips whole chunks without copying them (the data of a 200 MB file is passed over, not
    copied); every chunk is also handed to ``sink`` if given. tarfile only ever seeks forward on it.
    """

    def __init__(self, chunks: Iterable[bytes], sink: Optional[Callable[[bytes], Any]] = None) -> None:
        self.chunks = iter(chunks)
        self.sink = sink
        self.current = b""
        self.at = 0
        self.pos = 0
        self.done = False

    def _next(self) -> bool:
        for chunk in self.chunks:
            if chunk:
                if self.sink is not None:
                    self.sink(chunk)
                self.current, self.at = chunk, 0
                return True
        self.done, self.current, self.at = True, b"", 0
        return False

    def _advance(self, size: int, keep: Optional[list[bytes]]) -> None:
        while size != 0:
            avail = len(self.current) - self.at
            if avail == 0:
                if self.done or not self._next():
                    return
                continue
            take = avail if size < 0 else min(avail, size)
            if keep is not None:
                keep.append(self.current[self.at:self.at + take])
            self.at += take
            self.pos += take
            if size > 0:
                size -= take

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        self._advance(size, parts)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._advance(_forward(self.pos, offset, whence) - self.pos, None)
        return self.pos

    def drain(self) -> None:
        while not self.done and self._next():
            pass


def _members(source: _ChunkReader) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """Each member of the tar stream in ``source``, without keeping the list of all members in memory."""
    with tarfile.open(fileobj=source, mode="r:") as tar:  # type: ignore[call-overload]
        while True:
            member = tar.next()
            if member is None:
                return
            tar.members.clear()  # tarfile remembers every member; a volume may hold millions
            yield tar, member


def directory_entry(name: str, root: Entry) -> bytes:
    """A tar archive of one entry: the directory ``name`` with the owner, mode and mtime of ``root``.

    The Engine's archive API applies no entry to the directory it extracts into, so a volume's root keeps the
    mount point's attributes; this archive, extracted one level up, gives it the archived root's.
    """
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, root.mode, root.uid, root.gid, root.mtime
    return info.tobuf(tarfile.GNU_FORMAT) + b"\0" * (2 * tarfile.BLOCKSIZE)


class _Hasher:
    """sha256 in a thread of its own, so hashing overlaps reading and decompressing."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.queue: queue.Queue[Optional[bytes]] = queue.Queue(maxsize=8)
        self.thread = threading.Thread(target=self._run, name="archive-hash")
        self.thread.daemon = True
        self.thread.start()

    def _run(self) -> None:
        while True:
            data = self.queue.get()
            if data is None:
                return
            self.sha256.update(data)

    def update(self, data: bytes) -> None:
        self.queue.put(data)

    def hexdigest(self) -> str:
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        return self.sha256.hexdigest()


class ArchiveReader:
    """Reads an archive file: ``chunks()`` yields the tar stream, ``hexdigest()`` is the sha256 of the file's bytes."""

    def __init__(self, path: str, compression: str) -> None:
        self.path = path
        self.compression = compression
        self.hasher = _Hasher()
        self.size = 0

    def chunks(self) -> Iterator[bytes]:
        codec = decompressor(self.compression)
        try:
            with open(self.path, "rb", buffering=0) as handle:
                while True:
                    data = handle.read(CHUNK)
                    if not data:
                        break
                    self.hasher.update(data)
                    self.size += len(data)
                    yield from codec.feed(data)
            yield from codec.finish()
        except OSError as exc:
            raise ArchiveError("reading %s failed: %s" % (self.path, exc.strerror))
        finally:
            codec.close()

    def hexdigest(self) -> str:
        """The sha256 of what was read so far (the whole file once ``chunks()`` is exhausted)."""
        return self.hasher.hexdigest()


def scan_archive(path: str, compression: str) -> tuple[Listing, str]:
    """Read the whole archive without writing anything: its listing (safety rule applied) and sha256."""
    reader = ArchiveReader(path, compression)
    try:
        listing = stream_listing(reader.chunks())
    except UnsafeEntry:
        raise
    except ArchiveError as exc:
        raise ArchiveError("%s: %s" % (path, exc))
    except zlib.error as exc:
        raise ArchiveError("%s is not a readable gzip archive: %s" % (path, exc))
    finally:
        digest = reader.hexdigest()  # also ends the hashing thread when reading stopped early
    return listing, digest


def verify_archive(path: str, manifest: Manifest) -> Listing:
    """Checksum, manifest agreement and the safety rule, before anything is touched; the listing."""
    if not os.path.isfile(path):
        raise ArchiveError("archive %s does not exist" % path)
    try:
        listing, digest = scan_archive(path, manifest.compression)
    except ArchiveError as exc:
        raise _cause(path, manifest, exc)
    _check_against_manifest(path, manifest, listing, digest)
    return listing


def _cause(path: str, manifest: Manifest, exc: ArchiveError) -> ArchiveError:
    """What to report when reading an archive failed: a damaged file often fails to decompress or parse first, and
    then its checksum names the real cause."""
    digest = rehash(path)
    if digest == manifest.sha256:
        return exc
    return ArchiveError("archive %s has sha256 %s but its manifest says %s: the file is damaged or not the one "
                        "the manifest describes" % (path, digest, manifest.sha256))


def _check_against_manifest(path: str, manifest: Manifest, listing: Listing, digest: str) -> None:
    if digest != manifest.sha256:
        raise _cause(path, manifest, ArchiveError("archive %s changed while it was read" % path))
    if listing.files != manifest.files or listing.digest() != manifest.listing_sha256:
        raise ArchiveError("archive %s holds %d entries (listing %s) but its manifest says %d (listing %s)"
                           % (path, listing.files, listing.digest()[:12], manifest.files,
                              manifest.listing_sha256[:12]))


TAR_EXTRACT = ["tar", "--extract", "--file=-", "--numeric-owner", "--same-owner", "--same-permissions",
               "--no-unquote", "--delay-directory-restore"]


def extract_to_directory(path: str, manifest: Manifest, root: str) -> None:
    """The fast path of a restore: GNU tar writes the (already verified) archive into ``root``.

    The file is hashed again as it streams, so a file swapped between the check and now is reported.
    """
    reader = ArchiveReader(path, manifest.compression)
    _run_tar(TAR_EXTRACT + ["--directory=" + root], "extracting %s into %s" % (path, root), feed=reader.chunks())
    digest = reader.hexdigest()
    if digest != manifest.sha256:
        raise ArchiveError("archive %s changed while it was restored (sha256 now %s); restore it again"
                           % (path, digest))


def clear_directory(root: str) -> None:
    """Remove everything inside ``root`` (not root itself: it is the volume's mountpoint)."""
    with os.scandir(root) as it:
        for child in it:
            if child.is_dir(follow_symlinks=False):
                shutil.rmtree(child.path)
            else:
                os.unlink(child.path)


STAGING_PREFIX = "dockhand-restore."  # a directory a restore stages an archive in, beside the volume's data


def remove_stale_staging(parent: str) -> None:
    """Remove what a restore killed midway left in ``parent`` (staging directories are only ever ours)."""
    with os.scandir(parent) as it:
        stale = [e.path for e in it if e.name.startswith(STAGING_PREFIX) and e.is_dir(follow_symlinks=False)]
    for path in stale:
        shutil.rmtree(path)


def extract_staged(path: str, manifest: Manifest, staging: str) -> Listing:
    """A restore in one pass over the archive: read, hashed, checked and extracted at once into ``staging``.

    Each entry reaches GNU tar only once the safety rule accepted its header; what tar wrote counts only once the
    whole file's sha256 and its listing agree with the manifest. On any failure ``staging`` is removed and
    ArchiveError (UnsafeEntry for a refused entry) says why. ``staging`` must not exist; it is made 0700.
    """
    os.mkdir(staging, 0o700)
    try:
        failure: Optional[ArchiveError] = None
        listing, digest = Listing(), ""
        try:
            listing, digest = _extract_file(path, manifest.compression, staging)
        except UnsafeEntry as exc:
            failure = exc
        except ArchiveError as exc:
            failure = ArchiveError("%s: %s" % (path, exc))
        except zlib.error as exc:
            failure = ArchiveError("%s is not a readable gzip archive: %s" % (path, exc))
        if failure is not None:
            raise _cause(path, manifest, failure)
        _check_against_manifest(path, manifest, listing, digest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return listing


def _decompress_command(compression: str) -> Optional[list[str]]:
    """The command that decompresses an archive on its stdin onto its stdout, where this host has it."""
    program = {"zstd": "zstd", "gzip": "gzip"}.get(compression)
    found = shutil.which(program) if program else None
    return [found, "-d", "-c", "-q"] if found else None


def _extract_file(path: str, compression: str, root: str) -> tuple[Listing, str]:
    """Extract the archive file ``path`` into ``root`` through the safety gate; its listing and the file's sha256.

    Where the host has the decompressor's command (or there is nothing to decompress), the tar stream goes from
    that command (or the file) to GNU tar without passing through this process: only the entries' headers are
    read here, checked and passed on, and the data of each accepted entry is moved pipe to pipe by the kernel
    (splice). The file is hashed by a thread reading the same open file. Otherwise everything is read,
    decompressed and passed on here (libzstd, zlib).
    """
    command = _decompress_command(compression)
    if command is None and compression != "none":
        reader = ArchiveReader(path, compression)
        try:
            listing = _gated_extract(root, lambda tar: _ChunkGate(reader.chunks(), tar.write))
        finally:
            digest = reader.hexdigest()  # also ends the hashing thread when reading stopped early
        return listing, digest
    try:
        handle = open(path, "rb", buffering=0)  # pylint: disable=consider-using-with
    except OSError as exc:
        raise ArchiveError("reading %s failed: %s" % (path, exc.strerror))
    follower = _Follower(handle.fileno())
    follower.writer_done.set()  # the file is whole: hash it to its end
    proc: Optional[subprocess.Popen[bytes]] = None
    try:
        in_fd = handle.fileno()
        if command is not None:
            try:
                proc = subprocess.Popen(command, stdin=handle, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        bufsize=0)
            except OSError as exc:
                raise ArchiveError("cannot run %s: %s" % (command[0], exc.strerror))
            if proc.stdout is None:
                raise ArchiveError("internal: no pipe from %s" % command[0])
            _grow_pipe(proc.stdout)
            in_fd = proc.stdout.fileno()
        listing = _gated_extract(root, lambda tar: _PipeGate(in_fd, tar.fd))
        if proc is not None:
            code = proc.wait()
            if code != 0:
                message = (proc.stderr.read() if proc.stderr else b"").decode("utf-8", "replace").strip()
                raise ArchiveError("decompressing failed (%s exit %d): %s"
                                   % (os.path.basename(command[0]) if command else "", code,
                                      message[-2000:] or "no message"))
        return listing, follower.finish()
    except BaseException:
        follower.cancel()
        raise
    finally:
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        handle.close()


def swap_in(staging: str, root: str) -> None:
    """Replace what ``root`` holds with what ``staging`` holds, by renames (same filesystem), including root's own
    owner, mode and mtime (those of the archive's ``.`` entry); ``staging`` is removed."""
    st = os.lstat(staging)
    clear_directory(root)
    with os.scandir(staging) as it:
        names = [entry.name for entry in it]
    for name in names:
        os.rename(os.path.join(staging, name), os.path.join(root, name))  # a moved tree keeps its mtimes
    os.rmdir(staging)
    os.chown(root, st.st_uid, st.st_gid)  # before chmod: chown clears setuid/setgid bits
    os.chmod(root, stat.S_IMODE(st.st_mode))
    os.utime(root, ns=(st.st_atime_ns, st.st_mtime_ns))  # last: the renames changed it


# ---------------------------------------------------------------------------------------------------------------
# Archives on disk: finding a volume's archives, retention


@dataclass(frozen=True)
class StoredArchive:
    path: str
    manifest: Manifest


def stored_archives(directory: str, volume: Optional[str] = None) -> list[StoredArchive]:
    """Archives with a readable manifest in ``directory`` (of ``volume`` if given), oldest first."""
    found = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ArchiveError("cannot list %s: %s" % (directory, exc.strerror))
    for name in names:
        if not name.endswith(MANIFEST_SUFFIX):
            continue
        try:
            manifest = Manifest.load(os.path.join(directory, name))
        except ArchiveError:
            continue  # not ours, or damaged: never deleted by retention
        archive = os.path.join(directory, name[:-len(MANIFEST_SUFFIX)])
        if (volume is None or manifest.volume == volume) and os.path.basename(archive) == manifest.archive:
            found.append(StoredArchive(archive, manifest))
    return sorted(found, key=lambda a: (a.manifest.archived_at, a.path))


def prune_archives(directory: str, volume: str, keep: int) -> list[str]:
    """Delete the oldest archives of ``volume`` beyond ``keep`` (archive and manifest); the deleted paths."""
    removed = []
    for old in stored_archives(directory, volume)[:-keep] if keep > 0 else []:
        for victim in (old.path, manifest_path(old.path)):
            try:
                os.unlink(victim)
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise ArchiveError("cannot delete the old archive %s: %s" % (victim, exc.strerror))
        removed.append(old.path)
    return removed


def rehash(path: str) -> str:
    """sha256 of a file as it is on disk now (retention deletes only after the new archive reads back)."""
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        while True:
            data = handle.read(CHUNK)
            if not data:
                return digest.hexdigest()
            digest.update(data)


def ensure_directory(path: str) -> bool:
    """Create a missing archive directory 0700 (parents too); True when it was created."""
    if os.path.isdir(path):
        return False
    try:
        os.makedirs(path, mode=0o700)
        os.chmod(path, 0o700)
    except OSError as exc:
        raise ArchiveError("cannot create the archive directory %s: %s" % (path, exc.strerror))
    return True


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


# ---------------------------------------------------------------------------------------------------------------
# Streams between hosts: a volume's tree read on one host and written on another in one pipe, nothing at rest.
#
# The sender writes frames to its stdout: a kind byte, a 4-byte big-endian length, the payload. ``H`` (JSON: format
# and compression), ``D`` (the compressed tar stream, in order), then ``T`` (JSON: sha256 and length of all ``D``
# payloads, and the listing the source's safety walk produced while tar read) or ``E`` (JSON: why the sender
# stopped). The receiver checks every entry with the safety rule BEFORE tar sees its header, hashes what it got,
# and accepts the result only when the stream ended with ``T``, the sha256 matches, and the tree tar wrote lists
# exactly as the stream did (and as the source's walk, unless ``live``). Otherwise it empties the directory.
# This module is shipped to both hosts and run there by :func:`main` (it needs nothing beyond the standard library).

STREAM_FORMAT = "dockhand.containers/volume-stream"
STREAM_VERSION = 1
STREAM_COMPRESSIONS = ("zstd", "none")
_FRAME_HEAD = 5
FRAME_HEADER, FRAME_DATA, FRAME_TRAILER, FRAME_ERROR = b"H", b"D", b"T", b"E"


def _write_all(fd: int, data: Buffer) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_frame(fd: int, kind: bytes, payload: Buffer) -> None:
    _write_all(fd, kind + len(payload).to_bytes(4, "big"))
    if len(payload):
        _write_all(fd, payload)


def _read_exactly(handle: IO[bytes], size: int) -> Optional[bytes]:
    """``size`` bytes, or None at a clean end before the first byte; ArchiveError when the end cuts them."""
    parts = []
    left = size
    while left:
        data = handle.read(left)
        if not data:
            if left == size:
                return None
            raise ArchiveError("the stream ends in the middle of a frame (the sender or the connection stopped)")
        parts.append(data)
        left -= len(data)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_frames(handle: IO[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """(kind, payload) for each frame of a stream until its end."""
    while True:
        head = _read_exactly(handle, _FRAME_HEAD)
        if head is None:
            return
        kind, size = head[:1], int.from_bytes(head[1:], "big")
        if kind not in (FRAME_HEADER, FRAME_DATA, FRAME_TRAILER, FRAME_ERROR) or size > 64 * CHUNK:
            raise ArchiveError("the stream holds a damaged frame (kind %r, %d bytes): not a volume stream, or "
                               "altered on the way" % (kind, size))
        payload = _read_exactly(handle, size) if size else b""
        if payload is None:
            raise ArchiveError("the stream ends in the middle of a frame (the sender or the connection stopped)")
        yield kind, payload


class StreamWriter:
    """Compresses and hashes a tar stream and writes it as ``D`` frames onto a file descriptor."""

    def __init__(self, fd: int, compression: str, level: Optional[int]) -> None:
        if compression not in STREAM_COMPRESSIONS:
            raise ArchiveError("a stream's compression must be one of %s (got %r)"
                               % (", ".join(STREAM_COMPRESSIONS), compression))
        self.fd = fd
        self.compression = compression
        self.level = DEFAULT_LEVELS[compression] if level is None else level
        self.codec = compressor(compression, level, workers=1)
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write_compressed(self, data: Buffer) -> int:
        """Bytes already compressed the way this stream is (by :meth:`compressor_command`), or not compressed."""
        if len(data):
            self.sha256.update(data)
            self.size += len(data)
            write_frame(self.fd, FRAME_DATA, data)
        return len(data)

    def write(self, data: Buffer) -> int:
        for chunk in self.codec.feed(data):
            self.write_compressed(chunk)
        return len(data)

    def compressor_command(self) -> Optional[list[str]]:
        """The zstd command when this host has it (multi-threaded, outside this process); None otherwise."""
        command = shutil.which("zstd") if self.compression == "zstd" else None
        return [command, "-q", "-c", "-T0", "-%d" % self.level] if command else None

    def finish(self) -> dict[str, Any]:
        for chunk in self.codec.finish():
            self.write_compressed(chunk)
        return dict(sha256=self.sha256.hexdigest(), stream_bytes=self.size)

    def close(self) -> None:
        self.codec.close()


def send_directory(root: str, fd: int, compression: str = "zstd", level: Optional[int] = None,
                   live: bool = False) -> dict[str, Any]:
    """Send ``root``'s tree as a stream to ``fd``; the trailer sent. An ``E`` frame says why, when it fails.

    The safety walk feeds tar as it goes (as :func:`archive_tree` does): what is sent is what was checked.
    ``live``: the tree is in use (the first copy of a move); entries removed while it is read are left out (the
    receiver, told ``--live`` too, then accepts a stream that differs from the walk's listing).
    """
    try:
        check = SafetyCheck()
        writer = StreamWriter(fd, compression, level)
        try:
            write_frame(fd, FRAME_HEADER, json.dumps(dict(format=STREAM_FORMAT, format_version=STREAM_VERSION,
                                                          compression=compression)).encode())
            through = writer.compressor_command()
            _run_tar(_tar_create_names(root, live), "reading %s" % root,
                     feed=_tar_names(walk_checked(root, check, vanished_ok=live)),
                     through=through, sink=writer.write_compressed if through else writer.write)
            trailer = writer.finish()
        finally:
            writer.close()
        listing = check.listing
        trailer.update(files=listing.files, bytes=listing.bytes, listing_sha256=listing.digest())
        write_frame(fd, FRAME_TRAILER, json.dumps(trailer).encode())
        return trailer
    except (ArchiveError, OSError) as exc:
        message = "reading %s failed: %s" % (root, exc)
        try:
            write_frame(fd, FRAME_ERROR, json.dumps(dict(msg=message)).encode())
        except OSError:
            pass  # nobody listens any more
        raise ArchiveError(message)


class _Gate:
    """Passes a tar stream on to ``sink`` only up to ``allowed``: the bytes of entries the safety rule accepted.

    The tar parser reads ahead (the next header, a chunk beyond it); those bytes wait here until their entry is
    checked, so tar never sees an entry we refuse.
    """

    def __init__(self, sink: Callable[[Buffer], Any]) -> None:
        self.sink = sink
        self.held: list[Buffer] = []
        self.start = 0  # stream position of the first held byte
        self.allowed = 0

    def hold(self, chunk: Buffer) -> None:
        self.held.append(chunk)
        self._flush()

    def allow(self, position: int) -> None:
        if position > self.allowed:
            self.allowed = position
            self._flush()

    def allow_all(self) -> None:
        self.allow(self.start + sum(len(c) for c in self.held))

    def _flush(self) -> None:
        while self.held and self.start < self.allowed:
            chunk = self.held[0]
            take = min(len(chunk), self.allowed - self.start)
            self.sink(chunk if take == len(chunk) else memoryview(chunk)[:take])
            self.start += take
            if take == len(chunk):
                self.held.pop(0)
            else:
                self.held[0] = memoryview(chunk)[take:]  # a view: the rest of a 1 MiB chunk is not copied


class _TarSink:
    """GNU tar extracting into ``root`` from its stdin; ``write`` feeds it, ``finish`` waits and checks."""

    def __init__(self, root: str) -> None:
        try:
            self.proc = subprocess.Popen(TAR_EXTRACT + ["--directory=" + root], stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, bufsize=0)
        except OSError as exc:
            raise ArchiveError("receiving needs GNU tar on this host: %s" % exc.strerror)
        if self.proc.stdin is None:
            raise ArchiveError("internal: no pipe to tar")
        _grow_pipe(self.proc.stdin)
        self.fd = self.proc.stdin.fileno()
        self.errors: list[bytes] = []
        self.reader = threading.Thread(target=self._read_errors, daemon=True)
        self.reader.start()

    def _read_errors(self) -> None:
        if self.proc.stderr is not None:
            self.errors.append(self.proc.stderr.read())

    def write(self, data: Buffer) -> None:
        try:
            self.proc.stdin.write(data)  # type: ignore[union-attr]
        except BrokenPipeError:
            self.finish()  # tar stopped reading: its status says why
            raise ArchiveError("tar stopped reading the stream")

    def finish(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        code = self.proc.wait()
        self.reader.join()
        if code != 0:
            message = b"".join(self.errors).decode("utf-8", "replace").strip()
            raise ArchiveError("tar exit %d: %s" % (code, message[-2000:] or "no message"))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.finish()
        except ArchiveError:
            pass


class _ChunkGate(_ChunkReader):
    """The tar stream of ``chunks`` for tarfile; passed on to ``sink`` up to what :meth:`allow` allowed."""

    def __init__(self, chunks: Iterable[bytes], sink: Callable[[Buffer], Any]) -> None:
        self.gate = _Gate(sink)
        super().__init__(chunks, self.gate.hold)

    def allow(self, position: int) -> None:
        self.gate.allow(position)

    def finish(self) -> None:
        """Pass on the rest: the end-of-archive blocks and whatever follows them."""
        self.drain()
        self.gate.allow_all()


class _PipeGate:
    """The tar stream on ``in_fd`` (a pipe, or the archive file itself) for tarfile, forward only, passed on to
    ``out_fd`` (tar's stdin) up to what :meth:`allow` allowed.

    What tarfile reads (headers) waits here until its entry is checked; what it seeks over (the data of an entry
    already accepted) goes from ``in_fd`` to ``out_fd`` by splice, without being copied into this process.
    """

    def __init__(self, in_fd: int, out_fd: int) -> None:
        self.in_fd, self.out_fd = in_fd, out_fd
        self.pos = 0  # how far the stream was read or passed over
        self.sent = 0  # how far it was passed on
        self.allowed = 0
        self.held = bytearray()  # read, not passed on yet: the stream from ``sent`` to ``pos``
        self.splice: Optional[Callable[[int, int, int], int]] = getattr(os, "splice", None)  # Linux, Python 3.10+

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        got = 0
        while size < 0 or got < size:
            data = os.read(self.in_fd, CHUNK if size < 0 else size - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        data = b"".join(parts)
        self.pos += len(data)
        self.held += data
        self._flush()
        return data

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        target = _forward(self.pos, offset, whence)
        if target > self.allowed:
            raise ArchiveError("internal: the data of an entry was to be passed on before its header was checked")
        self._flush()
        self._move(target - self.pos)
        return self.pos

    def allow(self, position: int) -> None:
        if position > self.allowed:
            self.allowed = position
            self._flush()

    def finish(self) -> None:
        """Pass on the rest: the end-of-archive blocks and the padding after them. GNU tar may stop reading once it
        has the end-of-archive blocks; the padding it leaves is read here, so the decompressor writing it ends."""
        try:
            self.allow(self.pos)
            self._move(-1)
        except BrokenPipeError:
            while os.read(self.in_fd, CHUNK):
                pass

    def _flush(self) -> None:
        take = min(len(self.held), self.allowed - self.sent)
        if take > 0:
            _write_all(self.out_fd, bytes(self.held[:take]))
            del self.held[:take]
            self.sent += take

    def _move(self, count: int) -> None:
        """Pass ``count`` bytes (all that is left when negative) from ``in_fd`` to ``out_fd``."""
        while count != 0:
            moved = self._splice(CHUNK if count < 0 else min(count, CHUNK))
            if not moved:
                return  # the stream ended: tarfile's next read reports a truncated archive
            self.pos += moved
            self.sent += moved
            if count > 0:
                count -= moved
        self.allowed = max(self.allowed, self.pos)

    def _splice(self, count: int) -> int:
        if self.splice is not None:
            try:
                return self.splice(self.in_fd, self.out_fd, count)
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOSYS):
                    raise
                self.splice = None  # neither end can splice here: copy instead
        data = os.read(self.in_fd, count)
        _write_all(self.out_fd, data)
        return len(data)


def _gated_extract(root: str, source_for: Callable[["_TarSink"], Union[_ChunkGate, _PipeGate]]) -> Listing:
    """GNU tar extracts a tar stream into ``root``; each entry is passed on to tar only once the safety rule accepted
    its header, so tar never sees an entry we refuse. ``source_for`` gives the gated stream feeding the tar it is
    handed. The stream's listing; on a failure tar is stopped, and what it wrote so far is left for the caller to
    remove."""
    tar = _TarSink(root)
    try:
        source = source_for(tar)
        check = SafetyCheck()
        try:
            with tarfile.open(fileobj=source, mode="r:") as archive:  # type: ignore[call-overload]
                while True:
                    member = archive.next()
                    if member is None:
                        break
                    archive.members.clear()
                    check.add_member(member)
                    source.allow(archive.offset)
            source.finish()
        except tarfile.TarError as exc:
            raise ArchiveError("the tar stream is unreadable: %s" % exc)
        except BrokenPipeError:
            tar.finish()  # tar stopped reading: its status says why
            raise ArchiveError("tar stopped reading the stream")
        tar.finish()
    except BaseException:
        tar.kill()
        raise
    return check.listing


def _stream_chunks(handle: IO[bytes], state: dict[str, Any]) -> Iterator[bytes]:
    """The tar stream of a volume stream on ``handle`` (decompressed); fills ``state`` with header and trailer."""
    codec: Optional[Codec] = None
    sha256 = hashlib.sha256()
    size = 0
    try:
        for kind, payload in read_frames(handle):
            if kind == FRAME_ERROR:
                raise ArchiveError("the sender stopped: %s" % _json_frame(payload).get("msg", "no message"))
            if kind == FRAME_HEADER:
                header = _json_frame(payload)
                if header.get("format") != STREAM_FORMAT or header.get("format_version") != STREAM_VERSION:
                    raise ArchiveError("not a volume stream this collection reads (format %r version %r)"
                                       % (header.get("format"), header.get("format_version")))
                if header.get("compression") not in STREAM_COMPRESSIONS:
                    raise ArchiveError("the stream's compression %r is unknown" % header.get("compression"))
                state["header"] = header
                codec = decompressor(header["compression"])
                continue
            if codec is None:
                raise ArchiveError("the stream does not start with its header: not a volume stream")
            if kind == FRAME_TRAILER:
                yield from codec.finish()
                state["trailer"] = _json_frame(payload)
                state["received"] = dict(sha256=sha256.hexdigest(), stream_bytes=size)
                return
            sha256.update(payload)
            size += len(payload)
            yield from codec.feed(payload)
        raise ArchiveError("the stream ended before its trailer (the sender or the connection stopped)")
    finally:
        if codec is not None:
            codec.close()


def _json_frame(payload: bytes) -> dict[str, Any]:
    try:
        value = json.loads(payload.decode("utf-8"))
    except ValueError:
        raise ArchiveError("the stream holds a damaged header or trailer")
    if not isinstance(value, dict):
        raise ArchiveError("the stream holds a damaged header or trailer")
    return value


def receive_directory(root: str, handle: IO[bytes], live: bool = False,
                      replace_listing: Optional[str] = None) -> dict[str, Any]:
    """Write the stream on ``handle`` into ``root`` (empty, or holding exactly ``replace_listing``), verified.

    On any failure ``root`` is emptied again and ArchiveError says why (and that it was emptied).
    """
    before = host_listing(root)
    if before.files and before.digest() != replace_listing:
        raise ArchiveError("%s is not empty (%d entries); nothing was written" % (root, before.files))
    state: dict[str, Any] = {}
    try:
        if before.files:
            clear_directory(root)
        streamed = _gated_extract(root, lambda tar: _ChunkGate(_stream_chunks(handle, state), tar.write))
        return _verified(root, state, streamed, live)
    except BaseException as exc:
        clear_directory(root)
        if isinstance(exc, (ArchiveError, OSError, zlib.error)):
            raise ArchiveError("%s; %s was emptied again" % (exc, root))
        raise


def _verified(root: str, state: dict[str, Any], streamed: Listing, live: bool) -> dict[str, Any]:
    """The result of a complete stream, or ArchiveError when anything disagrees."""
    header, trailer, received = state["header"], state["trailer"], state["received"]
    if received["sha256"] != trailer.get("sha256") or received["stream_bytes"] != trailer.get("stream_bytes"):
        raise ArchiveError("the stream arrived with sha256 %s (%d bytes) but the sender sent %s (%s bytes): it was "
                           "altered on the way" % (received["sha256"], received["stream_bytes"], trailer.get("sha256"),
                                                   trailer.get("stream_bytes")))
    source_matches = streamed.digest() == trailer.get("listing_sha256") and streamed.files == trailer.get("files")
    if not source_matches and not live:
        raise ArchiveError("the stream lists %d entries (listing %s) but the source listed %s (listing %s): the "
                           "data changed while it was read" % (streamed.files, streamed.digest()[:12],
                                                               trailer.get("files"),
                                                               str(trailer.get("listing_sha256"))[:12]))
    written = host_listing(root)
    differences = written.differences(streamed)
    if differences:
        raise ArchiveError("%s differs from the stream after extraction: %s" % (root, "; ".join(differences)))
    return dict(files=written.files, bytes=written.bytes, listing_sha256=written.digest(), sha256=trailer["sha256"],
                stream_bytes=trailer["stream_bytes"], compression=header["compression"],
                source_files=trailer.get("files"), source_listing_sha256=trailer.get("listing_sha256"),
                source_changed=not source_matches)


def _report(result: dict[str, Any]) -> None:
    """The receiver's one JSON line on stdout, for the controller."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def main(argv: Optional[list[str]] = None) -> int:
    """``send DIR [COMPRESSION [LEVEL]] [--live]`` or ``receive DIR [--live] [--replace LISTING_SHA256]``, on a host.

    The sender's stdout is the stream; the receiver reads it on stdin and prints one JSON line: its result, or
    ``{"failed": true, "msg": ...}``. Both exit 1 on failure.
    """

    def stop(signum: int, _frame: Any) -> None:
        raise ArchiveError("stopped by signal %d" % signum)

    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, stop)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if len(args) >= 2 and args[0] == "send":
            live = "--live" in args
            positional = [arg for arg in args if arg != "--live"]
            level = int(positional[3]) if len(positional) > 3 else None
            send_directory(positional[1], sys.stdout.fileno(), positional[2] if len(positional) > 2 else "zstd",
                           level, live=live)
            return 0
        if len(args) >= 2 and args[0] == "receive":
            replace = args[args.index("--replace") + 1] if "--replace" in args else None
            result = receive_directory(args[1], sys.stdin.buffer, live="--live" in args, replace_listing=replace)
            _report(result)
            return 0
        raise ArchiveError("usage: send DIR [COMPRESSION [LEVEL]] [--live] | receive DIR [--live] [--replace SHA256]")
    except (ArchiveError, OSError, ValueError) as exc:
        if args and args[0] == "receive":
            try:
                _report(dict(failed=True, msg=str(exc)))
            except OSError:
                pass
        else:
            sys.stderr.write("%s\n" % exc)
        return 1
