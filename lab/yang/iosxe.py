"""Validate a rendered IOS-XE NETCONF payload against the Cisco YANG of its release.

The payload is a NETCONF `<config>` whose `<native>` child is the complete intended
configuration, so leafrefs and `must` cross-references (keyring, profiles, transform-set)
resolve within it.
"""

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any, Protocol

from lab.yang import ValidationResult, YangUnavailable, cached_context, yang_dir
from tasks.render_iosxe import RELEASES

NETCONF_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
NATIVE_NS = "http://cisco.com/ns/yang/Cisco-IOS-XE-native"
# Cisco-IOS-XE-features first: the crypto nodes sit behind its if-features. Submodules of
# native (Cisco-IOS-XE-interfaces, -ip, ...) come in through native and cannot be loaded alone.
MODULES = (
    "Cisco-IOS-XE-features",
    "Cisco-IOS-XE-native",
    "Cisco-IOS-XE-crypto",
    "Cisco-IOS-XE-tunnel",
    "Cisco-IOS-XE-bgp",
    "Cisco-IOS-XE-bfd",
    "Cisco-IOS-XE-route-map",
)


def yang_release(version: str) -> str:
    """The YANG folder name for an os_version ("17.15") or a full release ("17.15.1")."""
    if version in RELEASES:
        return RELEASES[version].yang
    if version in {r.yang for r in RELEASES.values()}:
        return version
    known = ", ".join(sorted(RELEASES))
    raise ValueError(f"no IOS-XE YANG for release {version!r}; known: {known}")


def native_document(xml: str) -> str:
    """The `<native>` element of a NETCONF `<config>` payload (or of a bare `<native>`)."""
    root = ET.fromstring(xml)
    if root.tag == f"{{{NATIVE_NS}}}native":
        return xml
    if root.tag != f"{{{NETCONF_NS}}}config":
        raise ValueError(f"expected a NETCONF <config> or <native> root, got {root.tag}")
    natives = root.findall(f"{{{NATIVE_NS}}}native")
    if len(natives) != 1:
        raise ValueError(f"expected one <native> under <config>, found {len(natives)}")
    return ET.tostring(natives[0], encoding="unicode")


_NS = {
    "n": NATIVE_NS,
    "c": "http://cisco.com/ns/yang/Cisco-IOS-XE-crypto",
    "t": "http://cisco.com/ns/yang/Cisco-IOS-XE-tunnel",
    "b": "http://cisco.com/ns/yang/Cisco-IOS-XE-bgp",
    "r": "http://cisco.com/ns/yang/Cisco-IOS-XE-route-map",
}
_BGP_AF_NEIGHBOR = "n:router/b:bgp/b:address-family/b:no-vrf/b:ipv4/b:ipv4-unicast/b:neighbor"
_RM_MATCH = "n:route-map/r:route-map-without-order-seq/r:match/r:ip/r:address"
# Name references that the Cisco YANG leaves as plain strings (no leafref, or a `must` in
# only some releases): (what, referring leaves, target keys), paths relative to <native>.
REFERENCES: tuple[tuple[str, str, str], ...] = (
    ("route-map", f"{_BGP_AF_NEIGHBOR}/b:route-map/b:route-map-name", "n:route-map/n:name"),
    ("prefix-list", f"{_RM_MATCH}/r:prefix-list", "n:ip/n:prefix-lists/n:prefixes/n:name"),
    ("prefix-list", f"{_RM_MATCH}/r:prefix-list-ordered", "n:ip/n:prefix-lists/n:prefixes/n:name"),
    ("ipsec profile",
     "n:interface/n:Tunnel/t:tunnel/t:protection/c:ipsec/c:profile-option/c:name",
     "n:crypto/c:ipsec/c:profile/c:name"),
    ("pki trustpoint", "n:crypto/c:ikev2/c:profile/c:pki/c:trust-points/c:name",
     "n:crypto/c:pki/c:trustpoint/c:id"),
    ("bgp neighbor", f"{_BGP_AF_NEIGHBOR}/b:id", "n:router/b:bgp/b:neighbor/b:id"),
)


class _Searchable(Protocol):
    def iterfind(self, path: str, namespaces: dict[str, str]) -> Iterator[Any]: ...


def dangling_references(native: "str | _Searchable") -> tuple[str, ...]:
    """Names referred to but not defined in the document (its text or its parsed <native>,
    ElementTree's or lxml's), for the references in REFERENCES."""
    root = ET.fromstring(native) if isinstance(native, str) else native
    errors = []
    for what, source, target in REFERENCES:
        defined = {e.text for e in root.iterfind(target, _NS)}
        for ref in root.iterfind(source, _NS):
            if ref.text not in defined:
                errors.append(f"{what} {ref.text!r} is referred to but not defined")
    return tuple(errors)


def validate_iosxe(xml: str, version: str) -> ValidationResult:
    """Schema, type, leafref and `must` checks (libyang) of a complete configuration payload,
    plus the name references the YANG does not enforce (dangling_references)."""
    base = yang_dir()
    if base is None:
        raise YangUnavailable("the vendor YANG folder is absent (set DCVPN_YANG_DIR)")
    release = yang_release(version)
    try:
        document = native_document(xml)
    except (ET.ParseError, ValueError) as exc:
        return ValidationResult((f"not a NETCONF IOS-XE payload: {exc}",))
    ctx = cached_context(("iosxe", release), base / "iosxe" / release, MODULES)
    result = ctx.validate(document)
    if not result.ok:
        return result
    return ValidationResult(dangling_references(document))
