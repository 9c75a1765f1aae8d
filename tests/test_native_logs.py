"""TensorFlow's native log lines go to the run's log; everything else reaches stderr."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def _through_filter(writes: str) -> tuple[list[str], str]:
    """Run writes (Python source using os.write(2, ...)) under the filter in a child."""
    body = textwrap.indent(textwrap.dedent(writes).strip(), "    ")
    code = "\n".join(
        [
            "import os, sys, time",
            "from anomaly_cli.native_logs import native_logs_to",
            "kept = []",
            "with native_logs_to(kept.append):",
            body,
            "print(repr(kept))",
        ]
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        env={**os.environ, "ADX_DEBUG": ""},
        check=True,
    )
    kept = eval(result.stdout.decode().strip().splitlines()[-1])
    return kept, result.stderr.decode()  # bytes first: a progress bar's \r stays as it is


def test_native_lines_are_kept_apart_and_the_rest_passes_through():
    kept, stderr = _through_filter(
        """
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called\\n")
        os.write(2, b"I0000 00:00:1796176806.411514 8016 port.cc:153] oneDNN custom ops\\n")
        os.write(2, b"I0")  # a native line that arrives in pieces
        time.sleep(0.05)
        os.write(2, b"000 00:00:1796176806.5 cudart_stub.cc:31] no cuda\\nplain text\\n")
        print("adx: error: something", file=sys.stderr, flush=True)
        os.write(2, b"E0000 00:00:1796176811.16 cuda_platform.cc:52] failed call to cuInit\\n")
        os.write(2, b"Images: 100%|#####|\\r")
        """
    )
    assert [line.split()[0] for line in kept] == ["WARNING:", "I0000", "I0000", "E0000"]
    assert stderr == "plain text\nadx: error: something\nImages: 100%|#####|\r"


def test_fatal_native_lines_also_reach_the_terminal():
    kept, stderr = _through_filter(
        'os.write(2, b"F0000 00:00:1796176811.16 check.cc:1] Check failed\\n")'
    )
    assert kept == ["F0000 00:00:1796176811.16 check.cc:1] Check failed\n"]
    assert "Check failed" in stderr
