"""Draw the Airflow 3 connection form for a new ``maton`` connection: ``make connection-form-screenshot``.

Starts an Airflow api-server on 127.0.0.1 in a throwaway AIRFLOW_HOME (simple auth manager, everyone an
admin), opens Admin > Connections > Add in headless Chromium, picks the WhatsApp Business (Maton) type
and saves two screenshots: the standard fields (``connection-form-standard.png``) and the extra
fields. Needs the Airflow 3 environment (Playwright is in the ``dev`` extra) and Chromium
(``make browser-deps``; ``$CHROMIUM`` overrides the path).

    python docs/connection_form_screenshot.py docs/connection-form.png
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TYPE_NAME = "WhatsApp Business (Maton)"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(url: str, server: subprocess.Popen[bytes], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the api-server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"the api-server did not answer on {url} within {seconds:.0f} s")


def standard_target(target: Path) -> Path:
    """The standard fields' screenshot: ``connection-form.png`` -> ``connection-form-standard.png``."""
    return target.with_name(f"{target.stem}-standard{target.suffix}")


def draw(target: Path, *, keep_home: bool = False) -> None:
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="whatsapp-form-airflow-"))
    port = _free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
    }
    migrate = [sys.executable, "-m", "airflow", "db", "migrate"]
    subprocess.run(migrate, env=env, check=True, capture_output=True)
    log = (home / "api-server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/api/v2/monitor/health", server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1280, "height": 2200})
            page.goto(f"{base}/connections", wait_until="networkidle")
            page.get_by_role("button", name="Add Connection").click()
            dialog = page.get_by_role("dialog")
            dialog.locator("input[name=connection_id]").fill("maton_default")
            type_picker = dialog.get_by_role("combobox").first
            type_picker.click(force=True)
            type_picker.fill(TYPE_NAME)
            page.keyboard.press("Enter")
            target.parent.mkdir(parents=True, exist_ok=True)
            # The form shows one section at a time: the standard fields first, then the extra fields.
            dialog.get_by_text("Maton API key", exact=True).wait_for()
            page.wait_for_timeout(500)  # the accordion's opening animation
            dialog.screenshot(path=str(standard_target(target)))
            dialog.get_by_text("Extra Fields", exact=True).click()
            dialog.get_by_text("Rate limit (requests per second)").wait_for()
            page.wait_for_timeout(500)
            dialog.screenshot(path=str(target))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
        if not keep_home:
            import shutil

            shutil.rmtree(home, ignore_errors=True)
    print(f"wrote {target} and {standard_target(target)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path, nargs="?", default=Path("docs/connection-form.png"))
    parser.add_argument("--keep-home", action="store_true", help="keep the temporary AIRFLOW_HOME")
    args = parser.parse_args()
    draw(args.target, keep_home=args.keep_home)


if __name__ == "__main__":
    main()
