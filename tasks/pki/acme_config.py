"""The ACME issuer of a PKI directory: `<pki>/acme.json`, written by `pki init --acme-directory`.

The file holds where the CA is and how to prove control of the gateways' names, never a
credential: the account key is `<pki>/acme-account.key` (0600, encrypted like every key
when the passphrase variable is set) and the External Account Binding HMAC is read from
the environment variable *named* here, only when the account is registered.
"""

import json
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tasks.pki.errors import CorruptFileError, PkiError
from tasks.pki.files import PRIVATE_FILE, read_bytes, write_atomic
from tasks.pki.store import Layout

CHALLENGES = ("http-01", "dns-01")
DEFAULT_HTTP_LISTEN = "0.0.0.0:80"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VERSION = 1


@dataclass(frozen=True)
class AcmeConfig:
    directory: str  # https URL of the ACME directory (RFC 8555 section 7.1.1)
    ca_bundle: str | None = None  # PEM file trusted for the ACME server's TLS; None: system
    challenge: str = "http-01"
    http_listen: str = DEFAULT_HTTP_LISTEN  # http-01 responder: HOST:PORT[,HOST:PORT...]
    dns_hook: str | None = None  # dns-01: program run as HOOK add|remove NAME VALUE
    eab_kid: str | None = None  # External Account Binding key id (not secret)
    eab_hmac_env: str | None = None  # NAME of the variable holding the EAB HMAC key
    contact: tuple[str, ...] = ()  # mailto: URLs for the account
    account_url: str | None = None  # set once the account is registered

    def __post_init__(self) -> None:
        url = urlsplit(self.directory)
        if url.scheme != "https" or not url.hostname:
            raise PkiError(f"ACME directory must be an https URL, not {self.directory!r}")
        if self.challenge not in CHALLENGES:
            raise PkiError(f"ACME challenge must be one of {', '.join(CHALLENGES)}, "
                           f"not {self.challenge!r}")
        if self.challenge == "dns-01" and not self.dns_hook:
            raise PkiError("the dns-01 challenge needs a hook program (--acme-dns-hook) that "
                           "publishes the TXT records")
        listen_addresses(self.http_listen)
        if (self.eab_kid is None) != (self.eab_hmac_env is None):
            raise PkiError("External Account Binding needs both the key id "
                           "(--acme-eab-kid) and the variable of the HMAC key "
                           "(--acme-eab-hmac-env)")
        if self.eab_hmac_env is not None and not _ENV_NAME.match(self.eab_hmac_env):
            raise PkiError("--acme-eab-hmac-env takes the NAME of an environment variable, "
                           "never the key")

    @property
    def ip_sans(self) -> bool:
        """IP identifiers (RFC 8738) can be validated by http-01 only, never by dns-01."""
        return self.challenge == "http-01"

    def with_account(self, url: str) -> "AcmeConfig":
        return replace(self, account_url=url)

    def as_json(self) -> bytes:
        data: dict[str, Any] = {"version": _VERSION, **asdict(self)}
        data["contact"] = list(self.contact)
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def listen_addresses(text: str) -> list[tuple[str, int]]:
    """`HOST:PORT[,HOST:PORT...]`: one responder socket each (a host may own several IPs)."""
    out = []
    for item in text.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise PkiError(f"http-01 listen address must be HOST:PORT[,HOST:PORT...], "
                           f"not {text!r}")
        out.append((host.strip("[]") or "0.0.0.0", int(port)))
    return out


_FIELDS = {"directory", "ca_bundle", "challenge", "http_listen", "dns_hook", "eab_kid",
           "eab_hmac_env", "contact", "account_url"}


def read_config(layout: Layout) -> AcmeConfig:
    path = layout.acme_config
    data = read_bytes(path, "the ACME settings")
    if data is None:
        raise PkiError(f"{path}: missing; this PKI directory has no ACME issuer")
    try:
        raw = json.loads(data)
    except ValueError:
        raise CorruptFileError(f"{path}: not valid JSON (damaged file?)") from None
    if not isinstance(raw, dict) or raw.get("version") != _VERSION:
        raise CorruptFileError(f"{path}: not a dcvpn ACME settings file (version {_VERSION})")
    unknown = set(raw) - _FIELDS - {"version"}
    if unknown:
        raise CorruptFileError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    fields = {k: v for k, v in raw.items() if k in _FIELDS}
    fields["contact"] = tuple(fields.get("contact") or ())
    try:
        return AcmeConfig(**fields)
    except TypeError:
        raise CorruptFileError(f"{path}: missing the ACME directory URL") from None
    except PkiError as exc:
        raise CorruptFileError(f"{path}: {exc}") from None


def write_config(layout: Layout, config: AcmeConfig) -> None:
    write_atomic(layout.acme_config, config.as_json(), PRIVATE_FILE)


def ca_bundle_path(config: AcmeConfig, layout: Layout) -> Path | None:
    """The TLS trust file for the ACME server; a relative path is relative to the PKI dir."""
    if config.ca_bundle is None:
        return None
    path = Path(config.ca_bundle)
    path = path if path.is_absolute() else layout.root / path
    if not path.is_file():
        raise PkiError(f"{path}: the ACME server's CA bundle (ca_bundle in "
                       f"{layout.acme_config}) is missing")
    return path
