"""The wheel ``make dist`` builds works on its own: installed into a fresh virtual environment with Airflow,
``airflow providers list`` shows it, its inbox files and ``py.typed`` are in it, and the sandbox starts.

Runs on the Airflow 3 line only (one fresh environment is enough to prove the package; the Airflow 2 line
installs the same files). The new environment takes the versions of this one as constraints, so uv
resolves nothing new and installs from its cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib

from airflow_provider_whatsapp import __version__
from airflow_provider_whatsapp._compat import AIRFLOW_V_3_PLUS

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "airflow_provider_whatsapp"

pytestmark = [
    pytest.mark.wheel,
    pytest.mark.skipif(not AIRFLOW_V_3_PLUS, reason="the wheel is tested on the Airflow 3 line"),
]


def _uv() -> str | None:
    """``$UV``, else the uv the Makefile bootstraps next to this virtual environment, else uv on PATH."""
    candidates = [
        os.environ.get("UV"),
        str(Path(sys.prefix).parent / "tools" / "bin" / "uv"),
        shutil.which("uv"),
    ]
    return next((c for c in candidates if c and Path(c).is_file()), None)


@dataclass
class Installed:
    wheel: Path
    venv: Path
    env: dict[str, str]
    home: Path

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


def _run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=600, **kwargs)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed (run `make` once, or set UV=/path/to/uv)")
    work = tmp_path_factory.mktemp("wheel")
    _run(uv, "build", "--wheel", "--out-dir", str(work / "dist"), str(REPO_ROOT))
    (wheel,) = (work / "dist").glob("*.whl")

    # The same versions as this environment, minus the provider itself (installed here from a checkout).
    frozen = _run(uv, "pip", "freeze", "--python", sys.executable).stdout.splitlines()
    constraints = work / "constraints.txt"
    constraints.write_text(
        "\n".join(
            line for line in frozen if "==" in line and not line.startswith("airflow-provider-whatsapp")
        )
    )
    import airflow

    venv = work / "venv"
    _run(uv, "venv", "--quiet", "--python", sys.executable, str(venv))
    _run(
        uv,
        "pip",
        "install",
        "--quiet",
        "--python",
        str(venv / "bin" / "python"),
        "--constraint",
        str(constraints),
        str(wheel),
        f"apache-airflow=={airflow.__version__}",
    )

    home = work / "airflow-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV"))}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    yield Installed(wheel=wheel, venv=venv, env=env, home=home)


def test_the_wheel_holds_the_inbox_files_and_py_typed(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())

    for static in ("inbox.html", "inbox.css", "inbox.js", "oauth.js"):
        assert f"{PACKAGE}/sandbox/static/{static}" in names
    assert f"{PACKAGE}/py.typed" in names
    assert not any(name.startswith(("tests/", "example_dags/")) for name in names)


def test_the_installed_package_is_the_wheels(installed: Installed) -> None:
    where = _run(
        installed.bin("python"),
        "-c",
        f"import {PACKAGE}; print({PACKAGE}.__file__)",
        env=installed.env,
        cwd=installed.home,
    ).stdout.strip()

    assert Path(where).is_relative_to(installed.venv), where


def test_airflow_providers_list_shows_it(installed: Installed) -> None:
    listed = _run(
        installed.bin("airflow"),
        "providers",
        "list",
        "--output",
        "json",
        env=installed.env,
        cwd=installed.home,
    ).stdout
    providers = json.loads(listed[listed.index("[") :])

    ours = [p for p in providers if p["package_name"] == "airflow-provider-whatsapp"]
    assert ours and ours[0]["version"] == __version__


def test_the_providers_page_links_to_the_documentation(installed: Installed) -> None:
    urls = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert {"Documentation", "Source", "Changelog"} <= set(urls)
    code = (
        "from airflow.providers_manager import ProvidersManager; "
        "print(ProvidersManager().providers['airflow-provider-whatsapp'].data['documentation-url'])"
    )

    shown = _run(installed.bin("python"), "-c", code, env=installed.env, cwd=installed.home).stdout

    assert shown.strip().splitlines()[-1] == urls["Documentation"]


def test_the_sandbox_starts_from_the_wheel(installed: Installed) -> None:
    sandbox = subprocess.Popen(
        [installed.bin("whatsapp-sandbox"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=installed.env,
        cwd=installed.home,
    )
    try:
        assert sandbox.stdout is not None
        first = sandbox.stdout.readline()
        assert first.startswith("WhatsApp sandbox on http://127.0.0.1:"), first + sandbox.stderr.read()
        url = first.split()[3]
        with urllib.request.urlopen(f"{url}/_sandbox/static/inbox.js", timeout=30) as answer:
            assert answer.status == 200
            assert answer.read()
        with urllib.request.urlopen(f"{url}/", timeout=30) as answer:
            assert b"/_sandbox/static/inbox.css" in answer.read()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
        if sandbox.stdout:
            sandbox.stdout.close()
        if sandbox.stderr:
            sandbox.stderr.close()
