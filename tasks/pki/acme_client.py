"""Talking to the external ACME CA (RFC 8555) with certbot's `acme` library.

Every request verifies the server's TLS certificate (against `ca_bundle` when set, else the
system store); every wait is bounded (NETWORK_TIMEOUT per request, ORDER_TIMEOUT per order,
HOOK_TIMEOUT per dns-01 hook run). Errors of the library, the server or the network become
one AcmeError naming the directory and what failed; no key, HMAC or JWS reaches a message.
"""

import os
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

import requests
from acme import challenges, client, messages
from acme import errors as acme_errors
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.errors import DeserializationError
from josepy.jwa import ES256, ES384, RS256, JWASignature
from josepy.jwk import JWK, JWKEC, JWKRSA

from tasks.pki.acme_config import AcmeConfig, ca_bundle_path
from tasks.pki.acme_http01 import Http01Responder
from tasks.pki.errors import AcmeError, MissingSecretError, PkiError
from tasks.pki.files import PRIVATE_FILE, write_new
from tasks.pki.keys import Passphrase, PrivateKey, dump_key, generate_key, load_key
from tasks.pki.store import Layout

NETWORK_TIMEOUT = 30
ORDER_TIMEOUT = timedelta(seconds=120)
HOOK_TIMEOUT = 120
ACCOUNT_KEY_TYPE = "ecdsa-p256"
USER_AGENT = "dcvpn"
# RFC 5280 reason codes for revokeCert (RFC 8555 section 7.6)
Solve = Callable[[str, messages.ChallengeBody, JWK], None]
REASON_CODES = {"unspecified": 0, "key-compromise": 1, "affiliation-changed": 3,
                "superseded": 4, "cessation-of-operation": 5}


@contextmanager
def _translated(config: AcmeConfig, what: str) -> Iterator[None]:
    try:
        yield
    except acme_errors.ConflictError:
        raise
    except messages.Error as exc:
        detail = exc.detail or exc.description or exc.typ
        raise AcmeError(f"{config.directory}: {what}: the CA answered {exc.typ}: "
                        f"{detail}") from None
    except acme_errors.ValidationError as exc:
        problems = []
        for authzr in exc.failed_authzrs:
            for challb in authzr.body.challenges:
                if challb.error is not None:
                    problems.append(f"{authzr.body.identifier.value}: "
                                    f"{challb.error.detail or challb.error.typ}")
        raise AcmeError(f"{config.directory}: {what}: validation failed: "
                        + "; ".join(problems)) from None
    except acme_errors.TimeoutError:
        raise AcmeError(f"{config.directory}: {what}: no answer within "
                        f"{int(ORDER_TIMEOUT.total_seconds())} s") from None
    except requests.exceptions.SSLError:
        raise AcmeError(f"{config.directory}: {what}: the server's TLS certificate is not "
                        "trusted (set the ACME CA bundle: pki init --acme-ca-bundle)") from None
    except requests.RequestException as exc:
        raise AcmeError(f"{config.directory}: {what}: {type(exc).__name__}: "
                        "the ACME server cannot be reached") from None
    except (acme_errors.Error, DeserializationError) as exc:
        raise AcmeError(f"{config.directory}: {what}: {type(exc).__name__}: {exc}") from None


def _jwk(key: PrivateKey) -> tuple[JWK, JWASignature]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algs = {"secp256r1": ES256, "secp384r1": ES384}
        alg = algs.get(key.curve.name)
        if alg is None:
            raise PkiError(f"ACME account key curve {key.curve.name} is not supported")
        return JWKEC(key=key), alg
    return JWKRSA(key=key), RS256


def _network(layout: Layout, config: AcmeConfig, jwk: JWK, alg: JWASignature
             ) -> client.ClientNetwork:
    bundle = ca_bundle_path(config, layout)
    # requests takes a CA bundle path where the library's signature says bool (verify=)
    verify = cast(bool, str(bundle)) if bundle is not None else True
    return client.ClientNetwork(jwk, alg=alg, verify_ssl=verify, user_agent=USER_AGENT,
                                timeout=NETWORK_TIMEOUT)


def _directory(config: AcmeConfig, net: client.ClientNetwork) -> messages.Directory:
    with _translated(config, "reading the directory"):
        return client.ClientV2.get_directory(config.directory, net)


def _eab(config: AcmeConfig, jwk: JWK, directory: messages.Directory
         ) -> dict[str, object] | None:
    if config.eab_kid is None or config.eab_hmac_env is None:
        return None
    hmac = os.environ.get(config.eab_hmac_env, "")
    if not hmac:
        raise MissingSecretError(f"External Account Binding: set {config.eab_hmac_env} to the "
                                 "HMAC key the CA gave with the key id")
    try:
        return messages.ExternalAccountBinding.from_data(
            account_public_key=jwk.public_key(), kid=config.eab_kid, hmac_key=hmac,
            directory=directory)
    except (ValueError, TypeError):
        raise PkiError(f"External Account Binding: {config.eab_hmac_env} is not a base64url "
                       "HMAC key") from None


def register(layout: Layout, config: AcmeConfig, passphrase: Passphrase) -> AcmeConfig:
    """Create the account key (if absent) and the account; returns config with its URL."""
    if layout.acme_account_key.exists():
        key = load_key(layout.acme_account_key, passphrase)
    else:
        key = generate_key(ACCOUNT_KEY_TYPE)
        try:
            write_new(layout.acme_account_key, dump_key(key, passphrase), PRIVATE_FILE)
        except FileExistsError:
            raise PkiError(f"{layout.acme_account_key}: appeared meanwhile; run again") from None
    jwk, alg = _jwk(key)
    net = _network(layout, config, jwk, alg)
    directory = _directory(config, net)
    acme = client.ClientV2(directory, net)
    eab = _eab(config, jwk, directory)
    if eab is None and acme.external_account_required():
        raise PkiError(f"{config.directory}: the CA requires External Account Binding: give "
                       "--acme-eab-kid and --acme-eab-hmac-env")
    reg = messages.NewRegistration.from_data(
        email=None, terms_of_service_agreed=True, external_account_binding=eab)
    if config.contact:
        reg = reg.update(contact=config.contact)
    with _translated(config, "registering the account"):
        try:
            regr = acme.new_account(reg)
            url = regr.uri
        except acme_errors.ConflictError as exc:
            url = str(exc)  # the key already has an account: its URL
    if not url:
        raise AcmeError(f"{config.directory}: the CA sent no account URL")
    return config.with_account(url)


@dataclass(frozen=True)
class Ordered:
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    fullchain_pem: bytes = field(repr=False)


class AcmeSession:
    """One logged-in client: orders certificates and revokes them with the account key."""

    def __init__(self, layout: Layout, config: AcmeConfig, passphrase: Passphrase) -> None:
        if config.account_url is None:
            raise PkiError(f"{layout.acme_config}: no ACME account yet (run dcvpn pki init "
                           "--acme-directory again)")
        self.config = config
        self._key, alg = _jwk(load_key(layout.acme_account_key, passphrase))
        self._net = _network(layout, config, self._key, alg)
        self._client = client.ClientV2(_directory(config, self._net), self._net)
        regr = messages.RegistrationResource(uri=config.account_url,
                                             body=messages.Registration())
        with _translated(config, "logging in to the account"):
            self._net.account = self._client.query_registration(regr)

    def order(self, csr_pem: bytes, solver: "ChallengeSolver") -> Ordered:
        config = self.config
        with _translated(config, "ordering a certificate"):
            order = self._client.new_order(csr_pem)
        deadline = datetime.now() + ORDER_TIMEOUT
        with solver.solving() as solve, _translated(config, "validating the order"):
            for authzr in order.authorizations:
                if authzr.body.status == messages.STATUS_VALID:
                    continue  # authorization reused by the CA
                challb = _pick(config, authzr)
                solve(authzr.body.identifier.value, challb, self._key)
                self._client.answer_challenge(challb, challb.response(self._key))
            order = self._client.poll_authorizations(order, deadline)
        with _translated(config, "finalizing the order"):
            order = self._client.finalize_order(order, deadline)
        pem = (order.fullchain_pem or "").encode()
        try:
            certs = x509.load_pem_x509_certificates(pem)
        except ValueError:
            raise AcmeError(f"{config.directory}: the CA sent no readable certificate") from None
        return Ordered(certs[0], tuple(certs[1:]), pem)

    def revoke(self, cert: x509.Certificate, reason: str) -> None:
        with _translated(self.config, "revoking"):
            self._client.revoke(cert, REASON_CODES[reason])


def _pick(config: AcmeConfig, authzr: messages.AuthorizationResource) -> messages.ChallengeBody:
    for challb in authzr.body.challenges:
        if challb.chall.typ == config.challenge:
            return challb
    offered = ", ".join(str(c.chall.typ) for c in authzr.body.challenges
                        if isinstance(c.chall, challenges.Challenge))
    raise AcmeError(f"{config.directory}: the CA offers no {config.challenge} challenge for "
                    f"{authzr.body.identifier.value} (offered: {offered or 'none'})")


class ChallengeSolver:
    """Proves control of identifiers: http-01 through the responder, dns-01 through a hook."""

    def __init__(self, config: AcmeConfig, responder: Http01Responder | None) -> None:
        self.config = config
        self._responder = responder
        self._undo: list[tuple[str, ...]] = []

    @contextmanager
    def solving(self) -> Iterator[Solve]:
        try:
            yield self._solve
        finally:
            undo, self._undo = self._undo, []
            for item in reversed(undo):
                self._withdraw(item)

    def _solve(self, identifier: str, challb: messages.ChallengeBody, key: JWK) -> None:
        chall = challb.chall
        if isinstance(chall, challenges.HTTP01):
            if self._responder is None:
                raise PkiError("http-01 needs the responder (internal error)")
            token = chall.encode("token")
            self._responder.publish(token, chall.validation(key))
            self._undo.append(("http", token))
        elif isinstance(chall, challenges.DNS01):
            name = chall.validation_domain_name(identifier)
            value = chall.validation(key)
            self._hook("add", name, value)
            self._undo.append(("dns", name, value))
        else:
            raise PkiError(f"challenge {chall.typ} is not supported")

    def _withdraw(self, item: Sequence[str]) -> None:
        if item[0] == "http" and self._responder is not None:
            self._responder.withdraw(item[1])
        elif item[0] == "dns":
            with suppress(PkiError):  # best effort: a stale TXT record does no harm
                self._hook("remove", item[1], item[2])

    def _hook(self, action: str, name: str, value: str) -> None:
        hook = self.config.dns_hook or ""
        try:
            done = subprocess.run([hook, action, name, value], capture_output=True, text=True,
                                  timeout=HOOK_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise PkiError(f"dns-01 hook {hook}: no such program") from None
        except PermissionError:
            raise PkiError(f"dns-01 hook {hook}: not executable") from None
        except subprocess.TimeoutExpired:
            raise AcmeError(f"dns-01 hook {hook} {action} {name}: no exit within "
                            f"{HOOK_TIMEOUT} s") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [""])[-1][:200]
            raise AcmeError(f"dns-01 hook {hook} {action} {name}: exit {done.returncode}"
                            + (f": {last}" if last else ""))
