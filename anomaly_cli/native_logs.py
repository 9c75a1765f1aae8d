"""Keep TensorFlow's native log lines off the terminal while a verb runs.

TensorFlow's C++ side writes lines such as "I0000 00:00:... oneDNN custom
operations are on", "Could not find cuda drivers" and "E0000 ... failed call
to cuInit" straight to file descriptor 2 through absl, before absl's logging
is set up, so TF_CPP_MIN_LOG_LEVEL does not silence them. They land between
the user's command and adx's own output. While a verb runs, adx puts a pipe
in place of descriptor 2 and a thread sorts what arrives: lines in absl's
format (and its "All log messages before absl::InitializeLog()" notice) go
to the run's log; everything else (Python's own stderr, progress bars) is
passed through at once, byte for byte. Fatal lines ("F0000 ...") go to both,
since the process is about to die.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator

# absl/glog: severity letter, MMDD, space, hh:mm:ss (I0000 00:00:1796176806.4 ...).
_NATIVE = re.compile(rb"[IWEF]\d{4} \d\d:\d\d:\d\d")
_NOTICE = b"WARNING: All log messages before absl::InitializeLog()"


@contextlib.contextmanager
def native_logs_to(keep: Callable[[str], None]) -> Iterator[None]:
    """Divert native log lines written to stderr to `keep` for the duration."""
    if os.environ.get("ADX_DEBUG") == "1":
        yield
        return
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    sorter = threading.Thread(
        target=_sort, args=(read_end, terminal, keep), name="adx-native-logs", daemon=True
    )
    sorter.start()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(terminal, 2)  # closes the pipe's last write end: the sorter sees EOF
        sorter.join(timeout=5)
        os.close(terminal)


def _sort(read_end: int, terminal: int, keep: Callable[[str], None]) -> None:
    """Pass bytes through, except whole lines that are native log lines."""
    line_start, native = True, False
    pending = b""
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            pending += chunk
            while pending:
                if line_start:
                    if b"\n" not in pending and _undecided(pending):
                        break  # too few bytes yet to tell a native line from others
                    native = bool(_NATIVE.match(pending)) or pending.startswith(_NOTICE)
                    line_start = False
                end = pending.find(b"\n")
                if end < 0:
                    if native:
                        break  # gather the whole native line first
                    _write_all(terminal, pending)
                    pending = b""
                    break
                line, pending = pending[: end + 1], pending[end + 1 :]
                _route(line, native, terminal, keep)
                line_start = True
    if pending:
        _route(pending, native, terminal, keep)


def _route(line: bytes, native: bool, terminal: int, keep: Callable[[str], None]) -> None:
    if not native:
        _write_all(terminal, line)
        return
    if line.startswith(b"F"):  # fatal: the process is about to abort
        _write_all(terminal, line)
    with contextlib.suppress(Exception):
        keep(line.decode("utf-8", errors="replace"))


def _write_all(fd: int, data: bytes) -> None:
    """Write everything; a closed terminal must not stop the sorter (the pipe would
    fill up and block every write to stderr)."""
    with contextlib.suppress(OSError):
        while data:
            data = data[os.write(fd, data) :]


# What the start of a native line looks like: L = severity letter, 0 = digit.
_TEMPLATE = "L0000 00:00:00"


def _undecided(start: bytes) -> bool:
    """Whether `start` may still turn out to be a native line or the notice."""
    if _NATIVE.match(start) or start.startswith(_NOTICE):
        return False
    if _NOTICE.startswith(start):
        return True
    if len(start) >= len(_TEMPLATE):
        return False
    wanted = {"L": "IWEF", "0": "0123456789"}
    return all(
        chr(byte) in wanted.get(mark, mark) for byte, mark in zip(start, _TEMPLATE, strict=False)
    )
