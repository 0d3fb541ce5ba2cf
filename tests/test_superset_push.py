"""The push to Superset's REST API, against a tiny fake Superset on 127.0.0.1: login, CSRF
token with its session cookie, the multipart import, the database password only in the
request; and EngageSupersetPushOperator with an Airflow connection."""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engage_core.errors import EngageError, RunError

PIPELINE = """\
pipeline: shop
source: {path: events.parquet}
target: {uri: "postgresql://bi:s3cret@db.example/analytics"}
metrics: {engagement_daily: {}, retention: {periods: [week]}}
"""


class FakeSuperset(BaseHTTPRequestHandler):
    requests: list = []
    token, csrf, cookie = "tok-123", "csrf-456", "session=abc"

    def log_message(self, *args):
        pass

    def _answer(self, status: int, body: dict, headers: dict | None = None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _record(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.requests.append({"method": self.command, "path": self.path,
                              "headers": dict(self.headers), "body": body})
        return body

    def do_POST(self):
        body = self._record()
        if self.path == "/api/v1/security/login":
            creds = json.loads(body)
            if creds != {"username": "admin", "password": "pw", "provider": "db",
                         "refresh": False}:
                return self._answer(401, {"message": "Not authorized"})
            return self._answer(200, {"access_token": self.token})
        if self.path in ("/api/v1/assets/import/", "/api/v1/dashboard/import/"):
            ok = (self.headers.get("Authorization") == f"Bearer {self.token}"
                  and self.headers.get("X-CSRFToken") == self.csrf
                  and self.cookie in (self.headers.get("Cookie") or ""))
            if not ok:
                return self._answer(400, {"errors": [{"message": "The CSRF token is missing."}]})
            return self._answer(200, {"message": "OK"})
        self._answer(404, {"message": "Not found"})

    def do_GET(self):
        self._record()
        if self.path == "/api/v1/security/csrf_token/":
            if self.headers.get("Authorization") != f"Bearer {self.token}":
                return self._answer(401, {"msg": "Missing Authorization Header"})
            return self._answer(200, {"result": self.csrf},
                                {"Set-Cookie": f"{self.cookie}; HttpOnly; Path=/"})
        self._answer(404, {"message": "Not found"})


@pytest.fixture()
def fake():
    FakeSuperset.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSuperset)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", FakeSuperset.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def multipart(request) -> dict:
    boundary = request["headers"]["Content-Type"].split("boundary=", 1)[1].encode()
    out = {}
    for part in request["body"].split(b"--" + boundary):
        if b"\r\n\r\n" not in part:
            continue
        head, value = part.split(b"\r\n\r\n", 1)
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        out[name] = value[:-2] if value.endswith(b"\r\n") else value
    return out


def write_pipeline(tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_text(PIPELINE, encoding="utf-8")
    return str(path)


def test_push_logs_in_gets_csrf_and_imports_with_overwrite(fake, tmp_path):
    from engage_plugin.operators.superset import push_to_superset

    url, requests = fake
    out = push_to_superset(write_pipeline(tmp_path), base_url=url, username="admin",
                           password="pw")
    assert out["answer"] == {"message": "OK"}
    assert [(r["method"], r["path"]) for r in requests] == [
        ("POST", "/api/v1/security/login"), ("GET", "/api/v1/security/csrf_token/"),
        ("POST", "/api/v1/assets/import/")]
    fields = multipart(requests[2])
    assert json.loads(fields["passwords"]) == {"databases/engage_shop.yaml": "s3cret"}
    with zipfile.ZipFile(io.BytesIO(fields["bundle"])) as zf:
        assert "engage_shop/metadata.yaml" in zf.namelist()
        assert all(b"s3cret" not in zf.read(n) for n in zf.namelist())
    assert requests[2]["headers"]["Accept"] == "application/json"


def test_dashboard_endpoint_sends_overwrite(fake, tmp_path):
    from engage_plugin.superset.bundle import build_bundle
    from engage_plugin.superset.push import push_bundle

    url, requests = fake
    bundle = build_bundle(write_pipeline(tmp_path), tmp_path / "b.zip")
    push_bundle(url, bundle, username="admin", password="pw", endpoint="dashboard")
    fields = multipart(requests[-1])
    assert requests[-1]["path"] == "/api/v1/dashboard/import/"
    assert fields["overwrite"] == b"true" and zipfile.is_zipfile(io.BytesIO(fields["formData"]))
    assert "passwords" not in fields


def test_failures_are_engage_errors_naming_the_step(fake, tmp_path):
    from engage_plugin.superset.push import push_bundle

    url, _ = fake
    with pytest.raises(RunError, match="login: HTTP 401"):
        push_bundle(url, tmp_path / "x.zip", username="admin", password="wrong")
    with pytest.raises(EngageError, match="unreachable"):
        push_bundle("http://127.0.0.1:9", tmp_path / "x.zip", username="a", password="b",
                    timeout=5)


def test_module_imports_without_airflow(monkeypatch):
    monkeypatch.setitem(sys.modules, "airflow", None)
    monkeypatch.setitem(sys.modules, "airflow.sdk", None)
    sys.modules.pop("engage_plugin.operators.superset", None)
    mod = importlib.import_module("engage_plugin.operators.superset")
    assert callable(mod.push_to_superset)
    with pytest.raises(ImportError):
        mod.EngageSupersetPushOperator
    sys.modules.pop("engage_plugin.operators.superset", None)


def test_operator_pushes_with_an_airflow_http_connection(fake, tmp_path, monkeypatch):
    pytest.importorskip("airflow.sdk", reason="Apache Airflow is not installed")
    import airflow_env  # noqa: F401  (a private AIRFLOW_HOME)
    from engage_plugin.operators.superset import EngageSupersetPushOperator, superset_base_url

    url, requests = fake
    host, port = url.rsplit(":", 1)
    monkeypatch.setenv("AIRFLOW_CONN_SUPERSET_TEST", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": int(port), "login": "admin",
         "password": "pw", "extra": {"provider": "db"}}))
    op = EngageSupersetPushOperator(task_id="superset", pipeline_path=write_pipeline(tmp_path),
                                    superset_conn_id="superset_test")
    out = op.execute({})
    assert out["superset"] == url and out["answer"] == {"message": "OK"}
    assert [r["path"] for r in requests][-1] == "/api/v1/assets/import/"

    class Conn:
        host, port, schema = "superset.example.com", None, "https"
    assert superset_base_url(Conn) == "https://superset.example.com"
    Conn.host, Conn.port = "http://10.0.0.5", 8088
    assert superset_base_url(Conn) == "http://10.0.0.5:8088"
