"""https through the aiohttp transport after aiohttp was imported without its default TLS
contexts (http/tls.py): still verified against the system's CAs, never unverified."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from ticketbridge.http import tls

# A loopback https server with the given certificate, and one GET through AiohttpTransport
# in a fresh interpreter (so the CA bundle it loads is the one its environment names).
SCRIPT = """
import asyncio, json, ssl, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from ticketbridge.http.transport import AiohttpTransport

class Ok(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
served.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = served.wrap_socket(server.socket, server_side=True)
threading.Thread(target=server.serve_forever, daemon=True).start()

async def get():
    transport = AiohttpTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        try:
            answer = await client.get(f"https://127.0.0.1:{server.server_port}/")
            return {"status": answer.status_code, "body": answer.text}
        except httpx.TransportError as exc:
            return {"error": type(exc).__name__, "why": str(exc)}

print(json.dumps(asyncio.run(get())))
server.shutdown()
"""


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key."""
    where = tmp_path_factory.mktemp("tls")
    crt, key = where / "loopback.crt", where / "loopback.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(crt),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return crt, key


def _get(cert: tuple[Path, Path], env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(cert[0]), str(cert[1])],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_a_certificate_no_trusted_ca_signed_is_refused(cert: tuple[Path, Path]) -> None:
    found = _get(cert, {})
    assert found.get("error") == "ConnectError", found
    assert "CERTIFICATE_VERIFY_FAILED" in str(found["why"])


def test_a_certificate_of_a_ca_in_the_default_bundle_is_accepted(
    cert: tuple[Path, Path],
) -> None:
    """SSL_CERT_FILE names the bundle OpenSSL's default paths load: the context of https
    requests loads the default CAs, as aiohttp's own default did."""
    assert _get(cert, {"SSL_CERT_FILE": str(cert[0])}) == {"status": 200, "body": "ok"}


def test_the_https_context_is_aiohttps_verified_default() -> None:
    made, default = tls.context(), ssl.create_default_context()
    assert made.verify_mode == ssl.CERT_REQUIRED and made.check_hostname
    assert made.cert_store_stats() == default.cert_store_stats()
    assert made.cert_store_stats()["x509_ca"] > 0


def test_which_requests_may_do_tls() -> None:
    assert tls.needs_context("https://api.example/x", None)
    assert tls.needs_context("HTTPS://api.example/x", None)
    assert tls.needs_context("http://api.example/x", "https://proxy.example:3128")
    assert not tls.needs_context("http://127.0.0.1:8401/x", None)
    assert not tls.needs_context("http://127.0.0.1:8401/x", "http://proxy.example:3128")
