"""Messages between `gradlint check` and the daemon: dicts of strings, numbers and lists, each
after its length, in `marshal`'s format.

The client's first message carries its standard streams' file descriptors (SCM_RIGHTS) with
the length prefix, so the descriptors and the bytes that announce them arrive together.

Every import here is paid by every `gradlint check` before it can hand its run to the daemon,
so: `_socket`, the C module under `socket` (whose own import, turning its constants into enums,
took 11 ms), and `marshal`, built into the interpreter, rather than `json` (which brings `re`
and `enum`, another 8 ms). marshal is no format for strangers' data, and it gets none: the
daemon serves only its own user (SO_PEERCRED) on a socket in a folder only that user may enter.
"""

from __future__ import annotations

import marshal
import os
import struct
from _socket import CMSG_LEN, SCM_RIGHTS, SOL_SOCKET

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _socket import socket
    from collections.abc import Sequence
    from typing import Any

_LENGTH = struct.Struct("!I")
MAX_MESSAGE = 64 * 2**20
"""A request holds a command line and an environment; anything longer is not a client of ours."""


class ProtocolError(Exception):
    """The other end sent something that is not a message of this protocol, or hung up midway."""


def send(connection: socket, message: dict[str, Any], fds: Sequence[int] = ()) -> None:
    body = marshal.dumps(message)
    header = _LENGTH.pack(len(body))
    if fds:
        descriptors = struct.pack(f"{len(fds)}i", *fds)
        connection.sendmsg([header], [(SOL_SOCKET, SCM_RIGHTS, descriptors)])
        connection.sendall(body)
    else:
        connection.sendall(header + body)


def receive(connection: socket, max_fds: int = 0) -> tuple[dict[str, Any] | None, list[int]]:
    """The next message and the descriptors that came with it; (None, []) when the other end
    closed the connection before a message began."""
    fds: list[int] = []
    if max_fds:
        header, ancillary, _flags, _address = connection.recvmsg(_LENGTH.size, CMSG_LEN(max_fds * 4))
        for level, kind, data in ancillary:
            if level == SOL_SOCKET and kind == SCM_RIGHTS:
                count = len(data) // 4
                fds.extend(struct.unpack(f"{count}i", data[: count * 4]))
    else:
        header = connection.recv(_LENGTH.size)
    if not header:
        return None, fds
    try:
        header += _exactly(connection, _LENGTH.size - len(header))
        (length,) = _LENGTH.unpack(header)
        if length > MAX_MESSAGE:
            raise ProtocolError(f"a message of {length} bytes")
        try:
            message = marshal.loads(_exactly(connection, length))
        except (ValueError, EOFError, TypeError) as error:
            raise ProtocolError(f"a message that is not in marshal's format ({error})") from None
        if not isinstance(message, dict):
            raise ProtocolError("a message that is not an object")
    except BaseException:
        close_descriptors(fds)
        raise
    return message, fds


def _exactly(connection: socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = connection.recv(min(size, 2**20))
        if not chunk:
            raise ProtocolError("the connection closed in the middle of a message")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def close_descriptors(fds: Sequence[int]) -> None:
    """Close descriptors received with a message (one already closed is no error)."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
