"""Where a daemon listens, and which installation it belongs to.

One daemon per user and installation: the socket's name is a digest of the Python executable and
of the gradlint package's folder, so two virtual environments (or a checkout and a wheel) never
share one. The socket lies in a folder only its user may enter: `$GRADLINT_DAEMON_DIR`, else
`$XDG_RUNTIME_DIR/gradlint`, else `$TMPDIR/gradlint-<uid>`; a folder that another user owns or
may write is refused, so no one can plant a socket that a `gradlint check` would talk to.
"""

from __future__ import annotations

import os
import stat
import sys
import zlib

PACKAGE_DIRECTORY = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
"""gradlint's folder (paths are strings here: pathlib costs its import on every command line)."""
THIRD_PARTY = ("libcst", "click", "rich", "pathspec")
"""The packages whose upgrade makes a running daemon stale (each one's folder is fingerprinted)."""


class UnsafeDirectory(Exception):
    """The socket folder exists but belongs to another user or is open to others."""


def supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def socket_directory() -> str:
    configured = os.environ.get("GRADLINT_DAEMON_DIR")
    if configured:
        return os.path.abspath(configured)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "gradlint")
    return os.path.join(os.environ.get("TMPDIR") or "/tmp", f"gradlint-{os.getuid()}")


def installation_key() -> str:
    """Names the installation, not secures it (the folder does that): a checksum, which unlike
    hashlib's digests costs no OpenSSL import on every command line."""
    identity = f"{os.path.realpath(sys.executable)}\0{PACKAGE_DIRECTORY}".encode()
    return f"{zlib.crc32(identity):08x}{zlib.adler32(identity):08x}"


def socket_path() -> str:
    return _daemon_file("sock")


def log_path() -> str:
    return _daemon_file("log")


def lock_path() -> str:
    return _daemon_file("lock")


def _daemon_file(extension: str) -> str:
    return os.path.join(socket_directory(), f"daemon-{installation_key()}.{extension}")


def check_directory(directory: str) -> bool:
    """Whether `directory` exists and is safe to use (raises UnsafeDirectory when it is not)."""
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise UnsafeDirectory(
            f"{directory} must be a folder of your own that no one else may read or write (mode 700)"
        )
    return True


def make_directory(directory: str) -> None:
    if not check_directory(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        check_directory(directory)


def code_fingerprint() -> tuple[tuple[str, int, int], ...]:
    """Size and modification time of each of gradlint's own files and of its dependencies'
    folders: any edit, reinstall or upgrade changes it (~1 ms for ~120 files)."""
    entries: list[tuple[str, int, int]] = []
    pending = [PACKAGE_DIRECTORY]
    while pending:
        folder = pending.pop()
        with os.scandir(folder) as listing:
            for entry in listing:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        pending.append(entry.path)
                elif entry.name.endswith((".py", ".md", ".json")):
                    info = entry.stat()
                    entries.append((entry.path, info.st_mtime_ns, info.st_size))
    import importlib.util  # the daemon's side only: the client never asks

    for name in THIRD_PARTY:
        spec = importlib.util.find_spec(name)  # found, not imported
        for folder in (spec.submodule_search_locations or []) if spec is not None else []:
            info = os.stat(folder)
            entries.append((folder, info.st_mtime_ns, 0))
    return tuple(sorted(entries))
