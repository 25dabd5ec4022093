"""The PKI section a candidate carries after its configuration, for the drivers that load
certificates themselves (drivers.junos_pki, drivers.iosxe_pki): a header line
`<marker>name=value ...`, then each part as `### dcvpn-pki: <name>` followed by its PEM text.
Packed and split here; what the header must name and which parts are needed is each
driver's."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509

from drivers.errors import LoadError
from drivers.redact import hide

SECTION = "### dcvpn-pki: "
MIN_HIDDEN = 16  # PEM lines at least this long are registered with the log filter
KEY_PART = "key.pem"


@dataclass(frozen=True, slots=True)
class PkiSection:
    fields: dict[str, str]  # the header's name=value pairs
    texts: dict[str, str]  # part name -> its text ("" when the section lacks it)


def pack(config: str, header: str, parts: Iterable[tuple[str, str]]) -> str:
    """config, then the header line and each (name, text) part."""
    out = [config if config.endswith("\n") else config + "\n", header + "\n"]
    for name, text in parts:
        ending = "" if not text or text.endswith("\n") else "\n"
        out.append(f"{SECTION}{name}\n{text}{ending}")
    return "".join(out)


def hide_key(key: str) -> None:
    """The key and each of its long lines masked in every guarded log record."""
    hide([key.strip(), *(ln.strip() for ln in key.splitlines() if len(ln.strip()) >= MIN_HIDDEN)])


def split(text: str, marker: str, parts: Sequence[str],
          device: str) -> tuple[str, PkiSection | None]:
    """(the configuration, its PKI section or None); LoadError for a section that is not
    one. The key part is registered with the log filter before anything else reads it."""
    start = text.find("\n" + marker)
    if start < 0:
        return text, None
    config, rest = text[:start + 1], text[start + 1:]
    lines = rest.splitlines(keepends=True)
    fields = dict(item.split("=", 1) for item in lines[0][len(marker):].split() if "=" in item)
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines[1:]:
        if line.startswith(SECTION):
            name = line[len(SECTION):].strip()
            if name not in parts or name in found:
                raise LoadError(f"{device}: PKI section: unexpected part {name!r}")
            current = found[name] = []
        elif current is not None:
            current.append(line)
        elif line.strip():
            raise LoadError(f"{device}: PKI section: text before the first part")
    texts = {n: "".join(found.get(n, [])) for n in parts}
    hide_key(texts.get(KEY_PART, ""))
    return config, PkiSection(fields, texts)


def certificate(pem: str, what: str, device: str) -> x509.Certificate:
    """A PEM certificate of the section; LoadError naming `what` when it is not one."""
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise LoadError(f"{device}: the {what} is not a PEM X.509 certificate") from None
