"""Peak memory of uploading a 100 MB document through ``MatonHook.upload_media``.

Each run is a fresh Python process that uploads the file to a local HTTP server (in this process)
which reads the body and throws it away. The child measures its own peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) just before and just after the upload, after one
small warm-up upload so that imports, the connection lookup and the HTTP client are already loaded:
the difference is what the upload itself costs. A streamed upload costs a few buffers; reading the
file whole would cost at least its size.

    python benchmarks/upload_memory.py            # markdown row
    python benchmarks/upload_memory.py --json     # machine-readable
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

LIMIT_MB = 32.0
PHONE_NUMBER_ID = "106540352242922"
_CHUNK = 1024 * 1024


class _DiscardingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        received = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                while size:
                    part = self.rfile.read(min(size, _CHUNK))
                    size -= len(part)
                    received += len(part)
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                part = self.rfile.read(min(remaining, _CHUNK))
                if not part:
                    break
                remaining -= len(part)
                received += len(part)
        payload = json.dumps({"id": f"bench-{received}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _current_rss_kb() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _reset_peak() -> bool:
    """Reset the peak RSS to the current RSS (Linux 4.0+), so that an earlier peak (imports) cannot
    hide the upload's own; without it the figure is still an upper bound of nothing hidden below."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _child(file_path: str, warmup_path: str, naive: bool) -> None:
    """Runs in the fresh process: warm up, then measure one upload."""
    import gc

    from airflow_provider_whatsapp.hooks import _paths
    from airflow_provider_whatsapp.hooks.maton import MatonHook

    hook = MatonHook()
    hook.upload_media(warmup_path)
    gc.collect()
    reset = _reset_peak()
    before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    current_kb = _current_rss_kb()
    if naive:
        # The control: what an upload that reads the file whole would cost.
        content = Path(file_path).read_bytes()
        s = hook.settings
        url = _paths.graph_url(s.base_url, s.app, s.api_version, _paths.media_upload(PHONE_NUMBER_ID))
        answer = hook.get_conn().post(url, content=content)
        media_id = answer.json()["id"]
        del content
    else:
        media_id = hook.upload_media(file_path)
    # The kernel updates the high-water mark lazily; the current RSS is taken too, to be conservative.
    after_kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, _current_rss_kb())
    hook.close()
    result = {
        "before_kb": before_kb,
        "current_kb": current_kb,
        "after_kb": after_kb,
        "peak_reset": reset,
        "received": int(media_id.split("-", 1)[1]),
    }
    print(json.dumps(result))


def _make_file(path: Path, size_mb: int) -> None:
    with open(path, "wb") as handle:
        for _ in range(size_mb):
            handle.write(os.urandom(_CHUNK))


def _one_run(server_url: str, file_path: Path, warmup_path: Path, home: str, naive: bool) -> dict[str, Any]:
    connection = {
        "conn_type": "maton",
        "host": server_url,
        "password": "bench-key",
        "extra": {"phone_number_id": PHONE_NUMBER_ID, "rate_limit": 0},
    }
    env = {
        **os.environ,
        "AIRFLOW_HOME": home,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_MATON_DEFAULT": json.dumps(connection),
        "PYTHONWARNINGS": "ignore",
    }
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            str(file_path),
            str(warmup_path),
            *(["--naive"] if naive else []),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["growth_mb"] = max(0, result["after_kb"] - min(result["before_kb"], result["current_kb"])) / 1024
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a markdown row")
    parser.add_argument(
        "--naive",
        action="store_true",
        help="control run: read the file whole and post it, to show what the measurement detects",
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child, naive=args.naive)
        return 0

    server = ThreadingHTTPServer(("127.0.0.1", 0), _DiscardingHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    with tempfile.TemporaryDirectory(prefix="upload-bench-") as tmp:
        # The file size must stay within WhatsApp's 100 MB document limit (100 MiB exactly is allowed).
        file_path = Path(tmp) / "report.pdf"
        _make_file(file_path, args.size_mb)
        warmup_path = Path(tmp) / "warmup.pdf"
        warmup_path.write_bytes(b"%PDF-1.4\n")
        url = f"http://{host}:{port}"
        runs = [_one_run(url, file_path, warmup_path, tmp, args.naive) for _ in range(args.runs)]
        size = file_path.stat().st_size
    server.shutdown()

    if any(run["received"] < size for run in runs):
        raise SystemExit("the server received less than the whole file")
    growth = [run["growth_mb"] for run in runs]
    summary = {
        "benchmark": "upload_memory" + ("_naive_control" if args.naive else ""),
        "file_mb": size / _CHUNK,
        "runs": len(runs),
        "peak_rss_growth_mb": {
            "median": round(statistics.median(growth), 2),
            "min": round(min(growth), 2),
            "max": round(max(growth), 2),
        },
        "baseline_rss_mb": round(statistics.median(run["current_kb"] for run in runs) / 1024, 1),
        "peak_reset": all(run["peak_reset"] for run in runs),
        "limit_mb": LIMIT_MB,
        "ok": max(growth) < LIMIT_MB,
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(summary))
    else:
        g = summary["peak_rss_growth_mb"]
        what = "naive read-whole control" if args.naive else "upload_media (streamed multipart)"
        print("| benchmark | file | runs | peak RSS growth median (min-max) | limit |")
        print("| --- | --- | --- | --- | --- |")
        print(
            f"| {what} | {summary['file_mb']:.0f} MB document | {len(runs)} | "
            f"{g['median']:.1f} MB ({g['min']:.1f}-{g['max']:.1f}) | < {LIMIT_MB:.0f} MB |"
        )
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
