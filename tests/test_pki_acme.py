"""`dcvpn pki` with an external ACME CA: a real pebble on loopback, real http-01 and dns-01."""

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from acme_support import Pebble, free_port, pebble
from cryptography import x509
from pki_support import mode, openssl, parse_prometheus, snapshot

from pipelines import pki_cmd
from tasks.pki.acme_config import AcmeConfig, read_config, write_config
from tasks.pki.delivery import strongswan_files
from tasks.pki.errors import PkiError
from tasks.pki.keys import Passphrase
from tasks.pki.store import Layout

PASS = "ac-Passphrase-for-tests"
EAB_HMAC = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"


def fabric_yaml(path: Path, ips: tuple[str, str] = ("127.0.0.1", "127.0.0.2")) -> Path:
    sites = []
    for i, ip in enumerate(ips, 1):
        sites.append(f"""  - name: ac{i}
    id: {i}
    region: eu
    asn: {65200 + i}
    prefixes: [10.{60 + i}.0.0/24]
    gateways:
      - {{name: ac{i}-gw1, platform: strongswan, transport: local, host: localhost,
         public_ip: {ip}}}
""")
    path.write_text(f"""fabric:
  name: acfab
  topology: full_mesh
  auth: {{method: certificate, key_type: ecdsa-p256}}
  bgp: {{mode: ebgp}}
sites:
{"".join(sites)}""")
    return path


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("DCVPN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    with pebble(tmp_path_factory.mktemp("pebble")) as server:
        yield server


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = pki_cmd.main(["pki", *argv])
    out, err = capsys.readouterr()
    text = out + err
    assert "Traceback" not in text and "PRIVATE KEY" not in text
    assert PASS not in text and EAB_HMAC not in text
    return code, out, err


def root_file(ca: Pebble, folder: Path) -> Path:
    path = folder / "acme-root.pem"
    path.write_bytes(ca.root_pem())
    return path


def init(capsys: pytest.CaptureFixture[str], ca: Pebble, tmp_path: Path, fabric: Path,
         pki: Path, *extra: str, listen: str | None = None) -> tuple[int, str, str]:
    listen = listen or f"127.0.0.1:{ca.http_port},127.0.0.2:{ca.http_port}"
    return run(capsys, "init", "-f", str(fabric), "--pki-dir", str(pki),
               "--acme-directory", ca.directory, "--acme-root", str(root_file(ca, tmp_path)),
               "--acme-ca-bundle", str(ca.ca_bundle), "--acme-http-listen", listen, *extra)


def cert_of(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_http01_issue_renew_status_revoke(capsys: pytest.CaptureFixture[str], ca: Pebble,
                                          tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCVPN_PKI_PASSPHRASE", PASS)
    fabric = fabric_yaml(tmp_path / "acfab.yaml")
    pki = tmp_path / "pki"
    layout = Layout(pki)
    code, out, _ = init(capsys, ca, tmp_path, fabric, pki, "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["issuer"] == "acme" and data["encrypted"]
    assert data["account"].startswith(ca.directory.rsplit("/", 1)[0])
    assert mode(layout.acme_account_key) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in layout.acme_account_key.read_bytes()
    assert not layout.ca_key.exists() and not layout.crl.exists()
    assert read_config(layout).account_url == data["account"]

    args = ("-f", str(fabric), "--pki-dir", str(pki))
    code, out, _ = run(capsys, "issue", *args, "--format", "json")
    issued = json.loads(out)["certificates"]
    assert code == 0
    assert [(c["gateway"], c["outcome"]) for c in issued] == [("ac1-gw1", "created"),
                                                               ("ac2-gw1", "created")]
    assert all("issued by Pebble Intermediate CA" in c["reason"] for c in issued)
    root = root_file(ca, tmp_path)
    for i, gw in enumerate(("ac1-gw1", "ac2-gw1"), 1):
        cert = cert_of(layout.cert(gw))
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == [f"{gw}.acfab.dcvpn"]
        assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == [f"127.0.0.{i}"]
        assert "Pebble Intermediate" in cert.issuer.rfc4514_string()
        assert mode(layout.key(gw)) == 0o600
        assert b"ENCRYPTED PRIVATE KEY" in layout.key(gw).read_bytes()
        verified = openssl("verify", "-CAfile", str(root), "-untrusted",
                           str(layout.chain(gw)), str(layout.cert(gw)))
        assert verified.returncode == 0, verified.stdout + verified.stderr

    before = snapshot(pki)
    code, out, _ = run(capsys, "issue", *args, "--format", "json")
    assert code == 0 and {c["outcome"] for c in json.loads(out)["certificates"]} == {
        "unchanged"}
    assert snapshot(pki) == before

    # pebble issues 2-day certificates: a 1-day window keeps them, a 3-day one renews
    code, out, _ = run(capsys, "renew", *args, "--within", "1d", "--format", "json")
    assert code == 0 and {c["outcome"] for c in json.loads(out)["certificates"]} == {
        "unchanged"}
    old = layout.cert("ac1-gw1").read_bytes()
    code, out, err = run(capsys, "renew", *args, "--within", "3d", "--format", "json")
    renewed = json.loads(out)
    assert code == 0 and renewed["crl"] is None
    assert {c["outcome"] for c in renewed["certificates"]} == {"renewed"}
    assert all("renewed on every renew run" in c["reason"] for c in renewed["certificates"])
    assert layout.cert("ac1-gw1", previous=True).read_bytes() == old
    assert layout.cert("ac1-gw1").read_bytes() != old
    assert layout.chain("ac1-gw1", previous=True).is_file()

    prom = tmp_path / "pki.prom"
    code, out, _ = run(capsys, "status", *args, "--warn-days", "1", "--format", "json",
                       "--prometheus", str(prom))
    status = json.loads(out)
    assert code == 0 and status["ok"]
    assert status["crl"]["status"] == "external"
    assert status["ca"]["issuer"].startswith("Pebble Root CA")
    for row in status["certificates"]:
        assert row["status"] == "valid" and row["issuer"].startswith("Pebble Intermediate CA")
        assert row["not_after"] == cert_of(layout.cert(row["gateway"])).not_valid_after_utc \
            .strftime("%Y-%m-%dT%H:%M:%SZ")
        assert 0 < row["seconds_left"] <= 2 * 86400
    metrics = parse_prometheus(prom.read_text())
    info = {s["gateway"]: s["issuer"] for s, v in metrics["dcvpn_cert_info"] if v == 1}
    assert set(info) == {"ac1-gw1", "ac2-gw1"}
    assert all(v.startswith("Pebble Intermediate CA") for v in info.values())
    assert {s["gateway"] for s, _ in metrics["dcvpn_cert_expiry_seconds"]} == set(info)
    assert "dcvpn_crl_next_update_seconds" not in metrics
    code, out, _ = run(capsys, "status", *args, "--warn-days", "30")
    assert code == 1 and "expiring" in out and "Pebble Intermediate CA" in out

    # delivery: the root as trust anchor, the intermediate beside it, no CRL file
    files = {f.path: f for f in strongswan_files(pki, "ac1-gw1", Passphrase.from_env())}
    assert set(files) == {"x509/ac1-gw1.pem", "private/ac1-gw1.key", "x509ca/ca.pem",
                          "x509ca/chain-1.pem"}
    assert files["x509ca/ca.pem"].content == root.read_bytes()
    assert cert_of_bytes(files["x509ca/chain-1.pem"].content) == x509.load_pem_x509_certificates(
        layout.chain("ac1-gw1").read_bytes())[0]
    assert files["private/ac1-gw1.key"].mode == 0o600

    code, out, err = run(capsys, "revoke", *args, "ac2-gw1", "--reason", "superseded",
                         "--format", "json")
    revoked = json.loads(out)
    assert code == 0 and len(revoked["revoked"]) == 2 and "at the ACME CA" in err
    code, out, _ = run(capsys, "status", *args, "--warn-days", "1", "--format", "json")
    rows = {r["gateway"]: r["status"] for r in json.loads(out)["certificates"]}
    assert code == 1 and rows == {"ac1-gw1": "valid", "ac2-gw1": "revoked"}
    code, out, _ = run(capsys, "issue", *args, "--format", "json")
    assert code == 1
    code, out, _ = run(capsys, "issue", *args, "--reissue-revoked", "--format", "json")
    outcomes = {c["gateway"]: c["outcome"] for c in json.loads(out)["certificates"]}
    assert code == 0 and outcomes == {"ac1-gw1": "unchanged", "ac2-gw1": "reissued"}


def cert_of_bytes(data: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(data)


def test_failed_http01_validation_writes_nothing(capsys: pytest.CaptureFixture[str],
                                                 ca: Pebble, tmp_path: Path) -> None:
    """The responder on the wrong port: pebble's real validation fails, exit 3."""
    fabric = fabric_yaml(tmp_path / "acfab.yaml")
    pki = tmp_path / "pki"
    code, _, _ = init(capsys, ca, tmp_path, fabric, pki, listen=f"127.0.0.1:{free_port()}")
    assert code == 0
    before = snapshot(pki)
    code, _, err = run(capsys, "issue", "-f", str(fabric), "--pki-dir", str(pki))
    assert code == 3 and "validation failed" in err and "ac1-gw1.acfab.dcvpn" in err
    assert snapshot(pki) == before


def test_dns01_through_a_hook(capsys: pytest.CaptureFixture[str], ca: Pebble,
                              tmp_path: Path) -> None:
    hook = tmp_path / "dns-hook"
    log = tmp_path / "hook.log"
    hook.write_text(f"""#!{sys.executable}
import json, sys, urllib.request
action, name, value = sys.argv[1:4]
open({str(log)!r}, "a").write(f"{{action}} {{name}}\\n")
path = "/set-txt" if action == "add" else "/clear-txt"
body = {{"host": name + ".", "value": value}} if action == "add" else {{"host": name + "."}}
urllib.request.urlopen(urllib.request.Request(
    {ca.challtestsrv!r} + path, data=json.dumps(body).encode()), timeout=10)
""")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    fabric = fabric_yaml(tmp_path / "acfab.yaml")
    pki = tmp_path / "pki"
    code, _, err = init(capsys, ca, tmp_path, fabric, pki, "--acme-challenge", "dns-01",
                        "--acme-dns-hook", str(hook))
    assert code == 0, err
    code, _, err = run(capsys, "issue", "-f", str(fabric), "--pki-dir", str(pki),
                         "--site", "ac2")
    assert code == 0, err
    cert = cert_of(Layout(pki).cert("ac2-gw1"))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["ac2-gw1.acfab.dcvpn"]
    assert san.get_values_for_type(x509.IPAddress) == []  # dns-01 cannot prove an IP
    assert log.read_text().splitlines() == ["add _acme-challenge.ac2-gw1.acfab.dcvpn",
                                            "remove _acme-challenge.ac2-gw1.acfab.dcvpn"]


def test_external_account_binding(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fabric = fabric_yaml(tmp_path / "acfab.yaml")
    with pebble(tmp_path / "pebble-eab", eab=("ac-kid-1", EAB_HMAC)) as server:
        pki = tmp_path / "pki"
        code, _, err = init(capsys, server, tmp_path, fabric, pki)
        assert code == 2 and "requires External Account Binding" in err
        code, _, err = init(capsys, server, tmp_path, fabric, pki, "--acme-eab-kid",
                            "ac-kid-1", "--acme-eab-hmac-env", "AC_EAB_HMAC")
        assert code == 2 and "set AC_EAB_HMAC" in err
        monkeypatch.setenv("AC_EAB_HMAC", EAB_HMAC)
        code, _, err = init(capsys, server, tmp_path, fabric, pki, "--acme-eab-kid",
                            "ac-kid-1", "--acme-eab-hmac-env", "AC_EAB_HMAC")
        assert code == 0, err
        stored = Layout(pki).acme_config.read_text()
        assert EAB_HMAC not in stored and '"eab_hmac_env": "AC_EAB_HMAC"' in stored
        code, _, err = run(capsys, "issue", "-f", str(fabric), "--pki-dir", str(pki),
                           "--site", "ac1")
        assert code == 0, err


def test_acme_server_tls_is_verified(capsys: pytest.CaptureFixture[str], ca: Pebble,
                                     tmp_path: Path) -> None:
    fabric = fabric_yaml(tmp_path / "acfab.yaml")
    pki = tmp_path / "pki"
    code, _, err = run(capsys, "init", "-f", str(fabric), "--pki-dir", str(pki),
                       "--acme-directory", ca.directory,
                       "--acme-root", str(root_file(ca, tmp_path)))
    assert code == 3 and "TLS certificate is not trusted" in err
    assert not Layout(pki).acme_config.exists() and not Layout(pki).ca_cert.exists()


def test_chain_to_another_root_is_refused(capsys: pytest.CaptureFixture[str], ca: Pebble,
                                          tmp_path: Path) -> None:
    fabric = fabric_yaml(tmp_path / "acfab.yaml")
    other = tmp_path / "other"
    code, _, _ = run(capsys, "init", "-f", str(fabric), "--pki-dir", str(other))
    assert code == 0  # a fabric CA: a CA certificate that did not sign pebble's chain
    pki = tmp_path / "pki"
    code, _, err = run(capsys, "init", "-f", str(fabric), "--pki-dir", str(pki),
                       "--acme-directory", ca.directory, "--acme-root",
                       str(Layout(other).ca_cert), "--acme-ca-bundle", str(ca.ca_bundle),
                       "--acme-http-listen", f"127.0.0.1:{ca.http_port}")
    assert code == 0, err
    before = snapshot(pki)
    code, _, err = run(capsys, "issue", "-f", str(fabric), "--pki-dir", str(pki),
                       "--site", "ac1")
    assert code == 2 and "does not chain to the root" in err
    assert snapshot(pki) == before


def test_existing_issuer_is_kept(capsys: pytest.CaptureFixture[str], ca: Pebble,
                                 tmp_path: Path) -> None:
    fabric = fabric_yaml(tmp_path / "acfab.yaml")
    pki = tmp_path / "pki"
    assert run(capsys, "init", "-f", str(fabric), "--pki-dir", str(pki))[0] == 0
    before = snapshot(pki)
    code, _, err = init(capsys, ca, tmp_path, fabric, pki)
    assert code == 1 and "already has an issuer" in err
    assert snapshot(pki) == before


def test_days_do_not_apply(capsys: pytest.CaptureFixture[str], ca: Pebble,
                           tmp_path: Path) -> None:
    fabric = fabric_yaml(tmp_path / "acfab.yaml")
    pki = tmp_path / "pki"
    assert init(capsys, ca, tmp_path, fabric, pki)[0] == 0
    code, _, err = run(capsys, "issue", "-f", str(fabric), "--pki-dir", str(pki),
                       "--days", "30")
    assert code == 2 and "decides their validity" in err


@pytest.mark.parametrize(("fields", "message"), [
    ({"directory": "http://ca.example/dir"}, "must be an https URL"),
    ({"directory": "https://ca.example/dir", "challenge": "tls-alpn-01"}, "must be one of"),
    ({"directory": "https://ca.example/dir", "challenge": "dns-01"}, "needs a hook"),
    ({"directory": "https://ca.example/dir", "http_listen": "80"}, "HOST:PORT"),
    ({"directory": "https://ca.example/dir", "eab_kid": "k"}, "needs both"),
    ({"directory": "https://ca.example/dir", "eab_kid": "k", "eab_hmac_env": "a secret!"},
     "NAME of an environment variable"),
])
def test_config_is_checked(fields: dict[str, str], message: str) -> None:
    with pytest.raises(PkiError, match=message):
        AcmeConfig(**fields)  # type: ignore[arg-type]


def test_account_key_and_config_round_trip(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    config = AcmeConfig("https://ca.example/dir", contact=("mailto:ac@example.net",),
                        account_url="https://ca.example/acct/1")
    write_config(layout, config)
    assert read_config(layout) == config
    layout.acme_config.write_text('{"version": 1, "directory": "https://x/d", "bogus": 1}')
    with pytest.raises(PkiError, match="unknown field"):
        read_config(layout)
