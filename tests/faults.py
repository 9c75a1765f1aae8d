"""Faults to inject into a real `adx` process (see conftest.run_adx_with).

Each function returns Python source that patches one adx function before the
CLI starts, so a test can put a signal, a full disk or a bug at an exact
stage instead of racing a timer.
"""

from __future__ import annotations


def _patch(target: str, body: str, call: int) -> str:
    """Replace `module.attr` by a wrapper that runs `body` on its `call`-th call.

    Each fault installs itself inside a function, so several can be combined.
    """
    module, name = target.rsplit(".", 1)
    return f"""
def _install():
    import importlib as _importlib, os as _os, signal as _signal, time as _time
    _module = _importlib.import_module({module!r})
    _original = getattr(_module, {name!r})
    _calls = [0]
    def _faulty(*args, **kwargs):
        _calls[0] += 1
        if _calls[0] == {call}:
{body}
        return _original(*args, **kwargs)
    setattr(_module, {name!r}, _faulty)
_install()
"""


def signal_at(target: str, signal_name: str, call: int = 1) -> str:
    """Send the process `signal_name` (SIGINT, SIGTERM, SIGKILL) when `target` is called."""
    body = (
        f"            _os.kill(_os.getpid(), _signal.{signal_name})\n"
        "            _time.sleep(2)  # the signal lands here (or, when held, after this call)"
    )
    return _patch(target, body, call)


def raise_at(target: str, exception: str, call: int = 1) -> str:
    """Raise `exception` (Python source) when `target` is called."""
    return _patch(target, f"            raise {exception}", call)


def disk_full_writing(file_name: str, call: int = 1) -> str:
    """ENOSPC from the atomic writer while it writes the `call`-th file named `file_name`.

    The temporary file already exists when the error comes, as on a real full disk.
    """
    action = "raise OSError(_errno.ENOSPC, _os.strerror(_errno.ENOSPC), str(tmp))"
    return _while_writing(file_name, action, call)


def killed_writing(file_name: str, call: int = 1) -> str:
    """SIGKILL while the atomic writer writes the `call`-th file named `file_name`."""
    return _while_writing(file_name, "_os.kill(_os.getpid(), _signal.SIGKILL)", call)


def _while_writing(file_name: str, action: str, call: int) -> str:
    return f"""
def _install():
    import contextlib as _contextlib, errno as _errno, os as _os, signal as _signal
    from pathlib import Path as _Path
    from anomaly_cli import runs as _runs
    _original_atomic = _runs.atomic_path
    _writes = [0]
    @_contextlib.contextmanager
    def _faulty_writer(path):
        with _original_atomic(path) as tmp:
            if _Path(path).name == {file_name!r}:
                _writes[0] += 1
                if _writes[0] == {call}:
                    tmp.write_bytes(b"half a file")
                    {action}
            yield tmp
    _runs.atomic_path = _faulty_writer
_install()
"""
