"""A throwaway Superset 6.1 for the end-to-end test: its own cached venv, a SQLite metadata
database in a temporary folder, gunicorn on 127.0.0.1, and a tiny REST client.

Superset never goes into the project's venv: its ``sqlalchemy<2`` pin conflicts with
Airflow's (SUPERSET_NOTES.md). The venv is cached under
``~/.cache/engage/superset-venv/<key>`` (``ENGAGE_SUPERSET_CACHE`` overrides the parent),
where the key hashes the pinned requirements and the Python version, so a change of pins
builds a fresh one. A ``.complete`` marker is written only after a successful install;
creation holds a file lock so two test runs do not build the same venv at once.

Used by tests/test_superset_e2e.py; also runnable (``python tests/superset_harness.py``) to
build the cached venv ahead of time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.cookiejar
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

SUPERSET_REQUIREMENTS = ("apache-superset[duckdb]==6.1.0", "flask-caching==2.4.1", "rich",
                         "cachetools")
PYTHON = os.environ.get("ENGAGE_SUPERSET_PYTHON", "python3")
CACHE = Path(os.environ.get("ENGAGE_SUPERSET_CACHE",
                            Path.home() / ".cache" / "engage" / "superset-venv"))
ADMIN = ("admin", "admin")


class SetupFailed(RuntimeError):
    """Superset could not be installed or started; ``offline`` when the index is unreachable."""

    def __init__(self, message: str, offline: bool = False):
        super().__init__(message)
        self.offline = offline


def _python_tag() -> str:
    out = subprocess.run([PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def venv_path() -> Path:
    key = hashlib.sha256(("py" + _python_tag() + "|" + " ".join(SUPERSET_REQUIREMENTS))
                         .encode()).hexdigest()[:12]
    return CACHE / key


def _index_reachable(timeout: float = 5.0) -> bool:
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/")
    try:
        urllib.request.urlopen(index.rstrip("/") + "/pip/", timeout=timeout).close()
        return True
    except Exception:
        return False


def ensure_venv(log=print) -> Path:
    """The cached venv's folder (built if missing). Raises :class:`SetupFailed`."""
    venv = venv_path()
    marker = venv / ".complete"
    if marker.exists():
        return venv
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(str(venv) + ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be building it: wait for it
        if marker.exists():
            return venv
        if not _index_reachable():
            raise SetupFailed("the Python package index is unreachable; cannot install "
                              "Superset", offline=True)
        shutil.rmtree(venv, ignore_errors=True)
        t0 = time.monotonic()
        log(f"building the Superset venv in {venv} (once per machine, about a minute)")
        try:
            subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True, capture_output=True,
                           text=True)
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                   "--disable-pip-version-check"]
            subprocess.run(pip + ["--upgrade", "pip"], check=True, capture_output=True,
                           text=True, timeout=600)
            subprocess.run(pip + list(SUPERSET_REQUIREMENTS), check=True, capture_output=True,
                           text=True, timeout=1200)
        except subprocess.CalledProcessError as exc:
            shutil.rmtree(venv, ignore_errors=True)
            offline = not _index_reachable()
            raise SetupFailed(f"installing Superset failed: {(exc.stderr or '')[-2000:]}",
                              offline=offline) from None
        except subprocess.TimeoutExpired:
            shutil.rmtree(venv, ignore_errors=True)
            raise SetupFailed("installing Superset timed out") from None
        marker.write_text(" ".join(SUPERSET_REQUIREMENTS) + "\n")
        log(f"Superset venv built in {time.monotonic() - t0:.0f} s")
    return venv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SupersetServer:
    """``superset db upgrade / fab create-admin / init``, then gunicorn on 127.0.0.1.

    Use as a context manager: the gunicorn process group is stopped on exit, also when the
    body fails."""

    def __init__(self, venv: Path, home: Path, log=print):
        self.venv, self.home, self.log = venv, Path(home), log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.timings: dict[str, float] = {}

    # -- set-up --------------------------------------------------------------------------
    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env.update({"SUPERSET_CONFIG_PATH": str(self.home / "superset_config.py"),
                    "FLASK_APP": "superset.app:create_app()", "SUPERSET_HOME": str(self.home),
                    "PATH": str(self.venv / "bin") + os.pathsep + env.get("PATH", "")})
        return env

    def _write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        db = self.home / "superset.db"
        (self.home / "superset_config.py").write_text(
            f"SECRET_KEY = {self.secret_key!r}\n"
            f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{db}?check_same_thread=false'\n"
            "WTF_CSRF_ENABLED = True\n"
            "FEATURE_FLAGS = {'DASHBOARD_VIRTUALIZATION': False}\n"
            "SQLLAB_BACKEND_PERSISTENCE = False\n"
            "THUMBNAIL_CACHE_CONFIG = {'CACHE_TYPE': 'NullCache'}\n"
            "CACHE_CONFIG = {'CACHE_TYPE': 'NullCache'}\n"
            "DATA_CACHE_CONFIG = {'CACHE_TYPE': 'NullCache'}\n"
            "RATELIMIT_ENABLED = False\n"
            "AUTH_RATE_LIMITED = False\n")

    def _superset(self, *args: str, timeout: float = 300) -> None:
        t0 = time.monotonic()
        proc = subprocess.run([str(self.venv / "bin" / "superset"), *args], env=self.env(),
                              cwd=self.home, capture_output=True, text=True, timeout=timeout)
        self.timings["superset " + args[0]] = round(time.monotonic() - t0, 1)
        if proc.returncode != 0:
            raise SetupFailed(f"superset {' '.join(args)} failed ({proc.returncode}):\n"
                              f"{(proc.stdout + proc.stderr)[-3000:]}")

    def _init_metadata(self) -> None:
        """``db upgrade``, ``fab create-admin``, ``init`` into the home's SQLite file; the
        result is kept next to the venv as a template (with its SECRET_KEY), so later runs
        copy it instead of spending a minute or more on the three commands."""
        template, key_file = self.venv / "metadata-template.db", self.venv / "secret-key"
        if template.exists() and key_file.exists():
            self.secret_key = key_file.read_text().strip()
            self._write_config()
            shutil.copyfile(template, self.home / "superset.db")
            self.timings["metadata from template"] = 0.0
            return
        self.secret_key = secrets.token_urlsafe(32)
        self._write_config()
        self._superset("db", "upgrade")
        self._superset("fab", "create-admin", "--username", ADMIN[0], "--firstname", "a",
                       "--lastname", "a", "--email", "a@example.com", "--password", ADMIN[1])
        self._superset("init")
        tmp = template.with_name(template.name + f".{os.getpid()}.tmp")
        shutil.copyfile(self.home / "superset.db", tmp)
        key_file.write_text(self.secret_key + "\n")
        os.replace(tmp, template)

    def start(self) -> "SupersetServer":
        self._init_metadata()
        t0 = time.monotonic()
        self.logfile = open(self.home / "gunicorn.log", "wb")
        self.proc = subprocess.Popen(
            [str(self.venv / "bin" / "gunicorn"), "-w", "1", "-k", "gthread", "--threads", "4",
             "--timeout", "120", "-b", f"127.0.0.1:{self.port}", "superset.app:create_app()"],
            env=self.env(), cwd=self.home, stdout=self.logfile, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SetupFailed(f"gunicorn exited with {self.proc.returncode}:\n"
                                  f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        self.timings["gunicorn start"] = round(time.monotonic() - t0, 1)
                        return self
            except Exception:
                time.sleep(0.5)
        raise SetupFailed(f"Superset did not answer /health in 120 s:\n{self.log_tail()}")

    def log_tail(self, n: int = 3000) -> str:
        try:
            return (self.home / "gunicorn.log").read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if getattr(self, "logfile", None):
            self.logfile.close()

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()


class Client:
    """Superset's REST API with a Bearer token, the CSRF token and the session cookie."""

    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/")
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.token: str | None = None
        self.csrf: str | None = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None, timeout: float = 120):
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if self.csrf:
            h["X-CSRFToken"] = self.csrf
            h["Referer"] = self.base
        h.update(headers or {})
        req = urllib.request.Request(self.base + path, data=body, headers=h, method=method)
        try:
            with self.opener.open(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def json(self, method: str, path: str, payload=None) -> dict:
        body = None if payload is None else json.dumps(payload).encode()
        status, data = self.request(method, path, body,
                                    {"Content-Type": "application/json"} if body else None)
        if status >= 400:
            raise AssertionError(f"{method} {path}: HTTP {status}: {data[:2000]!r}")
        return json.loads(data)

    def login(self, username: str = ADMIN[0], password: str = ADMIN[1]) -> None:
        out = self.json("POST", "/api/v1/security/login",
                        {"username": username, "password": password, "provider": "db",
                         "refresh": True})
        self.token = out["access_token"]
        self.csrf = self.json("GET", "/api/v1/security/csrf_token/")["result"]

    def import_bundle(self, zip_path: Path, passwords: dict | None = None) -> dict:
        boundary = uuid.uuid4().hex
        parts = []

        def field(name, value):
            parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\""
                         f"\r\n\r\n{value}\r\n".encode())
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"formData\"; "
                     f"filename=\"{zip_path.name}\"\r\nContent-Type: application/zip\r\n\r\n"
                     .encode() + zip_path.read_bytes() + b"\r\n")
        field("overwrite", "true")
        if passwords:
            field("passwords", json.dumps(passwords))
        parts.append(f"--{boundary}--\r\n".encode())
        status, data = self.request("POST", "/api/v1/dashboard/import/", b"".join(parts),
                                    {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        if status >= 400:
            raise AssertionError(f"import failed: HTTP {status}: {data[:3000]!r}")
        return json.loads(data)


if __name__ == "__main__":
    try:
        print(ensure_venv())
    except SetupFailed as exc:
        sys.exit(f"error: {exc}")
