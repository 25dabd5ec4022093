"""The lab's files: rendered configuration and credentials, each recorded before it is written.

Certificates come from a given PKI directory (`dcvpn lab up --pki-dir`, made with `dcvpn pki
init/issue`; read, never changed) or else from a throwaway fabric CA made with tasks.pki in
`<lab dir>/pki`; either way tasks.pki.delivery.strongswan_files puts cert, key, CA and CRL
into the swanctl folders. PSKs come from tasks.pki.psk in `<lab dir>/secrets`, put into
swanctl-secrets.conf with resolve_secrets. Private keys and resolved secrets are written 0600
(created with that mode).
"""

import grp
import os
import pwd
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path

from inventory.topology import CompiledFabric
from lab.errors import LabError
from lab.state import LabState
from tasks.lab_devices import SECRETS_DIR
from tasks.pki.ca import init_ca
from tasks.pki.delivery import DeliveryFile, strongswan_files
from tasks.pki.errors import PkiError
from tasks.pki.issue import issue_certs
from tasks.pki.keys import Passphrase
from tasks.pki.psk import ensure_psks, resolve_secrets
from tasks.pki.store import Layout
from tasks.render import render_gateway
from tasks.render_strongswan import SECRETS_FILE
from tasks.validate_strongswan import LocalGateway

PUBLIC, PRIVATE = 0o644, 0o600
PUBLIC_DIR, PRIVATE_DIR = 0o755, 0o700
FRR_CONF = "frr.conf"
STRONGSWAN_CONF = "strongswan.conf"
SWANCTL_CONF = "swanctl.conf"
BOOTSTRAP_SWANCTL = ("# swanctl.conf of {gw}: added to the lab by `dcvpn lab up --add` without "
                     "connections;\n# `dcvpn deploy --lab` installs the rendered one.\n")
BOOTSTRAP_FRR = ("! frr.conf of {gw}: added to the lab by `dcvpn lab up --add` unconfigured;\n"
                 "! `dcvpn deploy --lab` installs the rendered one.\n"
                 "frr defaults traditional\nhostname {gw}\n")
FRR_OWNER = "frr"
# swanctl --load-all reads each of these folders under SWANCTL_DIR (and complains if missing)
SWANCTL_SUBDIRS = ("x509", "x509ca", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey",
                   "private", "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12")
PRIVATE_SUBDIRS = frozenset({"private", "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12"})


def check_reachable(lab_dir: Path) -> None:
    """FRR drops to user frr: it must be able to walk down to the lab dir."""
    try:
        user = pwd.getpwnam(FRR_OWNER)
        group = grp.getgrnam(FRR_OWNER)
    except KeyError:
        raise LabError(f"there is no user {FRR_OWNER} (is the frr package installed?)") from None
    for path in [lab_dir, *lab_dir.parents]:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue  # up creates it, searchable by all
        searchable = (st.st_mode & stat.S_IXOTH
                      or (st.st_uid == user.pw_uid and st.st_mode & stat.S_IXUSR)
                      or (st.st_gid == group.gr_gid and st.st_mode & stat.S_IXGRP))
        if not searchable:
            raise LabError(f"FRR runs as user {FRR_OWNER} and cannot enter {path} (mode "
                           f"{stat.S_IMODE(st.st_mode):04o}); choose a --lab-dir it can reach")


def make_dir(state: LabState, path: Path, mode: int = PUBLIC_DIR) -> None:
    """Create a directory the lab owns; one that exists already is refused (not ours)."""
    state.add_dir(path)
    try:
        path.mkdir(mode=mode)
    except FileExistsError:
        raise LabError(f"{path} exists already; it was not made by this lab "
                       "(remove it, or use another --lab-dir)") from None
    os.chmod(path, mode)  # mkdir's mode is filtered by the umask


def write_file(state: LabState, path: Path, data: bytes, mode: int = PUBLIC) -> None:
    state.add_file(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)


def replace_file(state: LabState, path: Path, data: bytes, mode: int) -> None:
    """Create or replace `path` in one step, created with its mode (a reader never sees half
    a key, nor a key readable by others)."""
    state.add_file(path)
    tmp = path.with_name(f".{path.name}.new")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def credential_files(pki: Path, gateways: list[str], passphrase: Passphrase
                     ) -> dict[str, tuple[DeliveryFile, ...]]:
    """Every gateway's swanctl files, all read (and checked) before any is written."""
    return {gw: strongswan_files(pki, gw, passphrase) for gw in gateways}


def install_credentials(state: LabState, gw: LocalGateway, files: tuple[DeliveryFile, ...],
                        replace: bool = False) -> None:
    for item in files:
        if replace:
            replace_file(state, gw.folder / item.path, item.content, item.mode)
        else:
            write_file(state, gw.folder / item.path, item.content, item.mode)


def make_pki(state: LabState, lab_dir: Path, compiled: CompiledFabric,
             gateways: list[str]) -> Path:
    pki = lab_dir / "pki"
    state.add_dir(pki)
    fabric = compiled.fabric
    now = datetime.now(UTC)
    try:
        init_ca(Layout(pki), fabric.fabric.name, fabric.fabric.auth.key_type, Passphrase(), now,
                days=30, crl_days=30)
        chosen = [gw for _, gw in compiled.gateways() if gw.name in gateways]
        issue_certs(Layout(pki), fabric, chosen, Passphrase(), now, days=30)
    except PkiError as exc:
        raise LabError(f"lab CA: {exc}") from exc
    return pki


def make_psks(state: LabState, lab_dir: Path, compiled: CompiledFabric) -> Path:
    secrets = lab_dir / SECRETS_DIR
    state.add_dir(secrets)
    ensure_psks(secrets, [t.name for t in compiled.tunnels])
    return secrets


def _resolve(text: str, secrets: Path) -> str:
    """resolve_secrets on every line but comments (the rendered header mentions the
    `${dcvpn-secret:...}` syntax itself, which resolve_secrets would refuse)."""
    return "".join(line if line.lstrip().startswith("#") else resolve_secrets(line, secrets)
                   for line in text.splitlines(keepends=True))


def _folders(state: LabState, gw: LocalGateway) -> None:
    make_dir(state, gw.folder)
    for sub in SWANCTL_SUBDIRS:
        make_dir(state, gw.folder / sub, PRIVATE_DIR if sub in PRIVATE_SUBDIRS else PUBLIC_DIR)
    make_dir(state, gw.vty_dir)
    shutil.chown(gw.vty_dir, FRR_OWNER, FRR_OWNER)


def bootstrap_files(state: LabState, compiled: CompiledFabric, gw: LocalGateway,
                    credentials: tuple[DeliveryFile, ...] | None) -> None:
    """A gateway that `up --add` starts unconfigured, for `dcvpn deploy` to configure: the
    rendered strongswan.conf (how the lab runs charon: plugins, vici socket, log; fixed at
    start), a swanctl.conf without connections, an frr.conf with a hostname only, and its
    credentials (delivering certificates is the PKI's job, not the deploy's)."""
    _folders(state, gw)
    rendered = render_gateway(compiled, gw.name)
    write_file(state, gw.folder / STRONGSWAN_CONF, rendered[STRONGSWAN_CONF].encode())
    write_file(state, gw.folder / SWANCTL_CONF, BOOTSTRAP_SWANCTL.format(gw=gw.name).encode())
    write_file(state, gw.vty_dir / FRR_CONF, BOOTSTRAP_FRR.format(gw=gw.name).encode())
    if credentials is not None:
        install_credentials(state, gw, credentials)


def gateway_files(state: LabState, compiled: CompiledFabric, gw: LocalGateway,
                  credentials: tuple[DeliveryFile, ...] | None, secrets: Path | None) -> None:
    """The gateway's folder: exactly what `dcvpn render` produces, plus credentials."""
    _folders(state, gw)
    for name, text in sorted(render_gateway(compiled, gw.name).items()):
        if name == FRR_CONF:
            write_file(state, gw.vty_dir / name, text.encode())
        elif name == SECRETS_FILE:
            if secrets is None:
                raise LabError(f"{gw.name}: {SECRETS_FILE} rendered but no PSKs were made")
            write_file(state, gw.folder / name, _resolve(text, secrets).encode(), PRIVATE)
        else:
            write_file(state, gw.folder / name, text.encode())
    if credentials is not None:
        install_credentials(state, gw, credentials)
