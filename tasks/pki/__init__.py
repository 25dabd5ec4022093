"""The fabric PKI: CA, gateway certificates, CRL, expiry monitoring, and per-tunnel PSKs.

The PKI directory lives outside the model (`--pki-dir`, DCVPN_PKI_DIR, default
`${XDG_DATA_HOME:-~/.local/share}/dcvpn/<fabric>/pki`; layout in tasks.pki.store). Private
keys are created 0600 and, when DCVPN_PKI_PASSPHRASE (or the variable named by
--passphrase-env) is set, encrypted with it (PKCS#8, best available encryption).

Make-before-break renewal: `renew` writes the new key and certificate as `<gw>.key/.pem`
and keeps the replaced pair as `<gw>.prev.key/.prev.pem`. Peers trust the CA, not a
particular certificate, so old and new both authenticate until the old one's not-after. The
deploy flow installs the current pair (strongSwan: `delivery.strongswan_files` into the
swanctl folders, then `swanctl --load-creds`; running SAs are untouched, new SAs use the new
certificate); when a deploy rolls back, the driver re-installs the previous pair
(`previous=True`), still valid. Old certificates are not revoked on renew: they expire.

Per platform: strongSwan gets cert, key, CA and CRL files (automatic, by the driver/lab).
IOS-XE and JunOS get PEM texts from `delivery.device_pems` (a renderer embeds the CA and
device certificate in the trustpoint; the key and JunOS certificate loading are operational
steps of the driver).
"""

from tasks.pki.errors import (
    CaExistsError,
    CaMismatchError,
    CorruptFileError,
    MissingSecretError,
    PassphraseError,
    PkiError,
)

__all__ = [
    "CaExistsError",
    "CaMismatchError",
    "CorruptFileError",
    "MissingSecretError",
    "PassphraseError",
    "PkiError",
]
