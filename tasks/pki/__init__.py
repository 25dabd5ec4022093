"""The fabric PKI: CA, gateway certificates, CRL, expiry monitoring, and per-tunnel PSKs.

The PKI directory lives outside the model (`--pki-dir`, DCVPN_PKI_DIR, default
`${XDG_DATA_HOME:-~/.local/share}/dcvpn/<fabric>/pki`; layout in tasks.pki.store). Private
keys are created 0600 and, when DCVPN_PKI_PASSPHRASE (or the variable named by
--passphrase-env) is set, encrypted with it (PKCS#8, best available encryption).

Make-before-break renewal: `renew` writes the new key and certificate as `<gw>.key/.pem`
and keeps the replaced pair as `<gw>.prev.key/.prev.pem`. Peers trust the CA, not a
particular certificate, so old and new both authenticate until the old one's not-after. The
next `dcvpn deploy --pki-dir D` installs the current pair (with `--lab`, the lab's own PKI is
the default): strongSwan gets cert, key, CA and CRL in the swanctl folders, then `swanctl
--load-all` (tasks.pki.deploy_material, drivers/strongswan_creds.py). The deploy does not force
a re-authentication: running IKE SAs stay up (nothing breaks), new IKE SAs (a restart, a DPD
restart, a reauth_time) authenticate with the new certificate. When a deploy rolls back (health
gate, timer, `dcvpn rollback`), the driver's backup puts the previous files back: the previous
pair, still valid. `dcvpn diff --pki-dir D` shows a renewal as subject/serial/not-after lines
of the certificate and CRL; the key only as `<private key>`. Old certificates are not
revoked on renew: they expire.

The private key is a secret like a PSK: the candidate carries `${dcvpn-secret:pki-key/<gw>}`,
resolved from the PKI directory (DCVPN_PKI_PASSPHRASE decrypts it) only on the way to the
device, and every line of it is scrubbed from diffs, results, errors and logs. On the host it
is 0600; the driver compares it by digest and never reads it back.

Delivery per platform ("deploy": `dcvpn deploy --pki-dir` installs it; "manual": an
operational step dcvpn does not do yet, named in a note on every diff/deploy with a PKI
directory; [U]: vendor behaviour not verified on a device):

| step        | strongSwan             | IOS-XE ssh             | IOS-XE netconf | JunOS       |
|-------------|------------------------|------------------------|----------------|-------------|
| references  | render                 | render (trustpoint)    | render         | render      |
| CA cert     | deploy: x509ca/ca.pem  | deploy: chain (1)      | manual (1)     | deploy (4)  |
| device cert | deploy: x509/<gw>.pem  | deploy: chain (1)      | manual (1)     | deploy (4)  |
| private key | deploy: private/ 0600  | deploy: pki import (2) | manual (2)     | deploy (4)  |
| CRL         | deploy: x509crl/       | not delivered (3)      | not delivered  | deploy (4)  |

The lab installs the same strongSwan files itself (`dcvpn lab up --pki-dir`, `dcvpn lab
reload-creds`, from `delivery.strongswan_files`), byte for byte what a deploy installs, so a
deploy right after `lab up` changes no credential. A deploy without a PKI directory leaves
every installed credential as it is (strongSwan: credential files absent from the candidate are
not touched; IOS-XE ssh: the device's chain stays while its trustpoint is rendered). After a
revocation strongSwan refuses a certificate only when it next authenticates an IKE SA: the lab
terminates the revoked gateway's SAs from the peers' end (lab/creds.py); a deploy installs the
new CRL but does not terminate SAs.

(1) `dcvpn render --pki-dir D` (and a deploy over ssh with one): config.cli gets `crypto pki
certificate chain DCVPN-<fabric>` as the device stores it (DER in hex lines under `certificate
<serial>` and `certificate ca <serial>`), loaded with the rest of config.cli by `configure
replace` (tested against the CLI emulator). config.xml cannot carry it (Cisco-IOS-XE-crypto has
no certificate content: the chain list holds serial and type only in 17.12.1 and is obsolete
in 17.15.1); Cisco-IOS-XE-cli-rpc `config-ios-cli-rpc` (17.15.1 YANG; [U] for 17.12) could
send the chain lines over NETCONF (the emulator serves it, lab/emulators/iosxe.py); not done:
those lines change the running configuration outside the confirmed commit, so a rollback would
not take them back.
(2) IOS-XE ssh: the key never appears in a rendered file; the candidate carries a PKI section
after config.cli (deploy_material.with_device_certificates) and drivers/iosxe_pki.py, when `show
crypto pki certificates` / `show crypto key mypubkey` differ from it, answers `crypto pki import
DCVPN-<fabric> pem terminal password <one-time>` with the CA, the key (traditional PEM,
DES-EDE3-CBC under a fresh random password: drivers/pem_legacy.py) and the certificate, before
the configure replace, so the checkpoint and the revert snapshot already hold the new chain and
a rollback never pairs the old chain with the new key (the key pair is outside the running
configuration: no rollback takes it back). [U] that 17.x accepts an encrypted EC key in this
dialog (verified: RSA keys in that form; IOS-XE exports EC keys in it), and what it does when
the trustpoint already holds a key pair or certificates (the emulator replaces them).
IOS-XE netconf: not done (Cisco-IOS-XE-crypto has no import RPC; cli-rpc would bypass the
confirmed commit).
(3) Without fabric.auth.crl_url the certificates name no CRL distribution point and the
trustpoint's `revocation-check crl none` accepts a peer when no CRL is at hand: IOS-XE
gateways do not refuse a revoked peer (lint DCV253). With it, every issued certificate names
the URL (CRL Distribution Points) and the trustpoint renders `revocation-check crl` with `crl
cache delete-after 60`: IOS-XE fetches the CRL from the peer certificate's distribution point
and refuses the peer when it cannot. The operator publishes crl.pem there after every `pki
revoke` / `pki renew`; dcvpn does not serve it. JunOS also gets `revocation-check crl url`
(refresh every hour) beside the CRL the deploy loads; strongSwan loads the curl plugin, so
charon fetches the CRL itself once the installed one is out of date.
(4) JunOS: the configuration refers to the certificates (ca-profile DCVPN-CA, `ike policy ...
certificate local-certificate <gw>`); the candidate carries a PKI section after the
<configuration> document (CA, certificate, CRL, the key as a reference:
deploy_material.with_device_certificates), which drivers/junos_pki.py diffs against `show
security pki` and loads after the configuration commit: `<file-put>` to /var/tmp (key 0600),
`request security pki ca-certificate load` / `crl load` / `local-certificate load ... key` as
`<command>` RPCs (the junos-es 24.4R1 RPC YANG models no `request security pki` command, only
get-pki-ca-certificate, get-pki-local-certificate and get-pki-crl), then `<file-delete>` of
every uploaded file, the key first. Only what differs is loaded (serial and fingerprint, CRL
number and revoked serials); a renewal clears the old local certificate and loads the new one
under the same certificate-id. A failed load rolls the confirmed commit back. Loaded
certificates are not configuration: a rollback leaves the new pair (valid, same CA) in place.
An ACME chain gets a ca-profile per intermediate (DCVPN-CA-1 the one the root issued, ...,
added to the configuration with the PKI section), each CA loaded into its own profile after
the root, which the IKE policies trust; IOS-XE over ssh imports the issuing intermediate as the
trustpoint's CA (drivers/iosxe_pki.py says what is not installed). [U]: the CA load's
confirmation prompt in a <command> RPC, <file-put> in a NETCONF session, a PKCS#8 key file.
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
