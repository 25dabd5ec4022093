"""Errors of the fabric PKI. Every message names the file (or reference) and what to do."""

from tasks.errors import TaskError


class PkiError(TaskError):
    """Root of every PKI error: bad input or an inconsistent PKI/secrets directory."""


class CaExistsError(PkiError):
    """`init` refuses to overwrite an existing CA."""


class PassphraseError(PkiError):
    """A private key needs a passphrase that is missing, wrong, or not needed."""


class CorruptFileError(PkiError):
    """A file of the PKI directory cannot be parsed, or a key does not belong to its cert."""


class CaMismatchError(PkiError):
    """Certificates, CRL or CA key were not made by the CA in ca.pem."""


class MissingSecretError(PkiError):
    """A `${dcvpn-secret:...}` reference has no file in the secrets directory."""


class AcmeError(PkiError):
    """The external ACME CA could not be reached, or refused a request (transport failure)."""
