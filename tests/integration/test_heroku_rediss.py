"""The README's hint for RQ's CLI against Heroku's Redis: a ``rediss://`` server whose
certificate is self-signed (here a private redis-server with TLS and a fresh self-signed
certificate) refuses ``rq info -u "$REDIS_URL"`` and answers the command the README shows."""

from __future__ import annotations

import contextlib
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.redis_server import free_port, redis_server_binary

ROOT = Path(__file__).resolve().parents[2]


def readme_rq_command() -> str:
    """The command under ``<!-- rq-rediss -->`` in the README's Failed jobs section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- rq-rediss -->")[1].split("```sh\n", 1)[1].split("```")[0]
    (command,) = block.strip().splitlines()
    return command


@contextlib.contextmanager
def tls_redis(folder: Path) -> Iterator[str]:
    """A redis-server on a TLS-only loopback port with a self-signed certificate, as
    Heroku's: yields its ``rediss://`` URL."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (it makes the self-signed certificate)")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=ec2-0-0-0-0.compute-1.amazonaws.com",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
                   check=True, capture_output=True, timeout=30)
    port = free_port()
    log = folder / "redis.log"
    server = subprocess.Popen(
        [redis_server_binary(), "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(folder / "cert.pem"), "--tls-key-file", str(folder / "key.pem"),
         "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", str(folder),
         "--logfile", str(log)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(0.3)
        if server.poll() is not None:
            output = log.read_text(errors="replace") if log.exists() else ""
            pytest.skip(f"this redis-server has no TLS support: {output[-300:]}")
        yield f"rediss://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


def rq_info(command: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    """``command`` as a shell would run it with ``REDIS_URL`` set, rq from this venv."""
    words = shlex.split(command.replace("$REDIS_URL", redis_url))
    assert words[:2] == ["rq", "info"]
    rq = str(Path(sys.executable).parent / "rq")
    return subprocess.run([rq, *words[1:]], capture_output=True, text=True, timeout=30,
                          check=False)


def test_readme_rq_command_reaches_a_self_signed_rediss(tmp_path: Path) -> None:
    """Plain ``rq info -u "$REDIS_URL"`` fails on the self-signed certificate; the README's
    command connects (over TLS) and lists the workers and queues."""
    with tls_redis(tmp_path) as url:
        deadline = time.monotonic() + 10
        while True:
            hinted = rq_info(readme_rq_command(), url)
            if hinted.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # the server may still be starting
        plain = rq_info('rq info -u "$REDIS_URL"', url)
    assert hinted.returncode == 0, hinted.stdout + hinted.stderr
    assert "0 workers, 0 queues" in hinted.stdout
    assert plain.returncode != 0
    assert "certificate verify failed" in plain.stdout + plain.stderr
