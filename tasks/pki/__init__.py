"""The fabric PKI: CA, gateway certificates, CRL, expiry monitoring, and per-tunnel PSKs.

The PKI directory lives outside the model (`--pki-dir`, DCVPN_PKI_DIR, default
`${XDG_DATA_HOME:-~/.local/share}/dcvpn/<fabric>/pki`; layout in tasks.pki.store). Private
keys are created 0600 and, when DCVPN_PKI_PASSPHRASE (or the variable named by
--passphrase-env) is set, encrypted with it (PKCS#8, best available encryption).

Make-before-break renewal: `renew` writes the new key and certificate as `<gw>.key/.pem`
and keeps the replaced pair as `<gw>.prev.key/.prev.pem`. Peers trust the CA, not a
particular certificate, so old and new both authenticate until the old one's not-after. The
deploy flow installs the current pair (strongSwan: `delivery.strongswan_files` into the
swanctl folders, then `swanctl --load-creds --clear`, as `dcvpn lab reload-creds` does;
running SAs are untouched, new SAs use the new certificate); when a deploy rolls back, the
driver re-installs the previous pair (`previous=True`), still valid. Old certificates are not
revoked on renew: they expire.

Delivery per platform ("auto": done by dcvpn today; "deploy": an operational step of the
deploy driver, documented here, never rendered; [U]: vendor behaviour not verified on a
device):

| step        | strongSwan              | IOS-XE                       | JunOS (SRX)            |
|-------------|-------------------------|------------------------------|------------------------|
| references  | auto: render            | auto: render (trustpoint)    | auto: render           |
| CA cert     | auto: x509ca/ca.pem     | auto: config.cli chain (1)   | deploy: (4)            |
| device cert | auto: x509/<gw>.pem     | auto: config.cli chain (1)   | deploy: (4)            |
| private key | auto: private/, 0600    | deploy: crypto pki import (2)| deploy: (4)            |
| CRL         | auto: x509crl/, reload  | not delivered (3)            | deploy: (4)            |

"auto" for strongSwan means the lab (`dcvpn lab up --pki-dir`, `dcvpn lab reload-creds`,
from `delivery.strongswan_files`); a strongSwan deploy driver installs the same files. After
a revocation strongSwan refuses a certificate only when it next authenticates an IKE SA:
the lab terminates the revoked gateway's SAs from the peers' end (lab/creds.py), a deploy
would do the same (or wait for reauthentication).

(1) `dcvpn render --pki-dir D`: config.cli gets `crypto pki certificate chain DCVPN-<fabric>`
as the device stores it (DER in hex lines under `certificate <serial>` and `certificate ca
<serial>`). config.xml cannot carry it (Cisco-IOS-XE-crypto has no certificate content: the
chain list holds serial and type only in 17.12.1 and is obsolete in 17.15.1), so over NETCONF
the driver sends the chain lines through Cisco-IOS-XE-cli-rpc `config-ios-cli-rpc` (in the
17.15.1 YANG; [U] for 17.12).
(2) The key never appears in a rendered file: the CLI driver exports it from
`delivery.load_material` as a PEM encrypted with a one-time password and answers `crypto pki
import DCVPN-<fabric> pem terminal password <one-time>` with the CA, key and certificate
PEMs ([U] which PEM encryptions 17.x accepts). The import names the key pair after the
trustpoint, as the rendered `eckeypair`/`rsakeypair DCVPN-<fabric>` expects.
(3) The fabric CA publishes no CRL distribution point, and the trustpoint's `revocation-check
crl none` accepts a peer when no CRL is at hand: IOS-XE gateways do not refuse a revoked
peer (strongSwan and JunOS gateways, which hold the CRL, do). A known gap.
(4) JunOS: the configuration only refers to the certificates (ca-profile DCVPN-CA,
`ike policy ... certificate local-certificate <gw>`). The deploy copies ca.pem, crl.pem,
<gw>.pem and <gw>.key to /var/tmp (scp), runs `request security pki ca-certificate load
ca-profile DCVPN-CA filename ca.pem`, `request security pki local-certificate load
certificate-id <gw> filename <gw>.pem key <gw>.key` and `request security pki crl load
ca-profile DCVPN-CA filename crl.pem` as CLI over NETCONF (`<command>` RPC: the published
junos-es 24.4R1 RPC YANG models no `request security pki` command, only the checks
get-pki-ca-certificate, get-pki-local-certificate and get-pki-crl) and deletes the key file.
"""

from tasks.pki.errors import (
    AcmeError,
    CaExistsError,
    CaMismatchError,
    CorruptFileError,
    MissingSecretError,
    PassphraseError,
    PkiError,
)

__all__ = [
    "AcmeError",
    "CaExistsError",
    "CaMismatchError",
    "CorruptFileError",
    "MissingSecretError",
    "PassphraseError",
    "PkiError",
]
