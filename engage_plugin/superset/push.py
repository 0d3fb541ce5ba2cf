"""Push a bundle to a Superset through its REST API (standard library only).

The protocol (Superset 6.1, measured):

1. ``POST /api/v1/security/login`` ``{"username", "password", "provider": "db"}`` -> an
   ``access_token`` (sent as ``Authorization: Bearer``);
2. ``GET /api/v1/security/csrf_token/`` -> ``result``, sent as ``X-CSRFToken`` together with
   the session cookie of that answer (and a ``Referer``, which Flask-WTF checks on HTTPS);
3. ``POST /api/v1/assets/import/`` (multipart field ``bundle``; overwrites the database,
   datasets, charts and dashboard, so a changed pipeline updates every object), or
   ``POST /api/v1/dashboard/import/`` (field ``formData`` with ``overwrite=true``; replaces
   the dashboard but keeps existing charts and datasets as they were).

Database passwords never go into the bundle; ``passwords`` (``{"databases/<db>.yaml":
"..."}``) travels only in the import request.
"""

from __future__ import annotations

import http.cookiejar
import json
import uuid
import urllib.error
import urllib.request
from pathlib import Path

from engage_core.errors import ConfigError, RunError

ENDPOINTS = {"assets": ("/api/v1/assets/import/", "bundle"),
             "dashboard": ("/api/v1/dashboard/import/", "formData")}


class SupersetClient:
    def __init__(self, base_url: str, *, timeout: float = 120.0):
        if "://" not in base_url:
            raise ConfigError(f"Superset URL: expected http(s)://host[:port], found {base_url!r}")
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.headers = {"Accept": "application/json"}

    def _call(self, method: str, path: str, body: bytes | None = None,
              content_type: str | None = None) -> dict:
        headers = dict(self.headers)
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.base + path, data=body, headers=headers,
                                     method=method)
        try:
            with self.opener.open(req, timeout=self.timeout) as r:
                data = r.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:1000].decode("utf-8", "replace")
            raise RunError(f"Superset {method} {path}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise RunError(f"Superset at {self.base} is unreachable: "
                           f"{getattr(exc, 'reason', exc)}") from None
        try:
            return json.loads(data or b"{}")
        except ValueError:
            raise RunError(f"Superset {method} {path}: not JSON: {data[:200]!r}") from None

    def login(self, username: str, password: str, provider: str = "db") -> None:
        out = self._call("POST", "/api/v1/security/login",
                         json.dumps({"username": username, "password": password,
                                     "provider": provider, "refresh": False}).encode(),
                         "application/json")
        if not out.get("access_token"):
            raise RunError("Superset login answered without an access_token")
        self.headers["Authorization"] = f"Bearer {out['access_token']}"
        csrf = self._call("GET", "/api/v1/security/csrf_token/").get("result")
        if not csrf:
            raise RunError("Superset answered no CSRF token")
        self.headers["X-CSRFToken"] = csrf
        self.headers["Referer"] = self.base + "/"

    def import_bundle(self, bundle: Path, *, endpoint: str = "assets",
                      passwords: dict | None = None) -> dict:
        if endpoint not in ENDPOINTS:
            raise ConfigError(f"endpoint: expected one of {', '.join(ENDPOINTS)}, "
                              f"found {endpoint!r}")
        path, field = ENDPOINTS[endpoint]
        boundary = "engage-" + uuid.uuid4().hex
        parts = [(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                  f"filename=\"{Path(bundle).name}\"\r\nContent-Type: application/zip\r\n\r\n")
                 .encode() + Path(bundle).read_bytes() + b"\r\n"]
        fields = {"overwrite": "true"} if endpoint == "dashboard" else {}
        if passwords:
            fields["passwords"] = json.dumps(passwords)
        for name, value in fields.items():
            parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\""
                         f"\r\n\r\n{value}\r\n".encode())
        parts.append(f"--{boundary}--\r\n".encode())
        return self._call("POST", path, b"".join(parts),
                          f"multipart/form-data; boundary={boundary}")


def push_bundle(base_url: str, bundle, *, username: str, password: str,
                provider: str = "db", endpoint: str = "assets", passwords: dict | None = None,
                timeout: float = 120.0) -> dict:
    """Log in, fetch the CSRF token, import ``bundle``; return Superset's answer.

    Raises :class:`RunError` (an :class:`EngageError`) naming the step that failed."""
    client = SupersetClient(base_url, timeout=timeout)
    client.login(username, password, provider)
    return client.import_bundle(Path(bundle), endpoint=endpoint, passwords=passwords)
