"""A real ACME CA for the tests: Debian's `pebble` (Let's Encrypt's test server) on loopback.

Debian's package ships no TLS certificate for pebble's own listener (upstream's test/certs
are not packaged), so each run makes a throwaway listener CA and a localhost certificate; the
client trusts exactly that CA (TLS is always verified). `pebble-challtestsrv` (same package)
serves only DNS here, answering every A query with 127.0.0.1 and no AAAA, so pebble resolves
the gateways' `<gw>.<fabric>.dcvpn` names to loopback and validates http-01 against dcvpn's
own responder; IP identifiers (RFC 8738) it connects to directly.

Environment of pebble: PEBBLE_VA_NOSLEEP=1 (no random 0-15 s wait before validating) and
PEBBLE_WFE_NONCEREJECT=0 (no deliberately rejected nonces). `always_valid=True` adds
PEBBLE_VA_ALWAYS_VALID=1: pebble then skips validation. Only the lab test uses that (its
gateway addresses live in namespaces pebble cannot reach); the non-lab tests validate.
"""

import json
import os
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

from conftest import require_binary
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

START_TIMEOUT = 15.0


@dataclass(frozen=True)
class Pebble:
    directory: str  # ACME directory URL
    management: str  # pebble's management API (roots, intermediates)
    ca_bundle: Path  # trust for both listeners
    http_port: int  # where pebble connects for http-01
    dns_port: int  # challtestsrv's DNS
    challtestsrv: str  # challtestsrv's management API (set-txt for dns-01)
    eab_kid: str | None
    eab_hmac: str | None

    def get(self, url: str) -> bytes:
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        with urllib.request.urlopen(url, context=context, timeout=10) as resp:
            data: bytes = resp.read()
            return data

    def root_pem(self) -> bytes:
        """The root pebble signs with (regenerated at every start of pebble)."""
        return self.get(f"{self.management}/roots/0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _listener_tls(folder: Path) -> Path:
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ac pebble listener CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ip_address("127.0.0.1"))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    (folder / "listener.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(folder / "listener.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    bundle = folder / "listener-ca.pem"
    bundle.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return bundle


def _wait_ready(url: str, bundle: Path, procs: list[subprocess.Popen[bytes]],
                logs: list[Path]) -> None:
    context = ssl.create_default_context(cafile=str(bundle))
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for proc, log in zip(procs, logs, strict=True):
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, context=context, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"pebble not ready within {START_TIMEOUT} s: "
                       f"{logs[-1].read_text()[-2000:]}")


@contextmanager
def pebble(folder: Path, validity_seconds: int = 2 * 86400, always_valid: bool = False,
           eab: tuple[str, str] | None = None) -> Iterator[Pebble]:
    """pebble + challtestsrv on 127.0.0.1; both killed by PID when the block ends."""
    pebble_bin = require_binary("pebble")
    challtestsrv_bin = require_binary("pebble-challtestsrv")
    folder.mkdir(parents=True, exist_ok=True)
    bundle = _listener_tls(folder)
    acme_port, mgmt_port, http_port, tls_port, dns_port, cts_port = (
        free_port() for _ in range(6))
    config: dict[str, object] = {
        "listenAddress": f"127.0.0.1:{acme_port}",
        "managementListenAddress": f"127.0.0.1:{mgmt_port}",
        "certificate": str(folder / "listener.pem"), "privateKey": str(folder / "listener.key"),
        "httpPort": http_port, "tlsPort": tls_port, "ocspResponderURL": "",
        "externalAccountBindingRequired": eab is not None,
        "certificateValidityPeriod": validity_seconds,
    }
    if eab is not None:
        config["externalAccountMACKeys"] = {eab[0]: eab[1]}
    (folder / "pebble.json").write_text(json.dumps({"pebble": config}))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PEBBLE_VA_NOSLEEP": "1",
           "PEBBLE_WFE_NONCEREJECT": "0"}
    if always_valid:
        env["PEBBLE_VA_ALWAYS_VALID"] = "1"
    logs = [folder / "challtestsrv.log", folder / "pebble.log"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with logs[0].open("wb") as log:
            procs.append(subprocess.Popen(
                [challtestsrv_bin, "-dns01", f"127.0.0.1:{dns_port}", "-http01", "",
                 "-https01", "", "-tlsalpn01", "",
                 "-management", f"127.0.0.1:{cts_port}", "-defaultIPv4", "127.0.0.1",
                 "-defaultIPv6", ""],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env))
        with logs[1].open("wb") as log:
            procs.append(subprocess.Popen(
                [pebble_bin, "-config", str(folder / "pebble.json"),
                 "-dnsserver", f"127.0.0.1:{dns_port}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                cwd=folder))
        directory = f"https://127.0.0.1:{acme_port}/dir"
        _wait_ready(directory, bundle, procs, logs)
        yield Pebble(directory, f"https://127.0.0.1:{mgmt_port}", bundle, http_port, dns_port,
                     f"http://127.0.0.1:{cts_port}", *(eab or (None, None)))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
