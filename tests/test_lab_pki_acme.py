"""A 2-site strongSwan+FRR lab whose certificates come from an ACME CA (pebble).

`dcvpn pki init --acme-directory` + `issue` against pebble, then `dcvpn lab up --pki-dir`:
each gateway gets pebble's root as its trust anchor and pebble's intermediate beside it, and
the tunnels authenticate with the ACME-issued certificates (validate green). pebble runs with
PEBBLE_VA_ALWAYS_VALID=1 here: the gateways' public IPs live in the lab's namespaces, out of
pebble's reach; tests/test_pki_acme.py covers real http-01 and dns-01 validation.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from acme_support import Pebble, pebble
from lab_support import Lab, cli, failed, lab, lab_machine

from pipelines import pki_cmd

GATEWAYS = ("ac1-gw1", "ac2-gw1")
FABRIC = """# two strongSwan sites for the ACME lab test
fabric:
  name: aclab
  topology: full_mesh
  tunnel_pool: 169.254.0.0/16
  data_plane: libipsec
  crypto:
    profile: strict
    dpd: {interval: 10s, action: restart}
  auth: {method: certificate, key_type: ecdsa-p256}
  bgp:
    mode: ebgp
    bfd: {interval_ms: 300, multiplier: 3}
    timers: {keepalive: 3, hold: 9}
  mtu: {path_mtu: 1500}
sites:
  - name: ac1
    id: 1
    region: eu
    asn: 65301
    prefixes: [10.71.0.0/24]
    gateways:
      - {name: ac1-gw1, platform: strongswan, transport: local, host: localhost,
         public_ip: 192.0.2.71}
  - name: ac2
    id: 2
    region: eu
    asn: 65302
    prefixes: [10.72.0.0/24]
    gateways:
      - {name: ac2-gw1, platform: strongswan, transport: local, host: localhost,
         public_ip: 192.0.2.72}
"""


@dataclass
class AcmeLab:
    lab: Lab
    pki_dir: Path
    ca: Pebble


def pki(*argv: str) -> tuple[int, str, str]:
    return cli(None, pki_cmd.main, "pki", *argv)


@pytest.fixture(scope="module")
def aclab() -> Iterator[AcmeLab]:
    with lab_machine() as root, pebble(root / "pebble", always_valid=True) as ca:
        fabric = root / "aclab.yaml"
        fabric.write_text(FABRIC)
        (root / "acme-root.pem").write_bytes(ca.root_pem())
        pki_dir = root / "pki"
        code, _, err = pki("init", "-f", str(fabric), "--pki-dir", str(pki_dir),
                           "--acme-directory", ca.directory,
                           "--acme-root", str(root / "acme-root.pem"),
                           "--acme-ca-bundle", str(ca.ca_bundle),
                           "--acme-http-listen", f"127.0.0.1:{ca.http_port}")
        assert code == 0, err
        code, _, err = pki("issue", "-f", str(fabric), "--pki-dir", str(pki_dir))
        assert code == 0, err
        lab_dir = root / "aclab"
        try:
            code, out, err = lab(None, "up", "-f", str(fabric), "--lab-dir", str(lab_dir),
                                 "--pki-dir", str(pki_dir), "--format", "json")
            assert code == 0, err
            yield AcmeLab(Lab(str(fabric), lab_dir, json.loads(out)), pki_dir, ca)
        finally:
            lab(None, "down", "--lab-dir", str(lab_dir))


@pytest.mark.lab
def test_gateways_get_the_acme_root_and_chain(aclab: AcmeLab) -> None:
    root = (aclab.pki_dir / "ca.pem").read_bytes()
    assert root == aclab.ca.root_pem()
    for gw in GATEWAYS:
        folder = aclab.lab.lab_dir / gw
        assert (folder / "x509ca" / "ca.pem").read_bytes() == root
        assert (folder / "x509ca" / "chain-1.pem").read_bytes() == (
            aclab.pki_dir / "chain" / f"{gw}.pem").read_bytes()
        assert not (folder / "x509crl" / "crl.pem").exists()


@pytest.mark.lab
def test_tunnels_authenticate_with_acme_certificates(
        aclab: AcmeLab, capsys: pytest.CaptureFixture[str]) -> None:
    code, data = aclab.lab.validate(capsys)
    assert code == 0 and data["ok"], failed(data["checks"])
    log = (aclab.lab.lab_dir / "ac1-gw1" / "charon.log").read_text()
    assert "Pebble Intermediate CA" in log  # the path charon built ran through it
