"""/healthz on a Kafka service's metrics port (issue 12): each dependency's last known state."""
from __future__ import annotations

import json

from services.ops.health import Health, wsgi_app


def call(app, path: str) -> tuple[str, bytes]:  # noqa: ANN001
    seen = {}

    def start_response(status, headers):  # noqa: ANN001
        seen["status"] = status
    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, start_response))
    return seen["status"], body


def metrics_app(environ, start_response):  # noqa: ANN001
    start_response("200 OK", [])
    return [b"vpa_up 1\n"]


def test_healthz_is_ok_while_every_check_is_up_and_503_with_the_failing_one():
    health = Health()
    app = wsgi_app(metrics_app, health)
    assert call(app, "/healthz") == ("200 OK", json.dumps({"status": "ok", "checks": {}}).encode())
    health.set("broker", True, "127.0.0.1:9092")
    health.set("store", False, "write failed: ConnectionRefusedError")
    status, body = call(app, "/healthz")
    doc = json.loads(body)
    assert status.startswith("503") and doc["status"] == "degraded"
    assert doc["checks"]["store"]["ok"] is False and "ConnectionRefusedError" in doc["checks"]["store"]["detail"]
    assert doc["checks"]["broker"]["ok"] is True
    since = doc["checks"]["store"]["since"]
    health.set("store", False, "write failed again")  # still down: since stays, the detail moves on
    assert json.loads(call(app, "/healthz")[1])["checks"]["store"]["since"] == since
    health.set("store", True, "writes succeed")
    assert call(app, "/healthz")[0] == "200 OK"
    assert call(app, "/metrics") == ("200 OK", b"vpa_up 1\n")
