"""A 100 MB upload is streamed: the benchmark's fresh process grows its peak RSS by far less than 32 MB."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_uploading_100_mb_grows_peak_rss_by_less_than_32_mb(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "upload_memory.py"), "--runs", "1", "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["file_mb"] == 100
    assert summary["peak_rss_growth_mb"]["max"] < 32
