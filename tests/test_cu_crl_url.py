"""fabric.auth.crl_url: the model key, the CRL distribution point of issued certificates (and
reissue when it changes), strict revocation checking on IOS-XE, the CRL URL of the JunOS
ca-profile, the strongSwan fetcher plugin, the emulators accepting the rendered lines, and the
golden files of tests/fabrics/cu-crl.yaml (regenerate with DCVPN_UPDATE_GOLDEN=1)."""

import copy
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, GOLDEN, ROOT, UPDATE_GOLDEN
from cryptography import x509
from lxml import etree
from netconf_support import require_yang
from pki_support import NOW, openssl_verify
from pydantic import ValidationError

from inventory.loader import load_fabric
from inventory.model import Fabric
from inventory.topology import CompiledFabric, compile_fabric
from lab.emulators.iosxe_cli_config import ConfigEditor, LineError, empty_config, parse_text
from lab.emulators.iosxe_cli_config import render as render_running
from lab.emulators.junos_print import to_set
from lab.emulators.junos_text import apply_set_commands
from tasks.pki.ca import init_ca
from tasks.pki.crl import revoke
from tasks.pki.issue import Outcome, crl_distribution_points, issue_certs, renew_certs
from tasks.pki.keys import Passphrase
from tasks.pki.store import Layout
from tasks.render import render_gateway
from tasks.render_context import gateway_view

FABRIC = ROOT / "tests" / "fabrics" / "cu-crl.yaml"
URL = "http://pki.cucrl.example.net/dcvpn/crl.pem"
OTHER_URL = "http://crl.cucrl.example.net:8080/ca.crl"
IOSXE = ("cuh1-gw1", "cub3-gw1")  # 17.15, 17.12
JUNOS = "cuh1-gw2"
STRONGSWAN = "cub2-gw1"
NO_PASS = Passphrase()
Mutation = Callable[[dict[str, Any]], None]


@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(FABRIC.read_text(encoding="utf-8"))
    return data


def _fabric(url: str | None = URL, **auth: Any) -> Fabric:
    data = copy.deepcopy(_data())
    data["fabric"]["auth"].pop("crl_url")
    if url is not None:
        data["fabric"]["auth"]["crl_url"] = url
    data["fabric"]["auth"].update(auth)
    return Fabric.model_validate(data)


def _compiled(url: str | None = URL, **auth: Any) -> CompiledFabric:
    return compile_fabric(_fabric(url, **auth))


# ---- the model ------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [URL, "https://pki.example.net/crl.pem",
                                 "http://192.0.2.10:8080/dcvpn/crl.pem", "HTTP://[2001:db8::1]/c"])
def test_crl_url_accepted(url: str) -> None:
    assert _fabric(url).fabric.auth.crl_url == url


def test_crl_url_absent_is_none() -> None:
    assert _fabric(None).fabric.auth.crl_url is None


@pytest.mark.parametrize(("url", "reason"), [
    ("ftp://pki.example.net/crl.pem", "http:// or https://"),
    ("pki.example.net/crl.pem", "http:// or https://"),
    ("ldap://pki.example.net/cn=ca", "http:// or https://"),
    ("http:///crl.pem", "names no host"),
    ("http://pki.example.net/my crl.pem", "whitespace"),
    ("http://pki.example.net/crl.pem\n", "whitespace"),
    ("http://pki.example.net/crl?x=1", "-._~:/[]%+ only"),
    ("http://pki.example.net/crl.pem#a", "-._~:/[]%+ only"),
    ('http://pki.example.net/"crl"', "-._~:/[]%+ only"),
    ("http://user@pki.example.net/crl.pem", "-._~:/[]%+ only"),
    ("http://pki.example.net/" + "c" * 480, "at most 500"),
])
def test_crl_url_refused(url: str, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        _fabric(url)
    [error] = err.value.errors()
    assert error["loc"] == ("fabric", "auth", "crl_url")
    assert reason in error["msg"]


def test_loader_names_the_field_of_a_bad_url(tmp_path: Path) -> None:
    from inventory.errors import InventoryError

    path = tmp_path / "bad.yaml"
    path.write_text(FABRIC.read_text(encoding="utf-8").replace(URL, "ftp://x/crl"),
                    encoding="utf-8")
    with pytest.raises(InventoryError) as err:
        load_fabric(path)
    assert "fabric.auth.crl_url" in str(err.value)


# ---- certificates ---------------------------------------------------------------------------

def _layout(tmp_path: Path, fabric: Fabric) -> Layout:
    layout = Layout(tmp_path / "pki")
    init_ca(layout, fabric.fabric.name, fabric.fabric.auth.key_type, NO_PASS, NOW)
    return layout


def _gateways(fabric: Fabric) -> list[Any]:
    return [gw for site in fabric.sites for gw in site.gateways]


def _cdp(layout: Layout, gateway: str) -> tuple[str, ...]:
    cert = x509.load_pem_x509_certificate(layout.cert(gateway).read_bytes())
    return crl_distribution_points(cert)


def test_issued_certificates_name_the_crl_url(tmp_path: Path) -> None:
    fabric = _fabric()
    layout = _layout(tmp_path, fabric)
    results = issue_certs(layout, fabric, _gateways(fabric), NO_PASS, NOW)
    assert {r.outcome for r in results} == {Outcome.CREATED}
    for gw in _gateways(fabric):
        cert = x509.load_pem_x509_certificate(layout.cert(gw.name).read_bytes())
        ext = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)
        assert not ext.critical
        [point] = ext.value
        assert point.full_name == [x509.UniformResourceIdentifier(URL)]
        assert point.reasons is None and point.crl_issuer is None
    # the CRL is a full CRL without an issuing distribution point
    crl = x509.load_pem_x509_crl(layout.crl.read_bytes())
    with pytest.raises(x509.ExtensionNotFound):
        crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)


def test_without_crl_url_no_distribution_point(tmp_path: Path) -> None:
    fabric = _fabric(None)
    layout = _layout(tmp_path, fabric)
    issue_certs(layout, fabric, _gateways(fabric), NO_PASS, NOW)
    cert = x509.load_pem_x509_certificate(layout.cert(STRONGSWAN).read_bytes())
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)


def test_openssl_checks_a_cdp_certificate_against_the_crl(tmp_path: Path) -> None:
    fabric = _fabric()
    layout = _layout(tmp_path, fabric)
    gws = _gateways(fabric)
    issue_certs(layout, fabric, gws, NO_PASS, NOW)
    ok = openssl_verify(layout.ca_cert, layout.cert(STRONGSWAN), NOW, layout.crl)
    assert ok.returncode == 0, ok.stderr
    revoke(layout, STRONGSWAN, NO_PASS, NOW, 30)
    refused = openssl_verify(layout.ca_cert, layout.cert(STRONGSWAN), NOW, layout.crl)
    assert refused.returncode != 0 and "revoked" in (refused.stdout + refused.stderr)


def test_issue_is_idempotent_with_the_same_url(tmp_path: Path) -> None:
    fabric = _fabric()
    layout = _layout(tmp_path, fabric)
    issue_certs(layout, fabric, _gateways(fabric), NO_PASS, NOW)
    before = layout.cert(JUNOS).read_bytes()
    again = issue_certs(layout, fabric, _gateways(fabric), NO_PASS, NOW)
    assert {r.outcome for r in again} == {Outcome.UNCHANGED}
    assert layout.cert(JUNOS).read_bytes() == before


@pytest.mark.parametrize(("first", "second", "reason"), [
    (None, URL, f"CRL distribution point changed: none -> {URL}"),
    (URL, OTHER_URL, f"CRL distribution point changed: {URL} -> {OTHER_URL}"),
    (URL, None, f"CRL distribution point changed: {URL} -> none"),
])
def test_changed_url_reissues(tmp_path: Path, first: str | None, second: str | None,
                              reason: str) -> None:
    layout = _layout(tmp_path, _fabric(first))
    issue_certs(layout, _fabric(first), _gateways(_fabric(first)), NO_PASS, NOW)
    old = layout.cert(JUNOS).read_bytes()
    changed = _fabric(second)
    results = issue_certs(layout, changed, _gateways(changed), NO_PASS, NOW)
    assert [(r.outcome, r.reason) for r in results] == [(Outcome.REISSUED, reason)] * 4
    assert _cdp(layout, JUNOS) == ((second,) if second else ())
    assert layout.cert(JUNOS, previous=True).read_bytes() == old  # make-before-break
    assert {r.outcome for r in issue_certs(layout, changed, _gateways(changed), NO_PASS,
                                           NOW)} == {Outcome.UNCHANGED}


def test_renew_gives_the_current_url(tmp_path: Path) -> None:
    layout = _layout(tmp_path, _fabric(None))
    issue_certs(layout, _fabric(None), _gateways(_fabric(None)), NO_PASS, NOW, days=40)
    fabric = _fabric()
    result = renew_certs(layout, fabric, _gateways(fabric), NO_PASS, NOW)  # 40 days left
    assert {r.outcome for r in result.certs} == {Outcome.UNCHANGED}
    later = renew_certs(layout, fabric, _gateways(fabric), NO_PASS,
                        NOW.replace(day=20))  # 21 days left: inside the 30-day window
    assert {r.outcome for r in later.certs} == {Outcome.RENEWED}
    assert _cdp(layout, IOSXE[0]) == (URL,)


# ---- renderers -------------------------------------------------------------------------------

def _lines(text: str) -> list[str]:
    return text.splitlines()


@pytest.mark.parametrize("gateway", IOSXE)
def test_iosxe_cli_checks_strictly_with_a_url(gateway: str) -> None:
    cli = _lines(render_gateway(_compiled(), gateway)["config.cli"])
    tp = cli.index("crypto pki trustpoint DCVPN-cucrl")
    section = cli[tp:cli.index("!", tp)]
    assert " revocation-check crl" in section
    assert " crl cache delete-after 60" in section
    assert not any(line.startswith(" revocation-check crl none") for line in section)


@pytest.mark.parametrize("gateway", IOSXE)
def test_iosxe_without_url_renders_as_before(gateway: str) -> None:
    files = render_gateway(_compiled(None), gateway)
    assert " revocation-check crl none" in _lines(files["config.cli"])
    assert "crl cache" not in files["config.cli"]
    assert "<crl>" not in files["config.xml"]


def _trustpoint(xml: str) -> etree._Element:
    ns = {"c": "http://cisco.com/ns/yang/Cisco-IOS-XE-crypto"}
    found = etree.fromstring(xml.encode()).findall(".//c:pki/c:trustpoint", ns)
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("gateway", IOSXE)
def test_iosxe_xml_checks_strictly_with_a_url(gateway: str) -> None:
    tp = _trustpoint(render_gateway(_compiled(), gateway)["config.xml"])
    q = "{http://cisco.com/ns/yang/Cisco-IOS-XE-crypto}"
    assert [e.text for e in tp.iter(f"{q}revocation-check")] == ["crl"]
    assert tp.findtext(f"{q}crl/{q}cache/{q}delete-after") == "60"
    plain = _trustpoint(render_gateway(_compiled(None), gateway)["config.xml"])
    assert [e.text for e in plain.iter(f"{q}revocation-check")] == ["crl", "none"]


def test_junos_ca_profile_fetches_the_crl() -> None:
    files = render_gateway(_compiled(), JUNOS)
    prefix = "set security pki ca-profile DCVPN-CA revocation-check crl "
    assert [line for line in _lines(files["config.set"]) if line.startswith(prefix)] == [
        f"{prefix}disable on-download-failure", f"{prefix}url {URL}",
        f"{prefix}refresh-interval 1"]
    crl = etree.fromstring(files["config.xml"].encode()).find(
        "security/pki/ca-profile/revocation-check/crl")
    assert crl is not None
    assert crl.findtext("url/name") == URL
    assert crl.findtext("refresh-interval") == "1"
    assert crl.find("disable/on-download-failure") is not None
    plain = render_gateway(_compiled(None), JUNOS)
    assert "refresh-interval" not in plain["config.set"] + plain["config.xml"]
    assert "crl url" not in plain["config.set"]


def test_strongswan_loads_a_fetcher_with_a_url() -> None:
    def plugins(compiled: CompiledFabric) -> list[str]:
        conf = render_gateway(compiled, STRONGSWAN)["strongswan.conf"]
        [charon] = [line for line in _lines(conf) if line.startswith("  load = random")]
        return charon.split("=", 1)[1].split()
    assert "curl" in plugins(_compiled()) and "revocation" in plugins(_compiled())
    assert "curl" not in plugins(_compiled(None))


def test_psk_fabric_ignores_the_url() -> None:
    with_url = _compiled(URL, method="psk")
    without = _compiled(None, method="psk")
    for gw in (*IOSXE, JUNOS, STRONGSWAN):
        assert render_gateway(with_url, gw) == render_gateway(without, gw)


@pytest.fixture(scope="module")
def validate() -> Callable[[str, str], tuple[str, ...]]:
    require_yang()
    from lab.yang.iosxe import validate_iosxe
    from lab.yang.junos import validate_junos

    def check(xml: str, platform: str) -> tuple[str, ...]:
        if platform == "junos":
            return validate_junos(xml).errors
        return validate_iosxe(xml, platform).errors
    return check


@pytest.mark.parametrize("gateway", [*IOSXE, JUNOS])
def test_xml_is_yang_valid(validate: Callable[[str, str], tuple[str, ...]],
                           gateway: str) -> None:
    compiled = _compiled()
    version = gateway_view(compiled, gateway).os_version
    kind = "junos" if gateway == JUNOS else str(version)
    xml = render_gateway(compiled, gateway)["config.xml"]
    assert validate(xml, kind) == ()
    if gateway != JUNOS:  # the cache time is checked against the leaf's range
        broken = xml.replace("<delete-after>60<", "<delete-after>50000<")
        assert broken != xml and validate(broken, kind) != ()


# ---- the emulators accept what is rendered --------------------------------------------------

@pytest.mark.parametrize("gateway", IOSXE)
def test_iosxe_cli_emulator_accepts_the_trustpoint(gateway: str) -> None:
    text = render_gateway(_compiled(), gateway)["config.cli"]
    editor = ConfigEditor(empty_config())
    rejected = [(line, r) for line in text.splitlines()
                if isinstance(r := editor.apply(line), LineError)]
    assert rejected == []
    running = render_running(editor.root)
    tp = running.index("crypto pki trustpoint DCVPN-cucrl")
    assert running[tp + 1:tp + 7] == [line for line in _lines(text)[1:7]]
    again, errors = parse_text("\n".join(running))
    assert errors == [] and again.same(editor.root)


def test_junos_emulator_accepts_the_ca_profile() -> None:
    text = render_gateway(_compiled(), JUNOS)["config.set"]
    root = etree.Element("configuration")
    assert apply_set_commands(root, text) == []
    assert f"set security pki ca-profile DCVPN-CA revocation-check crl url {URL}" in \
        to_set(root).splitlines()
    assert root.findtext("security/pki/ca-profile/revocation-check/crl/refresh-interval") == "1"


# ---- golden files ----------------------------------------------------------------------------

def _golden_gateways() -> list[str]:
    return [gw.name for _, gw in compile_fabric(load_fabric(FABRIC).fabric).gateways()]


@pytest.mark.parametrize("gateway", _golden_gateways())
def test_render_matches_golden(gateway: str) -> None:
    files = render_gateway(compile_fabric(load_fabric(FABRIC).fabric), gateway)
    folder = GOLDEN / "cu-crl" / gateway
    if UPDATE_GOLDEN:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.iterdir():
            stale.unlink()
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
    expected = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*"))}
    assert files == expected


def test_example_without_the_key_is_unchanged_by_it() -> None:
    """acme-hybrid has no crl_url: its IOS-XE gateways render the golden `crl none`."""
    compiled = compile_fabric(load_fabric(EXAMPLES / "acme-hybrid.yaml").fabric)
    assert compiled.fabric.fabric.auth.crl_url is None
    golden = (GOLDEN / "acme-hybrid" / "fra1-gw1" / "config.cli").read_text(encoding="utf-8")
    assert render_gateway(compiled, "fra1-gw1")["config.cli"] == golden
    assert " revocation-check crl none\n" in golden
