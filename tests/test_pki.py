"""The fabric PKI library (tasks.pki): CA, issue, renew, revoke, CRL, status, delivery."""

import os
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import get_args

import pytest
from conftest import EXAMPLES, require_binary
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fabric_factory import fabric as make_fabric
from fabric_factory import site
from pki_support import NOW, mode, openssl, openssl_verify, parse_prometheus, snapshot

from inventory.loader import load_fabric
from inventory.model import Auth, Fabric, Gateway
from inventory.topology import compile_fabric, ike_identity
from tasks.pki.ca import init_ca
from tasks.pki.crl import revoke
from tasks.pki.delivery import device_pems, load_material, strongswan_files
from tasks.pki.errors import (
    CaExistsError,
    CaMismatchError,
    CorruptFileError,
    PassphraseError,
    PkiError,
)
from tasks.pki.issue import IKE_INTERMEDIATE, Outcome, issue_certs, renew_certs
from tasks.pki.keys import KEY_TYPES, Passphrase, key_type_of
from tasks.pki.status import Status, pki_status, prometheus_text, write_prometheus
from tasks.pki.store import Layout, serial_hex

NO_PASS = Passphrase()
SECRET = Passphrase(b"correct horse battery staple", "TEST_PASSPHRASE")


@pytest.fixture(scope="module")
def acme() -> Fabric:
    return load_fabric(EXAMPLES / "acme-hybrid.yaml").fabric


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path / "pki")


def _ca(layout: Layout, fabric: Fabric, passphrase: Passphrase = NO_PASS,
        at: datetime = NOW, **kw: int) -> None:
    init_ca(layout, fabric.fabric.name, fabric.fabric.auth.key_type, passphrase, at, **kw)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _gateways(fabric: Fabric) -> list[str]:
    return [gw.name for s in fabric.sites for gw in s.gateways]


def _all(fabric: Fabric) -> list[Gateway]:
    return [gw for s in fabric.sites for gw in s.gateways]


# --- CA -------------------------------------------------------------------------------------

def test_key_type_table_covers_the_model_choices() -> None:
    assert set(KEY_TYPES) == set(get_args(Auth.model_fields["key_type"].annotation))


@pytest.mark.parametrize(("key_type", "kind", "size"), [
    ("ecdsa-p384", ec.EllipticCurvePrivateKey, 384),
    ("ecdsa-p256", ec.EllipticCurvePrivateKey, 256),
    ("rsa-3072", rsa.RSAPrivateKey, 3072),
])
def test_init_creates_a_ca_of_the_chosen_key_type(layout: Layout, acme: Fabric, key_type: str,
                                                  kind: type, size: int) -> None:
    init_ca(layout, "acme", key_type, NO_PASS, NOW)
    ca = _cert(layout.ca_cert)
    key = serialization.load_pem_private_key(layout.ca_key.read_bytes(), None)
    assert isinstance(key, kind)
    assert key.key_size == size  # type: ignore[union-attr]
    assert ca.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert ca.not_valid_after_utc == NOW + timedelta(days=3650)
    assert "acme" in ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    crl = x509.load_pem_x509_crl(layout.crl.read_bytes())
    assert len(crl) == 0
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1


def test_init_writes_keys_0600_even_with_a_permissive_umask(layout: Layout,
                                                            acme: Fabric) -> None:
    old = os.umask(0)
    try:
        _ca(layout, acme)
        issue_certs(layout, acme, _all(acme)[:2], NO_PASS, NOW)
    finally:
        os.umask(old)
    assert mode(layout.ca_key) == 0o600
    assert mode(layout.root) == 0o700
    assert mode(layout.keys_dir) == 0o700
    assert mode(layout.ca_cert) == 0o644
    for gw in _gateways(acme)[:2]:
        assert mode(layout.key(gw)) == 0o600
        assert mode(layout.cert(gw)) == 0o644
    assert not [p for p in layout.root.rglob("*.tmp")]


def test_init_refuses_to_overwrite_an_existing_ca(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme)
    before = snapshot(layout.root)
    with pytest.raises(CaExistsError, match="refusing to overwrite"):
        _ca(layout, acme)
    layout.ca_cert.unlink()  # even half a CA is kept
    before = snapshot(layout.root)
    with pytest.raises(CaExistsError):
        _ca(layout, acme)
    assert snapshot(layout.root) == before


def test_init_refuses_certificates_of_an_earlier_ca(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme)
    issue_certs(layout, acme, _all(acme)[:1], NO_PASS, NOW)
    for p in (layout.ca_cert, layout.ca_key, layout.crl):
        p.unlink()
    with pytest.raises(CaExistsError, match="earlier CA"):
        _ca(layout, acme)
    assert not layout.ca_cert.exists()


def test_passphrase_encrypts_every_private_key(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme, SECRET)
    issue_certs(layout, acme, _all(acme)[:1], SECRET, NOW)
    gw = _gateways(acme)[0]
    for path in (layout.ca_key, layout.key(gw)):
        text = path.read_bytes()
        assert text.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        assert serialization.load_pem_private_key(text, SECRET.value)
    with pytest.raises(PassphraseError, match="wrong passphrase in TEST_PASSPHRASE"):
        issue_certs(layout, acme, _all(acme), Passphrase(b"nope", "TEST_PASSPHRASE"), NOW)
    with pytest.raises(PassphraseError, match="is encrypted: set DCVPN_PKI_PASSPHRASE"):
        issue_certs(layout, acme, _all(acme), NO_PASS, NOW)


# --- issue ----------------------------------------------------------------------------------

def test_issued_chains_verify_with_openssl(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme)
    results = issue_certs(layout, acme, _all(acme), NO_PASS, NOW)
    assert [r.outcome for r in results] == [Outcome.CREATED] * len(_gateways(acme))
    certs = [str(layout.cert(gw)) for gw in _gateways(acme)]
    done = openssl("verify", "-attime", str(int(NOW.timestamp())), "-CAfile",
                   str(layout.ca_cert), *certs)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(": OK") == len(certs)
    # and the same certificates are rejected by a different CA
    other = Layout(layout.root.parent / "other")
    init_ca(other, "other", "ecdsa-p384", NO_PASS, NOW)
    assert openssl_verify(other.ca_cert, layout.cert(_gateways(acme)[0]), NOW).returncode != 0


def test_subject_san_and_ekus_are_the_ike_identity(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme)
    issue_certs(layout, acme, _all(acme), NO_PASS, NOW)
    for gw in _all(acme):
        cert = _cert(layout.cert(gw.name))
        ident = ike_identity(acme, gw)
        assert cert.subject.rfc4514_string() == f"CN={ident}"
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == [ident]
        assert san.get_values_for_type(x509.IPAddress) == [gw.public_ip]
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH,
                            IKE_INTERMEDIATE}
        assert IKE_INTERMEDIATE.dotted_string == "1.3.6.1.5.5.8.2.2"
        assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert cert.not_valid_after_utc == NOW + timedelta(days=365)
        assert key_type_of(cert.public_key()) == "ecdsa-p384"  # type: ignore[arg-type]
        assert isinstance(cert.signature_hash_algorithm, hashes.SHA384)


def test_certificate_identity_is_the_endpoint_identity_of_every_tunnel(
        layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme)
    issue_certs(layout, acme, _all(acme), NO_PASS, NOW)
    compiled = compile_fabric(acme)
    for tunnel in compiled.tunnels:
        for end in tunnel.endpoints:
            cert = _cert(layout.cert(end.gateway))
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert end.identity in san.get_values_for_type(x509.DNSName)
            assert end.public_ip in san.get_values_for_type(x509.IPAddress)


def test_ike_id_override_by_name_and_by_address(layout: Layout) -> None:
    sites = [site(1), site(2)]
    sites[0]["gateways"][0]["ike_id"] = "vpn1.example.com"
    sites[1]["gateways"][0]["ike_id"] = "192.0.2.99"
    fab = make_fabric(sites)
    _ca(layout, fab)
    issue_certs(layout, fab, _all(fab), NO_PASS, NOW)
    san1 = _cert(layout.cert("s1-gw1")).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert san1.get_values_for_type(x509.DNSName) == ["vpn1.example.com"]
    san2 = _cert(layout.cert("s2-gw1")).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert san2.get_values_for_type(x509.DNSName) == []
    assert set(san2.get_values_for_type(x509.IPAddress)) == {
        ip_address("192.0.2.99"), fab.sites[1].gateways[0].public_ip}


def test_issue_is_idempotent(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme)
    issue_certs(layout, acme, _all(acme), NO_PASS, NOW)
    before = snapshot(layout.root)
    again = issue_certs(layout, acme, _all(acme), NO_PASS, NOW + timedelta(days=100))
    assert {r.outcome for r in again} == {Outcome.UNCHANGED}
    assert not any(r.changed for r in again)
    assert snapshot(layout.root) == before


def test_issue_for_some_gateways_leaves_the_others_alone(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme)
    fra1 = list(acme.site("fra1").gateways)
    issue_certs(layout, acme, fra1, NO_PASS, NOW)
    assert sorted(p.name for p in layout.certs_dir.iterdir()) == ["fra1-gw1.pem",
                                                                  "fra1-gw2.pem"]


def test_issue_replaces_a_certificate_whose_identity_changed(layout: Layout) -> None:
    sites = [site(1), site(2)]
    fab = make_fabric(sites)
    _ca(layout, fab)
    issue_certs(layout, fab, _all(fab), NO_PASS, NOW)
    old_cert = layout.cert("s1-gw1").read_bytes()
    old_key = layout.key("s1-gw1").read_bytes()
    sites[0]["gateways"][0]["public_ip"] = "203.0.113.77"
    moved = make_fabric(sites)
    results = {r.gateway: r for r in issue_certs(layout, moved, _all(moved), NO_PASS, NOW)}
    assert results["s1-gw1"].outcome is Outcome.REISSUED
    assert "203.0.113.77" in results["s1-gw1"].reason
    assert results["s2-gw1"].outcome is Outcome.UNCHANGED
    san = _cert(layout.cert("s1-gw1")).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ip_address("203.0.113.77")]
    assert layout.cert("s1-gw1", previous=True).read_bytes() == old_cert
    assert layout.key("s1-gw1", previous=True).read_bytes() == old_key
    assert mode(layout.key("s1-gw1", previous=True)) == 0o600


def test_issue_replaces_an_expired_certificate(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme)
    gws = _all(acme)[:1]
    issue_certs(layout, acme, gws, NO_PASS, NOW, days=10)
    later = NOW + timedelta(days=11)
    [result] = issue_certs(layout, acme, gws, NO_PASS, later, days=10)
    assert (result.outcome, result.reason) == (Outcome.REISSUED, "expired")
    assert _cert(layout.cert(gws[0].name)).not_valid_after_utc == later + timedelta(days=10)


def test_issue_refuses_a_clock_before_the_ca(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme)
    with pytest.raises(PkiError, match="check the clock"):
        issue_certs(layout, acme, _all(acme), NO_PASS, NOW - timedelta(days=1))
    assert not layout.certs_dir.exists()


def test_validity_never_outlives_the_ca(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme, days=100)
    [result] = issue_certs(layout, acme, _all(acme)[:1], NO_PASS, NOW, days=365)
    assert result.not_after == NOW + timedelta(days=100)
    assert "CA's expiry" in result.reason


# --- renew ----------------------------------------------------------------------------------

def test_renew_window_with_a_frozen_clock(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme, crl_days=400)  # the CRL is not due in this test
    gws = _all(acme)[:2]
    issue_certs(layout, acme, gws, NO_PASS, NOW)
    expiry = NOW + timedelta(days=365)
    before = snapshot(layout.root)
    early = renew_certs(layout, acme, gws, NO_PASS, expiry - timedelta(days=30, seconds=1))
    assert {r.outcome for r in early.certs} == {Outcome.UNCHANGED}
    assert early.crl is None
    assert snapshot(layout.root) == before
    due = expiry - timedelta(days=30)
    result = renew_certs(layout, acme, gws, NO_PASS, due)
    assert {r.outcome for r in result.certs} == {Outcome.RENEWED}
    for gw in gws:
        new, old = _cert(layout.cert(gw.name)), _cert(layout.cert(gw.name, previous=True))
        assert old.not_valid_after_utc == expiry
        assert new.not_valid_after_utc == due + timedelta(days=365)
        assert new.serial_number != old.serial_number
        assert new.public_key() != old.public_key()
        # make-before-break: both verify at the same moment, the old one until its expiry
        for path in (layout.cert(gw.name), layout.cert(gw.name, previous=True)):
            done = openssl_verify(layout.ca_cert, path, due + timedelta(days=29), layout.crl)
            assert done.returncode == 0, done.stdout + done.stderr
        loaded = load_material(layout.root, gw.name, previous=True)
        assert x509.load_pem_x509_certificate(loaded.cert_pem) == old


def test_renew_also_reissues_expired_and_skips_revoked_and_missing(layout: Layout,
                                                                   acme: Fabric) -> None:
    _ca(layout, acme)
    a, b, c = _all(acme)[:3]
    issue_certs(layout, acme, [a, b], NO_PASS, NOW)
    revoke(layout, b.name, NO_PASS, NOW, 90)
    result = renew_certs(layout, acme, [a, b, c], NO_PASS, NOW + timedelta(days=400))
    outcomes = {r.gateway: r.outcome for r in result.certs}
    assert outcomes == {a.name: Outcome.RENEWED, b.name: Outcome.REVOKED,
                        c.name: Outcome.MISSING}
    assert not layout.cert(c.name).exists()
    assert not layout.cert(b.name, previous=True).exists()


def test_renew_resigns_the_crl_when_its_next_update_is_in_the_window(layout: Layout,
                                                                     acme: Fabric) -> None:
    _ca(layout, acme, crl_days=90)
    quiet = renew_certs(layout, acme, [], NO_PASS, NOW + timedelta(days=59))
    assert quiet.crl is None
    due = NOW + timedelta(days=60)
    result = renew_certs(layout, acme, [], NO_PASS, due)
    assert result.crl is not None and result.crl.number == 2
    crl = x509.load_pem_x509_crl(layout.crl.read_bytes())
    assert crl.next_update_utc == due + timedelta(days=90)


def test_renew_refuses_a_validity_shorter_than_its_window(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme)
    with pytest.raises(PkiError, match="--days must be longer"):
        renew_certs(layout, acme, _all(acme), NO_PASS, NOW, timedelta(days=30), days=30)


# --- revoke and the CRL ---------------------------------------------------------------------

def _crl_text(layout: Layout) -> str:
    done = openssl("crl", "-in", str(layout.crl), "-text", "-noout")
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_revocation_appears_in_the_crl(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme)
    issue_certs(layout, acme, _all(acme), NO_PASS, NOW)
    a, b = _gateways(acme)[:2]
    serial_a = serial_hex(_cert(layout.cert(a)).serial_number)
    result = revoke(layout, a, NO_PASS, NOW + timedelta(hours=1), 7, "key-compromise")
    assert result.serials == (serial_a,) and result.crl is not None
    text = _crl_text(layout)
    assert f"Serial Number: {serial_a}" in text
    assert "Key Compromise" in text
    assert re.search(r"CRL Number: *\n *2\b", text)
    assert "Next Update: Jan  8 13:00:00 2030 GMT" in text
    signed = openssl("crl", "-in", str(layout.crl), "-CAfile", str(layout.ca_cert), "-noout")
    assert "verify OK" in signed.stdout + signed.stderr
    when = NOW + timedelta(days=1)
    refused = openssl_verify(layout.ca_cert, layout.cert(a), when, layout.crl)
    assert refused.returncode != 0 and "revoked" in refused.stdout + refused.stderr
    assert openssl_verify(layout.ca_cert, layout.cert(b), when, layout.crl).returncode == 0
    # a second revocation: another entry, the CRL number goes up again
    revoke(layout, b, NO_PASS, NOW + timedelta(hours=2), 7)
    text = _crl_text(layout)
    assert text.count("Serial Number:") == 2
    assert re.search(r"CRL Number: *\n *3\b", text)


def test_revoking_twice_changes_nothing(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme)
    issue_certs(layout, acme, _all(acme)[:1], NO_PASS, NOW)
    gw = _gateways(acme)[0]
    revoke(layout, gw, NO_PASS, NOW, 90)
    before = snapshot(layout.root)
    again = revoke(layout, gw, NO_PASS, NOW + timedelta(days=1), 90)
    assert again.serials == () and len(again.already) == 1 and again.crl is None
    assert snapshot(layout.root) == before


def test_revoke_covers_the_previous_certificate_too(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme)
    gws = _all(acme)[:1]
    issue_certs(layout, acme, gws, NO_PASS, NOW)
    renew_certs(layout, acme, gws, NO_PASS, NOW + timedelta(days=340))
    name = gws[0].name
    serials = {serial_hex(_cert(layout.cert(name, p)).serial_number) for p in (False, True)}
    result = revoke(layout, name, NO_PASS, NOW + timedelta(days=341), 90)
    assert set(result.serials) == serials
    text = _crl_text(layout)
    assert all(f"Serial Number: {s}" in text for s in serials)


@pytest.mark.parametrize("name", ["nope-gw9", "../ca", ".hidden", "a/b"])
def test_revoke_needs_an_existing_certificate_and_a_plain_name(layout: Layout, acme: Fabric,
                                                               name: str) -> None:
    _ca(layout, acme)
    before = snapshot(layout.root)
    with pytest.raises(PkiError):
        revoke(layout, name, NO_PASS, NOW, 90)
    assert snapshot(layout.root) == before


# --- status and Prometheus ------------------------------------------------------------------

def test_status_of_every_kind_with_a_frozen_clock(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme, at=NOW - timedelta(days=400))
    ok, soon, old, gone, _missing = _all(acme)[:5]
    issue_certs(layout, acme, [ok, gone], NO_PASS, NOW)
    issue_certs(layout, acme, [soon], NO_PASS, NOW - timedelta(days=340))  # 25 days left
    issue_certs(layout, acme, [old], NO_PASS, NOW - timedelta(days=20), days=10)
    revoke(layout, gone.name, NO_PASS, NOW, 90)
    status = pki_status(layout, _gateways(acme)[:5], NOW, warn_days=30)
    got = {r.name: (r.status, r.days_left) for r in status.certs}
    assert got == {ok.name: (Status.VALID, 365), soon.name: (Status.EXPIRING, 25),
                   old.name: (Status.EXPIRED, -10), gone.name: (Status.REVOKED, 365),
                   _missing.name: (Status.MISSING, None)}
    assert not status.ok
    assert {r.name for r in status.problems()} == {soon.name, old.name, gone.name,
                                                   _missing.name}
    assert status.ca.status is Status.VALID and status.crl.status is Status.VALID
    # a shorter warning window makes the 25-day certificate fine
    relaxed = pki_status(layout, [ok.name, soon.name], NOW, warn_days=20)
    assert relaxed.ok


def test_status_counts_missing_only_for_certificate_fabrics(layout: Layout,
                                                            acme: Fabric) -> None:
    _ca(layout, acme)
    assert not pki_status(layout, ["x-gw1"], NOW).ok
    assert pki_status(layout, ["x-gw1"], NOW, missing_fails=False).ok


def test_status_flags_a_crl_about_to_run_out(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme, crl_days=90)
    status = pki_status(layout, [], NOW + timedelta(days=61), warn_days=30)
    assert status.crl.status is Status.EXPIRING and not status.ok


def test_prometheus_file(layout: Layout, acme: Fabric, tmp_path: Path) -> None:
    _ca(layout, acme)
    a, b, c = _all(acme)[:3]
    issue_certs(layout, acme, [a, b], NO_PASS, NOW)
    revoke(layout, b.name, NO_PASS, NOW, 90)
    when = NOW + timedelta(days=100, seconds=7)
    status = pki_status(layout, [a.name, b.name, c.name], when)
    out = tmp_path / "textfile" / "dcvpn.prom"
    out.parent.mkdir()
    write_prometheus(out, prometheus_text(status))
    assert mode(out) == 0o644
    assert os.listdir(out.parent) == ["dcvpn.prom"]  # no temporary file left behind
    metrics = parse_prometheus(out.read_text())
    expiry = {s["gateway"]: (s["serial"], v) for s, v in metrics["dcvpn_cert_expiry_seconds"]}
    left = int((NOW + timedelta(days=365) - when).total_seconds())
    assert expiry == {
        a.name: (serial_hex(_cert(layout.cert(a.name)).serial_number), left),
        b.name: (serial_hex(_cert(layout.cert(b.name)).serial_number), left),
    }
    revoked = {s["gateway"]: v for s, v in metrics["dcvpn_cert_revoked"]}
    assert revoked == {a.name: 0, b.name: 1}
    assert {s["gateway"]: v for s, v in metrics["dcvpn_cert_missing"]} == {
        a.name: 0, b.name: 0, c.name: 1}
    [(_, ca_left)] = metrics["dcvpn_ca_expiry_seconds"]
    assert ca_left == int((NOW + timedelta(days=3650) - when).total_seconds())
    [(labels, crl_left)] = metrics["dcvpn_crl_next_update_seconds"]
    assert labels == {} and crl_left == int((NOW + timedelta(days=90) - when).total_seconds())


def test_prometheus_replaces_the_file_atomically(tmp_path: Path, layout: Layout,
                                                 acme: Fabric) -> None:
    _ca(layout, acme)
    out = tmp_path / "dcvpn.prom"
    out.write_text("stale\n")
    inode = out.stat().st_ino
    write_prometheus(out, prometheus_text(pki_status(layout, [], NOW)))
    assert out.stat().st_ino != inode  # a rename, not a rewrite in place
    assert "stale" not in out.read_text()


# --- delivery -------------------------------------------------------------------------------

def test_strongswan_files(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme, SECRET)
    gw = _gateways(acme)[0]
    issue_certs(layout, acme, _all(acme)[:1], SECRET, NOW)
    files = {f.path: f for f in strongswan_files(layout.root, gw, SECRET)}
    assert sorted(files) == sorted([f"x509/{gw}.pem", f"private/{gw}.key", "x509ca/ca.pem",
                                    "x509crl/crl.pem"])
    assert files[f"private/{gw}.key"].mode == 0o600
    assert {f.mode for p, f in files.items() if not p.startswith("private/")} == {0o644}
    assert files[f"x509/{gw}.pem"].content == layout.cert(gw).read_bytes()
    assert files["x509ca/ca.pem"].content == layout.ca_cert.read_bytes()
    assert files["x509crl/crl.pem"].content == layout.crl.read_bytes()
    key = serialization.load_pem_private_key(files[f"private/{gw}.key"].content, None)
    assert key.public_key() == _cert(layout.cert(gw)).public_key()
    assert "BEGIN" not in repr(files[f"private/{gw}.key"])  # keys stay out of reprs/logs
    with pytest.raises(PassphraseError):
        strongswan_files(layout.root, gw)


def test_device_pems_for_iosxe_and_junos(layout: Layout, acme: Fabric) -> None:
    _ca(layout, acme, SECRET)
    issue_certs(layout, acme, _all(acme), SECRET, NOW)
    pems = device_pems(layout.root, "fra1-gw1")  # no passphrase needed for public material
    assert x509.load_pem_x509_certificate(pems.ca.encode()) == _cert(layout.ca_cert)
    assert x509.load_pem_x509_certificate(pems.cert.encode()) == _cert(layout.cert("fra1-gw1"))
    assert pems.crl.encode() == layout.crl.read_bytes()
    assert "PRIVATE KEY" not in pems.ca + pems.cert + pems.crl


def test_strongswan_accepts_the_chain_and_sees_the_revocation(tmp_path: Path,
                                                              acme: Fabric) -> None:
    pki = require_binary("pki")  # strongSwan's own certificate parser and verifier
    layout = Layout(tmp_path / "pki")
    now = datetime.now(UTC)
    init_ca(layout, "acme", "ecdsa-p384", NO_PASS, now)
    a, b = _all(acme)[:2]
    issue_certs(layout, acme, [a, b], NO_PASS, now)
    revoke(layout, b.name, NO_PASS, now, 90)

    def verify(gw: str) -> subprocess.CompletedProcess[str]:
        root = tmp_path / gw
        for f in strongswan_files(layout.root, gw):
            (root / f.path).parent.mkdir(parents=True, exist_ok=True)
            (root / f.path).write_bytes(f.content)
        key = subprocess.run([pki, "--print", "--type", "priv", "--in",
                              str(root / "private" / f"{gw}.key")],
                             capture_output=True, text=True, check=False, timeout=30)
        assert key.returncode == 0, key.stdout + key.stderr
        return subprocess.run([pki, "--verify", "--in", str(root / "x509" / f"{gw}.pem"),
                               "--cacert", str(root / "x509ca" / "ca.pem"),
                               "--crl", str(root / "x509crl" / "crl.pem")],
                              capture_output=True, text=True, check=False, timeout=30)

    good = verify(a.name)
    assert good.returncode == 0 and "certificate not revoked" in good.stdout, good.stdout
    bad = verify(b.name)
    assert bad.returncode != 0
    assert "certificate was revoked" in bad.stdout + bad.stderr


# --- a CA that does not match ---------------------------------------------------------------

@pytest.fixture
def mixed(tmp_path: Path, acme: Fabric) -> Iterator[Layout]:
    """A PKI directory whose CA was swapped for another one after certificates were issued."""
    layout = Layout(tmp_path / "pki")
    _ca(layout, acme)
    issue_certs(layout, acme, _all(acme)[:2], NO_PASS, NOW)
    other = Layout(tmp_path / "other")
    init_ca(other, "acme", "ecdsa-p384", NO_PASS, NOW)
    for name in ("ca.pem", "ca.key", "crl.pem"):
        (layout.root / name).write_bytes((other.root / name).read_bytes())
    yield layout


def test_a_foreign_ca_stops_issue_renew_revoke_status_and_changes_nothing(
        mixed: Layout, acme: Fabric) -> None:
    before = snapshot(mixed.root)
    gw = _gateways(acme)[0]
    for action in (
        lambda: issue_certs(mixed, acme, _all(acme), NO_PASS, NOW),
        lambda: renew_certs(mixed, acme, _all(acme), NO_PASS, NOW + timedelta(days=360)),
        lambda: revoke(mixed, gw, NO_PASS, NOW, 90),
        lambda: pki_status(mixed, _gateways(acme), NOW),
        lambda: strongswan_files(mixed.root, gw),
    ):
        with pytest.raises(CaMismatchError, match="was not issued by the CA"):
            action()
    assert snapshot(mixed.root) == before


def test_issue_and_renew_check_every_gateway_before_writing_anything(layout: Layout,
                                                                    acme: Fabric) -> None:
    _ca(layout, acme)
    first, second = _all(acme)[:2]
    issue_certs(layout, acme, [first, second], NO_PASS, NOW)
    layout.cert(first.name).unlink()  # `first` would be issued again...
    layout.key(first.name).unlink()
    layout.key(second.name).write_bytes(b"-----BEGIN PRIVATE KEY-----\nbroken\n")  # ...but
    before = snapshot(layout.root)
    with pytest.raises(CorruptFileError, match=f"{second.name}.key: not a readable PEM"):
        issue_certs(layout, acme, [first, second], NO_PASS, NOW)
    with pytest.raises(CorruptFileError, match=f"{second.name}.key: not a readable PEM"):
        renew_certs(layout, acme, [first, second], NO_PASS, NOW + timedelta(days=360))
    assert snapshot(layout.root) == before


def test_a_ca_key_that_does_not_belong_to_ca_pem(tmp_path: Path, acme: Fabric) -> None:
    layout = Layout(tmp_path / "pki")
    _ca(layout, acme)
    other = Layout(tmp_path / "other")
    init_ca(other, "acme", "ecdsa-p384", NO_PASS, NOW)
    layout.ca_key.write_bytes(other.ca_key.read_bytes())
    before = snapshot(layout.root)
    with pytest.raises(CaMismatchError, match="does not belong to"):
        issue_certs(layout, acme, _all(acme), NO_PASS, NOW)
    assert snapshot(layout.root) == before
