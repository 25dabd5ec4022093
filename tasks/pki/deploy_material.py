"""Certificates in the deploy flow: the PKI directory a diff or deploy uses, the strongSwan
candidate's credential files, and the private key resolved only on the way to the device.

Which PKI directory: `--pki-dir` (DCVPN_PKI_DIR); else, for `--lab` and a certificate
fabric, the lab's own (`lab up --pki-dir`, or the throwaway CA in `<lab dir>/pki`, as
tasks.lab_records reads it); else none, and certificates are not part of the candidate (the
devices keep what they have). The lab's PKI covers only the gateways the lab runs for real
(strongSwan): a gateway it has no certificate for gets none (an emulated one keeps what it
has); a `--pki-dir` must cover every selected gateway (checked before any device).

JunOS gateways get a PKI section appended to their candidate (with_device_certificates;
drivers/junos_pki.py loads it after the commit), IOS-XE gateways over SSH one that
drivers/iosxe_pki.py imports (`crypto pki import ... pem terminal`) before the configure
replace. The key is a secret like a PSK: the
candidate holds `${dcvpn-secret:pki-key/<gateway>}` and tasks/deploy.py resolves it right
before the driver gets the text, registering the key PEM and each of its base64 lines with the
log filter and the scrubber, so no diff, report, log or error message can show it.
"""

from dataclasses import dataclass
from pathlib import Path

from drivers.iosxe_pki import IosxePki, trustpoint_of
from drivers.iosxe_pki import pack_candidate as pack_iosxe
from drivers.junos_pki import PkiBundle, chain_profiles, pack_candidate, with_chain_profiles
from drivers.strongswan_creds import CA_FILE, CERT_FILE, CRL_FILE, KEY_FILE
from inventory.model import Platform, Transport
from inventory.topology import CompiledFabric
from tasks.lab_records import LabRecordsError, read_lab_records
from tasks.pki.delivery import device_pems, issuing_ca, load_material, ordered_chain
from tasks.pki.errors import PkiError
from tasks.pki.keys import Passphrase
from tasks.pki.store import Layout
from tasks.render_context import SECRET_PREFIX, secret_ref
from tasks.render_junos import CA_PROFILE

KEY_KIND = "pki-key"
KEY_REF_PREFIX = f"{SECRET_PREFIX}{KEY_KIND}/"
MIN_SCRUBBED_LINE = 16  # shorter PEM lines (a base64 tail) carry too little to matter


@dataclass(frozen=True)
class PkiChoice:
    path: Path | None
    source: str  # "--pki-dir", "lab", or "" (none)

    @property
    def strict(self) -> bool:
        """Every selected gateway must have its material (a given --pki-dir)."""
        return self.source != "lab"


def uses_certificates(compiled: CompiledFabric) -> bool:
    return compiled.fabric.fabric.auth.method == "certificate"


def choose_pki_dir(compiled: CompiledFabric, given: str | None,
                   lab_dir: Path | None) -> PkiChoice:
    """The PKI directory of a diff/deploy (see the module doc); None for a PSK fabric."""
    if not uses_certificates(compiled):
        return PkiChoice(None, "")
    if given:
        return PkiChoice(Path(given), "--pki-dir")
    if lab_dir is None:
        return PkiChoice(None, "")
    try:
        records = read_lab_records(lab_dir)
    except LabRecordsError as exc:
        raise PkiError(str(exc)) from None
    if records is None or records.pki_dir is None:
        return PkiChoice(None, "")
    return PkiChoice(records.pki_dir, "lab")


# what a deploy with a PKI directory does NOT install, per platform and transport (said as a
# note on every diff/deploy that selects such a gateway; tasks/pki/__init__.py has the steps)
NOT_INSTALLED: dict[tuple[Platform, Transport], str] = {
    (Platform.IOSXE, Transport.NETCONF): "certificates and private key are not installed "
    "over NETCONF (the chain has no content in Cisco-IOS-XE-crypto): import them on the "
    "device, or deploy over ssh",
}
# platforms whose driver loads certificates and key itself from a PKI section appended to the
# candidate (JunOS: drivers.junos_pki, after the configuration commit; IOS-XE over SSH:
# drivers.iosxe_pki, `crypto pki import` before the configure replace)
LOADED_BY_DRIVER: frozenset[tuple[Platform, Transport]] = frozenset({
    (Platform.JUNOS, Transport.NETCONF),
    (Platform.IOSXE, Transport.SSH),
})
# the platforms whose key a PKI-directory check must decrypt before any device is touched
KEY_DELIVERED: frozenset[tuple[Platform, Transport]] = frozenset({
    *((Platform.STRONGSWAN, transport) for transport in Transport),
    *LOADED_BY_DRIVER,
})


def not_installed(compiled: CompiledFabric, gateways: list[str],
                  pki_dir: Path | None = None) -> list[str]:
    """One line per selected gateway (that the PKI covers, if given) whose certificate
    material dcvpn does not install."""
    out = []
    for _, gw in compiled.gateways():
        why = NOT_INSTALLED.get((gw.platform, gw.transport))
        if gw.name in gateways and why and (pki_dir is None or covers(pki_dir, gw.name)):
            out.append(f"{gw.name}: {why}")
    return out


def covers(pki_dir: Path, gateway: str) -> bool:
    return Layout(pki_dir).cert(gateway).exists()


def check_pki_dir(compiled: CompiledFabric, pki_dir: Path, gateways: list[str],
                  passphrase: Passphrase | None = None, strict: bool = True) -> None:
    """Every selected gateway (not strict: every one the PKI has a certificate for) has its
    material, and a strongSwan key that decrypts, before any device is touched; PkiError
    naming the file otherwise."""
    platforms = {gw.name: (gw.platform, gw.transport) for _, gw in compiled.gateways()}
    for name in gateways:
        if not strict and not covers(pki_dir, name):
            continue
        if platforms.get(name) in KEY_DELIVERED:
            load_material(pki_dir, name, passphrase or Passphrase.from_env())
        else:
            device_pems(pki_dir, name)


def key_ref(gateway: str) -> str:
    return secret_ref(KEY_KIND, gateway)


def strongswan_credentials(pki_dir: Path, gateway: str,
                           passphrase: Passphrase | None = None) -> dict[str, str]:
    """Bundle name -> text of a strongSwan gateway's credentials (the key as a reference)."""
    material = load_material(pki_dir, gateway, passphrase or Passphrase.from_env())
    return {CERT_FILE: material.cert_pem.decode(), CA_FILE: material.ca_pem.decode(),
            CRL_FILE: material.crl_pem.decode(), KEY_FILE: key_ref(gateway)}


def with_device_certificates(key: tuple[Platform, Transport], config: str,
                             pki_dir: Path | None, gateway: str) -> str:
    """The candidate of a LOADED_BY_DRIVER gateway with its PKI section (CA, certificate, CRL
    and the key as a reference, resolved like a PSK); any other candidate as it is.

    An ACME chain's intermediates: JunOS gets a ca-profile per intermediate (added to the
    configuration, drivers.junos_pki.with_chain_profiles) and loads each CA into its own;
    IOS-XE gets them as drivers.iosxe_pki describes."""
    if pki_dir is None or key not in LOADED_BY_DRIVER:
        return config
    pems = device_pems(pki_dir, gateway)
    if key[0] is Platform.IOSXE:
        trustpoint = trustpoint_of(config)
        if trustpoint is None:
            return config
        try:
            ca = issuing_ca(pems)
        except PkiError as exc:
            raise PkiError(f"{Layout(pki_dir).chain(gateway)}: {exc}") from None
        return pack_iosxe(config, IosxePki(trustpoint, ca, pems.cert, key_ref(gateway)))
    try:
        chain = ordered_chain(pems)
        profiles = chain_profiles(CA_PROFILE, len(chain))
        config = with_chain_profiles(config, profiles)
    except (PkiError, ValueError) as exc:
        raise PkiError(f"{Layout(pki_dir).chain(gateway)}: {exc}") from None
    return pack_candidate(config, PkiBundle(CA_PROFILE, gateway, pems.ca, pems.cert,
                                            key_ref(gateway), pems.crl,
                                            tuple(zip(profiles, chain, strict=True))))


def key_refs(text: str) -> list[str]:
    """The gateways whose key `text` refers to."""
    found = []
    start = text.find(KEY_REF_PREFIX)
    while start >= 0:
        end = text.find("}", start)
        if end < 0:
            break
        found.append(text[start + len(KEY_REF_PREFIX):end])
        start = text.find(KEY_REF_PREFIX, end)
    return sorted(set(found))


def secret_pieces(pem: str) -> list[str]:
    """What must never show: the whole PEM and every long base64 line of it."""
    lines = [ln.strip() for ln in pem.splitlines()
             if len(ln.strip()) >= MIN_SCRUBBED_LINE and not ln.startswith("-----")]
    return [pem.strip(), *lines]


def resolve_keys(text: str, pki_dir: Path | None,
                 passphrase: Passphrase | None = None) -> tuple[str, list[str]]:
    """`text` with every key reference replaced by the key PEM, and the pieces to scrub."""
    names = key_refs(text)
    if not names:
        return text, []
    if pki_dir is None:
        raise PkiError(f"{', '.join(names)}: the candidate needs a private key but no PKI "
                       "directory was given (--pki-dir)")
    pieces: list[str] = []
    for name in names:
        pem = load_material(pki_dir, name, passphrase or Passphrase.from_env()).key_pem.decode()
        text = text.replace(key_ref(name), pem.rstrip("\n"))
        pieces += secret_pieces(pem)
    return text, pieces
