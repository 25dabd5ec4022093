"""strongSwan + FRR renderer: real parsers (vtysh, charon), one-field model changes, selectors."""

import datetime
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Network
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, require_binary
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_factory import fabric, site
from rendered import parsed

from inventory.loader import load_fabric
from inventory.model import DataPlane, Fabric, Platform
from inventory.topology import compile_fabric, ike_identity
from tasks import parse_strongswan
from tasks.errors import RenderError
from tasks.render import render_gateway
from tasks.render_context import SECRET_PREFIX
from tasks.render_strongswan import CHARON_LOG, SECRETS_FILE, VICI_SOCKET

Files = dict[str, str]


def example(name: str) -> Fabric:
    return load_fabric(EXAMPLES / name).fabric


def variant(base: Fabric, changes: dict[str, Any]) -> Fabric:
    """`base` with fabric-level fields changed, e.g. {"crypto.esp.lifetime": "2h"}."""
    data = base.model_dump(mode="json")
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = data["fabric"]
        for key in parents:
            node = node[key]
        node[leaf] = value
    return Fabric.model_validate(data)


def ibgp_hybrid(**spec: Any) -> Fabric:
    """A dual-gateway hub (s1, eu), a regional spoke (s2) and a spoke of a hub-less region."""
    sites = [site(1, gateways=2), site(2), site(3, region="us")]
    settings = {"bgp": {"mode": "ibgp", "asn": 65000}, "data_plane": "libipsec",
                "auth": {"method": "psk"}, **spec}
    return fabric(sites, topology="hybrid", hubs=("s1",), **settings)


def render_all(fab: Fabric) -> dict[str, Files]:
    compiled = compile_fabric(fab)
    return {gw.name: render_gateway(compiled, gw.name) for _, gw in compiled.gateways()
            if gw.platform is Platform.STRONGSWAN}


VARIANTS: dict[str, Callable[[], Fabric]] = {
    "lab3": lambda: example("lab3.yaml"),
    "acme": lambda: example("acme-hybrid.yaml"),
    "ibgp": ibgp_hybrid,
}
CASES = [pytest.param(v, gw, id=f"{v}-{gw}")
         for v, make in VARIANTS.items() for gw in render_all(make())]


def conns(files: Files) -> dict[str, Any]:
    result: dict[str, Any] = parse_strongswan.parse_swanctl(files["swanctl.conf"])["connections"]
    return result


def child(files: Files, name: str) -> dict[str, str]:
    result: dict[str, str] = conns(files)[name]["children"][name]
    return result


def ts(value: str) -> list[IPv4Network]:
    return [IPv4Network(v) for v in value.split(",")]


# --- FRR: every rendered frr.conf is accepted by vtysh -------------------------------------

@pytest.mark.parametrize(("name", "gateway"), CASES)
def test_frr_conf_passes_vtysh_dryrun(name: str, gateway: str, tmp_path: Path) -> None:
    vtysh = require_binary("vtysh")
    path = tmp_path / "frr.conf"
    path.write_text(render_all(VARIANTS[name]())[gateway]["frr.conf"])
    done = subprocess.run([vtysh, "--dryrun", "-f", str(path)], capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (done.stdout + done.stderr).strip() == ""


@pytest.mark.parametrize(("name", "gateway"), CASES)
def test_frr_conf_has_no_exit_lines(name: str, gateway: str) -> None:
    # Daemons read the whole file with -f; an exit they cannot pair leaves config mode.
    text = render_all(VARIANTS[name]())[gateway]["frr.conf"]
    assert not [line for line in text.splitlines() if line.strip() == "exit"]


# --- strongSwan: every swanctl.conf loads into a throwaway charon ---------------------------

NAMESPACES = count()
SWANCTL_SUBDIRS = ("x509", "x509ca", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey",
                   "private", "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12")
BAD_OUTPUT = re.compile(r"error|fail|invalid|unknown|syntax|discarded", re.IGNORECASE)


class Charon:
    """charon-systemd in its own namespace, with a rendered strongswan.conf in `folder`."""

    def __init__(self, folder: Path, strongswan_conf: str) -> None:
        for program in ("ip", "charon-systemd", "swanctl"):
            require_binary(program)
        self.folder = folder
        self.namespace = f"dcvpn-t-{os.getpid()}-{next(NAMESPACES)}"
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True)
        (folder / "strongswan.conf").write_text(strongswan_conf)
        self.env = {**os.environ, "STRONGSWAN_CONF": str(folder / "strongswan.conf")}

    def start(self) -> None:
        subprocess.run(["ip", "netns", "add", self.namespace], check=True, timeout=10)
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace, require_binary("charon-systemd")],
            cwd=self.folder, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not (self.folder / VICI_SOCKET).exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.folder / CHARON_LOG
                pytest.fail("charon did not open its vici socket: "
                            + (log.read_text() if log.exists() else "no log"))
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True,
                       check=False, timeout=10)

    def swanctl(self, swanctl_dir: Path, conf: Path) -> str:
        # The socket comes from the swanctl section of the rendered strongswan.conf.
        done = subprocess.run(["swanctl", "--load-all", "--file", str(conf)], cwd=self.folder,
                              env={**self.env, "SWANCTL_DIR": str(swanctl_dir)},
                              capture_output=True, text=True, timeout=30, check=False)
        return done.stdout + done.stderr


def _pem_cert(name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
              issuer_key: ec.EllipticCurvePrivateKey, ca: bool) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA384()).public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def swanctl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SWANCTL_DIR with a throwaway ECDSA P-384 CA and a certificate for every gateway."""
    folder = tmp_path_factory.mktemp("swanctl")
    for sub in SWANCTL_SUBDIRS:
        (folder / sub).mkdir()
    ca_key = ec.generate_private_key(ec.SECP384R1())
    gw_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dcvpn test CA")])
    (folder / "x509ca" / "ca.pem").write_bytes(_pem_cert("dcvpn test CA", ca_key, ca_name,
                                                         ca_key, ca=True))
    key_file = folder / "private" / "gateway.key"
    key_file.write_bytes(gw_key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    key_file.chmod(0o600)
    for make in VARIANTS.values():
        fab = make()
        for s in fab.sites:
            for gw in s.gateways:
                cert = _pem_cert(ike_identity(fab, gw), gw_key, ca_name, ca_key, ca=False)
                (folder / "x509" / f"{gw.name}.pem").write_bytes(cert)
    return folder


@pytest.fixture(scope="module")
def charons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Files], Charon]]:
    """One charon per data plane, started on first use with that plane's strongswan.conf."""
    if os.geteuid() != 0:
        pytest.skip("a charon in its own network namespace needs root")
    running: dict[str, Charon] = {}

    def get(files: Files) -> Charon:
        conf = files["strongswan.conf"]
        plane = "libipsec" if "kernel-libipsec" in conf else "xfrm"
        if plane not in running:
            charon = Charon(tmp_path_factory.mktemp("charon") / plane, conf)
            running[plane] = charon
            charon.start()
        return running[plane]

    try:
        yield get
    finally:
        for charon in running.values():
            charon.stop()


def _resolve_secrets(text: str) -> str:
    return re.sub(r"\$\{dcvpn-secret:psk/([^}]+)\}", r'"test-psk-\1"', text)


@pytest.mark.lab
@pytest.mark.parametrize(("name", "gateway"), CASES)
def test_swanctl_conf_loads_into_charon(name: str, gateway: str,
                                        charons: Callable[[Files], Charon],
                                        swanctl_dir: Path) -> None:
    files = render_all(VARIANTS[name]())[gateway]
    charon = charons(files)
    # swanctl takes x509/, private/, ... from the folder of the swanctl.conf it loads.
    (swanctl_dir / "swanctl.conf").write_text(files["swanctl.conf"])
    (swanctl_dir / SECRETS_FILE).unlink(missing_ok=True)
    if SECRETS_FILE in files:  # what the deploy step does: references -> secrets
        (swanctl_dir / SECRETS_FILE).write_text(_resolve_secrets(files[SECRETS_FILE]))
    output = charon.swanctl(swanctl_dir, swanctl_dir / "swanctl.conf")
    names = sorted(conns(files))
    assert not [line for line in output.splitlines() if BAD_OUTPUT.search(line)], output
    assert f"successfully loaded {len(names)} connections" in output, output
    for conn in names:
        assert f"loaded connection '{conn}'" in output
        if SECRETS_FILE in files:
            assert f"loaded ike secret 'ike-{conn}'" in output


@pytest.mark.lab
@pytest.mark.parametrize("name", ["lab3", "acme"])
def test_strongswan_conf_paths_and_plugins(name: str, charons: Callable[[Files], Charon]) -> None:
    files = next(iter(render_all(VARIANTS[name]()).values()))
    charon = charons(files)
    assert (charon.folder / VICI_SOCKET).is_socket()
    log = (charon.folder / CHARON_LOG).read_text()
    wanted = re.search(r"^  load = (.+)$", files["strongswan.conf"], re.MULTILINE)
    assert wanted is not None
    assert f"loaded plugins: charon-systemd {wanted.group(1)}" in log


@pytest.mark.lab
def test_libipsec_interfaces_script(charons: Callable[[Files], Charon]) -> None:
    nft = require_binary("nft")
    files = render_all(example("lab3.yaml"))["ams1-gw1"]
    charon = charons(files)  # its charon created ipsec0 and the table-220 rule
    script = charon.folder / "interfaces.sh"
    script.write_text(files["interfaces.sh"])

    def in_ns(*cmd: str) -> str:
        done = subprocess.run(["ip", "netns", "exec", charon.namespace, *cmd],
                              capture_output=True, text=True, timeout=30, check=True)
        return done.stdout

    for _ in range(2):  # idempotent
        in_ns("sh", str(script))
    link = in_ns("ip", "-o", "addr", "show", "dev", "ipsec0")
    assert "169.254.0.0/31" in link and "169.254.0.8/31" in link
    assert "mtu 1400" in in_ns("ip", "link", "show", "ipsec0")
    assert "lookup 220" not in in_ns("ip", "rule")
    assert in_ns("cat", "/proc/sys/net/ipv4/ip_forward").strip() == "1"
    rules = in_ns(nft, "list", "table", "inet", "dcvpn")
    assert rules.count("maxseg size set 1360") == 2


def test_xfrm_interfaces_script_syntax(tmp_path: Path) -> None:
    files = render_all(example("acme-hybrid.yaml"))["ams1-gw1"]
    script = tmp_path / "interfaces.sh"
    script.write_text(files["interfaces.sh"])
    subprocess.run(["sh", "-n", str(script)], check=True, timeout=10)
    text = files["interfaces.sh"]
    assert 'ip link add xfrm10 type xfrm dev "$uplink" if_id 10' in text
    assert "ip addr replace 169.254.0.9/31 dev xfrm10" in text
    assert "ip link set xfrm10 mtu 1446 up" in text
    assert 'oifname "xfrm10" tcp flags syn / syn,rst tcp option maxseg size > 1406' in text


# --- one model field changed -> the rendered change ------------------------------------------

LAB3 = "ams1-gw1"
LAB3_CONN = "ams1-lon1-p0"


def lab3(changes: dict[str, Any] | None = None) -> Files:
    return render_all(variant(example("lab3.yaml"), changes or {}))[LAB3]


def test_esp_lifetime_sets_child_rekey_life_and_jitter() -> None:
    before, after = child(lab3(), LAB3_CONN), child(lab3({"crypto.esp.lifetime": "2h"}), LAB3_CONN)
    assert (before["rekey_time"], before["life_time"], before["rand_time"]) == ("1h", "66m", "6m")
    assert (after["rekey_time"], after["life_time"], after["rand_time"]) == ("2h", "132m", "12m")


def test_ike_lifetime_sets_ike_rekey_and_jitter() -> None:
    conn = conns(lab3({"crypto.ike.lifetime": "4h"}))[LAB3_CONN]
    assert (conn["rekey_time"], conn["rand_time"]) == ("4h", "24m")


@pytest.mark.parametrize(("changes", "ike", "esp"), [
    ({}, "aes256gcm16-prfsha384-ecp384", "aes256gcm16-ecp384"),
    ({"crypto.ike.dh_group": 19}, "aes256gcm16-prfsha384-ecp256", "aes256gcm16-ecp384"),
    ({"crypto.esp.pfs_group": 31}, "aes256gcm16-prfsha384-ecp384", "aes256gcm16-curve25519"),
    ({"crypto.esp.pfs_group": None}, "aes256gcm16-prfsha384-ecp384", "aes256gcm16"),
    ({"crypto.esp.esn": True}, "aes256gcm16-prfsha384-ecp384", "aes256gcm16-ecp384-esn"),
    ({"crypto.profile": "cbc", "crypto.ike.encryption": "aes256", "crypto.ike.integrity": "sha384",
      "crypto.esp.encryption": "aes256", "crypto.esp.integrity": "sha384"},
     "aes256-sha384-prfsha384-ecp384", "aes256-sha384-ecp384"),
])
def test_crypto_fields_become_proposal_tokens(changes: dict[str, Any], ike: str, esp: str) -> None:
    files = lab3(changes)
    assert conns(files)[LAB3_CONN]["proposals"] == ike
    assert child(files, LAB3_CONN)["esp_proposals"] == esp


def test_dpd_fields() -> None:
    files = lab3({"crypto.dpd.interval": "30s", "crypto.dpd.action": "clear"})
    assert conns(files)[LAB3_CONN]["dpd_delay"] == "30s"
    assert child(files, LAB3_CONN)["dpd_action"] == "clear"


ACTIONS = ("start_action", "close_action", "dpd_action")


def _actions(files: Files, conn: str) -> tuple[str, ...]:
    return tuple(child(files, conn)[k] for k in ACTIONS)


@pytest.mark.parametrize(("plane", "initiator"), [
    ("libipsec", ("start", "start", "restart")),
    ("xfrm", ("trap|start", "trap", "restart")),
])
def test_only_the_lower_site_initiates_between_strongswan_gateways(
        plane: str, initiator: tuple[str, ...]) -> None:
    files = render_all(variant(example("lab3.yaml"), {"data_plane": plane}))
    responder = ("none", "none", "clear")
    for tunnel, low, high in (("ams1-lon1-p0", "ams1-gw1", "lon1-gw1"),
                              ("ams1-nyc1-p0", "ams1-gw1", "nyc1-gw1"),
                              ("lon1-nyc1-p0", "lon1-gw1", "nyc1-gw1")):
        assert _actions(files[low], tunnel) == initiator, (tunnel, low)
        assert _actions(files[high], tunnel) == responder, (tunnel, high)


def test_the_initiator_takes_the_model_dpd_action_the_responder_clears() -> None:
    files = render_all(variant(example("lab3.yaml"), {"crypto.dpd.action": "trap",
                                                      "data_plane": "xfrm"}))
    assert child(files["ams1-gw1"], "ams1-lon1-p0")["dpd_action"] == "trap"
    assert child(files["lon1-gw1"], "ams1-lon1-p0")["dpd_action"] == "clear"


def test_every_plane_of_an_ha_pair_has_one_initiator() -> None:
    # a dual-gateway site and a single-gateway site: the single gateway responds on both planes
    files = render_all(fabric([site(1, gateways=2), site(2)], data_plane="libipsec",
                              auth={"method": "psk"}))
    for tunnel, low, high in (("s1-s2-p0", "s1-gw1", "s2-gw1"), ("s1-s2-p1", "s1-gw2", "s2-gw1")):
        assert child(files[low], tunnel)["start_action"] == "start"
        assert child(files[high], tunnel)["start_action"] == "none"


@pytest.mark.parametrize("vendor", ["iosxe", "junos"])
def test_strongswan_always_initiates_towards_a_vendor_peer(vendor: str) -> None:
    # the strongSwan site has the higher id, so the site rule alone would make it respond
    compiled = compile_fabric(fabric([site(1, platform=vendor), site(2)],
                                     data_plane="libipsec", auth={"method": "psk"}))
    files = render_gateway(compiled, "s2-gw1")
    assert _actions(files, "s1-s2-p0") == ("start", "start", "restart")


def test_data_plane_xfrm_vs_libipsec() -> None:
    libipsec, xfrm = lab3(), lab3({"data_plane": "xfrm"})
    narrowed, wide = child(libipsec, LAB3_CONN), child(xfrm, LAB3_CONN)
    assert "if_id_in" not in narrowed
    assert ts(narrowed["local_ts"]) == [IPv4Network("169.254.0.0/32"),
                                        IPv4Network("10.1.0.0/24")]
    assert ts(narrowed["remote_ts"]) == [IPv4Network("169.254.0.1/32"),
                                         IPv4Network("10.2.0.0/24")]
    assert narrowed["start_action"] == "start"
    assert (wide["if_id_in"], wide["if_id_out"]) == ("20", "20")  # peer site 2, plane 0
    assert wide["local_ts"] == wide["remote_ts"] == "0.0.0.0/0"
    assert wide["start_action"] == "trap|start"
    assert "kernel-libipsec" in libipsec["strongswan.conf"]
    assert "kernel-libipsec" not in xfrm["strongswan.conf"]
    assert "routing_table_prio = 32800" in libipsec["strongswan.conf"]
    assert "xfrm20" in xfrm["interfaces.sh"] and "ipsec0" not in xfrm["interfaces.sh"]


def test_psk_auth_renders_references_only() -> None:
    files = lab3({"auth.method": "psk"})
    conf = files["swanctl.conf"]
    assert not re.search(r"^\s*secret\s*=", conf, re.MULTILINE)
    assert "certs =" not in conf
    assert conns(files)[LAB3_CONN]["local"]["auth"] == "psk"
    assert parse_strongswan.parse_swanctl(conf)["secrets"]["include"] == [SECRETS_FILE]
    secrets = parse_strongswan.parse_swanctl(files[SECRETS_FILE])
    assert secrets[f"ike-{LAB3_CONN}"] == {
        "id-1": "ams1-gw1.lab3.dcvpn", "id-2": "lon1-gw1.lab3.dcvpn",
        "secret": f"{SECRET_PREFIX}psk/{LAB3_CONN}}}"}
    values = re.findall(r"secret\s*=\s*(\S+)", files[SECRETS_FILE])
    assert values and all(v.startswith(SECRET_PREFIX) for v in values)
    assert SECRETS_FILE not in lab3()


def test_certificate_auth_names_the_gateway_certificate() -> None:
    local = conns(lab3())[LAB3_CONN]["local"]
    assert local == {"auth": "pubkey", "certs": "ams1-gw1.pem", "id": "ams1-gw1.lab3.dcvpn"}


def test_udp_encap_follows_the_model() -> None:
    assert conns(lab3())[LAB3_CONN]["encap"] == "yes"
    assert "encap" not in conns(lab3({"data_plane": "xfrm"}))[LAB3_CONN]


def test_bgp_fields_in_frr() -> None:
    text = lab3({"bgp.timers": {"keepalive": 5, "hold": 15}, "bgp.max_prefixes": 50,
                 "bgp.bfd": {"interval_ms": 100, "multiplier": 5}})["frr.conf"]
    assert " neighbor 169.254.0.1 timers 5 15\n" in text
    assert "  neighbor 169.254.0.1 maximum-prefix 50\n" in text
    assert "  detect-multiplier 5\n  receive-interval 100\n  transmit-interval 100\n" in text
    assert " neighbor 169.254.0.1 bfd\n" in text


def test_frr_policy_announces_own_and_accepts_fabric() -> None:
    text = lab3()["frr.conf"]
    assert re.findall(r"ip prefix-list DCVPN-OWN seq \d+ permit (\S+)", text) == ["10.1.0.0/24"]
    fabric_list = re.findall(r"ip prefix-list DCVPN-FABRIC seq \d+ permit (\S+)", text)
    assert fabric_list == ["10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24"]
    # inbound: the own prefixes are refused, the rest of the fabric accepted, nothing else
    assert ("route-map DCVPN-IN-LP200 deny 10\n match ip address prefix-list DCVPN-OWN\n!\n"
            "route-map DCVPN-IN-LP200 permit 20\n match ip address prefix-list DCVPN-FABRIC\n"
            " set local-preference 200\n") in text
    assert ("route-map DCVPN-OUT-OWN-MED0 permit 10\n match ip address prefix-list DCVPN-OWN\n"
            " set metric 0\n") in text
    assert "  network 10.1.0.0/24\n" in text
    assert "no bgp default ipv4-unicast" in text


def test_frr_fabric_list_follows_the_sites() -> None:
    fab = example("lab3.yaml")
    data = fab.model_dump(mode="json")
    data["sites"][2]["prefixes"] = ["10.3.0.0/24", "192.168.3.0/24"]
    text = render_all(Fabric.model_validate(data))[LAB3]["frr.conf"]
    assert "ip prefix-list DCVPN-FABRIC seq 40 permit 192.168.3.0/24" in text


def test_plane_preference_and_hub_export() -> None:
    rendered = render_all(ibgp_hybrid())
    spoke = rendered["s3-gw1"]["frr.conf"]
    # plane 0 (to s1-gw1) is preferred over plane 1 (to s1-gw2): local-pref in, MED out
    assert re.findall(r"neighbor 100\.64\.0\.8 route-map (\S+) (in|out)", spoke) == [
        ("DCVPN-IN-LP200", "in"), ("DCVPN-OUT-OWN-MED0", "out")]
    assert re.findall(r"neighbor 100\.64\.0\.10 route-map (\S+) (in|out)", spoke) == [
        ("DCVPN-IN-LP190", "in"), ("DCVPN-OUT-OWN-MED10", "out")]
    assert "set local-preference 190" in spoke and "set metric 10" in spoke
    assert "DCVPN-OUT-FABRIC" not in spoke
    hub = rendered["s1-gw1"]["frr.conf"]  # a hub passes the whole fabric on
    assert "route-map DCVPN-OUT-FABRIC-MED0 permit 10\n match ip address prefix-list " \
           "DCVPN-FABRIC\n" in hub


def test_ibgp_route_reflector_on_hubs_only() -> None:
    rendered = render_all(ibgp_hybrid())
    hub, spoke = rendered["s1-gw1"]["frr.conf"], rendered["s3-gw1"]["frr.conf"]
    for peer in ("100.64.0.1", "100.64.0.9"):  # s2 and s3 are clients of s1-gw1
        assert f"  neighbor {peer} route-reflector-client\n" in hub
        assert f"  neighbor {peer} next-hop-self force\n" in hub
    assert "router bgp 65000" in hub and " remote-as 65000\n" in hub
    assert "route-reflector-client" not in spoke and "next-hop-self" not in spoke
    ebgp = lab3()["frr.conf"]
    assert "route-reflector-client" not in ebgp and "next-hop-self" not in ebgp


def test_libipsec_only_plane_zero_carries_prefixes() -> None:
    rendered = render_all(ibgp_hybrid())
    for conn in conns(rendered["s1-gw2"]):  # every tunnel of the second hub gateway is plane 1
        c = child(rendered["s1-gw2"], conn)
        assert all(n.prefixlen == 32 for n in ts(c["local_ts"]) + ts(c["remote_ts"]))
    assert ts(child(rendered["s3-gw1"], "s1-s3-p1")["remote_ts"]) == [
        IPv4Network("100.64.0.10/32")]


def test_libipsec_transit_goes_through_one_default_tunnel() -> None:
    rendered = render_all(ibgp_hybrid())
    # s3 reaches s2 only through the hub: its plane-0 tunnel to s1 carries 0/0 ...
    spoke = child(rendered["s3-gw1"], "s1-s3-p0")
    assert spoke["remote_ts"] == "0.0.0.0/0"
    assert ts(spoke["local_ts"]) == [IPv4Network("100.64.0.9/32"), IPv4Network("10.0.3.0/24")]
    # ... and the hub offers everything on its side, because IKE narrows its local selector
    # to what the spoke asks for, and libipsec needs a local address inside a narrowed one.
    hub = child(rendered["s1-gw1"], "s1-s3-p0")
    assert hub["local_ts"] == "0.0.0.0/0"
    assert ts(hub["remote_ts"]) == [IPv4Network("100.64.0.9/32"), IPv4Network("10.0.3.0/24")]
    # a full mesh has no transit: every selector is narrowed
    for files in render_all(example("lab3.yaml")).values():
        for conn in conns(files):
            selectors = child(files, conn)
            assert "0.0.0.0/0" not in selectors["local_ts"] + selectors["remote_ts"]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_libipsec_narrowed_remote_selectors_never_overlap(name: str) -> None:
    fab = VARIANTS[name]()
    if fab.fabric.data_plane is not DataPlane.LIBIPSEC:
        fab = variant(fab, {"data_plane": "libipsec"})
    for files in render_all(fab).values():
        remote = [ts(child(files, c)["remote_ts"]) for c in conns(files)]
        default = [nets for nets in remote if IPv4Network("0.0.0.0/0") in nets]
        narrowed = [nets for nets in remote if nets not in default]
        assert len(default) <= 1
        for i, a in enumerate(narrowed):
            for b in narrowed[i + 1:]:
                assert not any(x.overlaps(y) for x in a for y in b)


def test_overlapping_remote_selectors_are_refused() -> None:
    sites = [site(1), site(2), site(3)]
    sites[1]["prefixes"] = ["10.0.0.0/16"]  # contains site 1's 10.0.1.0/24 (a lint error)
    compiled = compile_fabric(fabric(sites, data_plane="libipsec"))
    with pytest.raises(RenderError, match="overlap"):
        render_gateway(compiled, "s3-gw1")


# --- the parser reads both ends of every tunnel back ------------------------------------------

@pytest.mark.parametrize("name", ["lab3", "ibgp"])
def test_parser_sees_both_ends_agree(name: str) -> None:
    fab = VARIANTS[name]()
    compiled = compile_fabric(fab)
    rendered = render_all(fab)
    by_gateway = {gw: parsed("strongswan", files) for gw, files in rendered.items()}
    for tunnel in compiled.tunnels:
        a, b = tunnel.endpoints
        (ta,) = [t for t in by_gateway[a.gateway] if t.peer_public_ip == str(b.public_ip)]
        (tb,) = [t for t in by_gateway[b.gateway] if t.peer_public_ip == str(a.public_ip)]
        assert (ta.local_id, ta.remote_id) == (tb.remote_id, tb.local_id)
        assert ta.ike_proposals & tb.ike_proposals and ta.esp_proposals & tb.esp_proposals
        assert ta.inner_interface.split("/")[0] == tb.bgp_neighbor
        assert tb.inner_interface.split("/")[0] == ta.bgp_neighbor
        assert ta.inner_interface.split("/")[1] == tb.inner_interface.split("/")[1] == "31"
        assert (ta.bgp_local_as, ta.bgp_remote_as) == (tb.bgp_remote_as, tb.bgp_local_as)
    assert sum(len(v) for v in by_gateway.values()) == 2 * len(compiled.tunnels)
