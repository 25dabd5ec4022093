"""Validate a rendered Junos `<configuration>` against the junos-es (SRX) YANG, 24.4R1.

Junos XML over NETCONF carries no namespaces; libyang needs them, so they are added here for
validation only (`with_namespaces`). The Junos YANG refers to configured objects by plain
strings, not leafrefs (an undefined IKE gateway validates), so `dangling_references` checks
the names this project's configurations use.
"""

import xml.etree.ElementTree as ET
from collections.abc import Callable

from lab.yang import ValidationResult, YangUnavailable, cached_context, yang_dir

RELEASE = "24.4R1"
FAMILY = "junos-es"
MODULES = (
    "junos-es-conf-root",
    "junos-es-conf-security",
    "junos-es-conf-interfaces",
    "junos-es-conf-protocols",
    "junos-es-conf-policy-options",
    "junos-es-conf-routing-options",
)
_CONF_NS = f"http://yang.juniper.net/{FAMILY}/conf"
ROOT_NS = f"{_CONF_NS}/root"
# Top-level statement -> namespace of the module that augments it into <configuration>.
NAMESPACES: dict[str, str] = {
    name: f"{_CONF_NS}/{name}"
    for name in ("security", "interfaces", "protocols", "policy-options", "routing-options")
}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _strip(root: ET.Element) -> ET.Element:
    for node in root.iter():
        node.tag = _local(node.tag)
    return root


def plain_document(xml: str) -> ET.Element:
    """The `<configuration>` element, namespaces (if any) removed."""
    root = _strip(ET.fromstring(xml))
    if root.tag != "configuration":
        raise ValueError(f"expected a <configuration> root, got <{root.tag}>")
    return root


def with_namespaces(root: ET.Element) -> str:
    """The document as libyang reads it: each top-level statement in its module's namespace."""
    copy = ET.fromstring(ET.tostring(root))
    copy.tag = f"{{{ROOT_NS}}}configuration"
    for child in copy:
        ns = NAMESPACES.get(child.tag)
        if ns is None:
            raise ValueError(f"<{child.tag}> is not in the loaded junos-es modules")
        for node in child.iter():
            node.tag = f"{{{ns}}}{node.tag}"
    return ET.tostring(copy, encoding="unicode")


def _texts(root: ET.Element, path: str) -> list[str]:
    return [e.text or "" for e in root.iterfind(path)]


def _units(root: ET.Element) -> set[str]:
    return {f"{ifd.findtext('name')}.{unit.findtext('name')}"
            for ifd in root.iterfind("interfaces/interface")
            for unit in ifd.iterfind("unit")}


def _defined(path: str) -> Callable[[ET.Element], set[str]]:
    return lambda root: set(_texts(root, path))


_BGP_GROUP = "protocols/bgp/group"
_POLICIES = _defined("policy-options/policy-statement/name")
# (what, referring leaves, the names that exist). Paths are relative to <configuration>.
REFERENCES: tuple[tuple[str, str, Callable[[ET.Element], set[str]]], ...] = (
    ("ike proposal", "security/ike/policy/proposals", _defined("security/ike/proposal/name")),
    ("ike policy", "security/ike/gateway/ike-policy", _defined("security/ike/policy/name")),
    ("pki ca-profile", "security/ike/policy/certificate/trusted-ca/ca-profile",
     _defined("security/pki/ca-profile/name")),
    ("ike gateway", "security/ipsec/vpn/ike/gateway", _defined("security/ike/gateway/name")),
    ("ipsec policy", "security/ipsec/vpn/ike/ipsec-policy",
     _defined("security/ipsec/policy/name")),
    ("ipsec proposal", "security/ipsec/policy/proposals",
     _defined("security/ipsec/proposal/name")),
    ("bind-interface unit", "security/ipsec/vpn/bind-interface", _units),
    ("prefix-list", "policy-options/policy-statement/term/from/prefix-list/name",
     _defined("policy-options/prefix-list/name")),
    ("prefix-list", "policy-options/policy-statement/term/from/prefix-list-filter/list_name",
     _defined("policy-options/prefix-list/name")),
    ("policy-statement", f"{_BGP_GROUP}/import", _POLICIES),
    ("policy-statement", f"{_BGP_GROUP}/export", _POLICIES),
    ("policy-statement", f"{_BGP_GROUP}/neighbor/import", _POLICIES),
    ("policy-statement", f"{_BGP_GROUP}/neighbor/export", _POLICIES),
)


def dangling_references(root: ET.Element) -> tuple[str, ...]:
    """Names referred to but not defined in the (namespace-free) document.

    A security zone may list an interface the document does not configure (the external
    interface belongs to the device's base configuration); a unit of an interface the
    document does configure must exist.
    """
    errors = []
    for what, source, targets in REFERENCES:
        defined = targets(root)
        for name in _texts(root, source):
            if name not in defined:
                errors.append(f"{what} {name!r} is referred to but not defined")
    units = _units(root)
    configured = set(_texts(root, "interfaces/interface/name"))
    for name in _texts(root, "security/zones/security-zone/interfaces/name"):
        if name.split(".", 1)[0] in configured and name not in units:
            errors.append(f"zone interface {name!r} is referred to but not defined")
    return tuple(errors)


def validate_junos(xml: str) -> ValidationResult:
    """Schema and type checks (libyang, junos-es 24.4R1) of a complete `<configuration>`,
    then the name references the YANG does not enforce (dangling_references)."""
    base = yang_dir()
    if base is None:
        raise YangUnavailable("the vendor YANG folder is absent (set DCVPN_YANG_DIR)")
    try:
        root = plain_document(xml)
        document = with_namespaces(root)
    except (ET.ParseError, ValueError) as exc:
        return ValidationResult((f"not a Junos <configuration> document: {exc}",))
    folder = base / "junos" / RELEASE / FAMILY / "conf"
    ctx = cached_context(("junos", f"{FAMILY}-{RELEASE}"), folder, MODULES)
    result = ctx.validate(document)
    if not result.ok:
        return result
    return ValidationResult(dangling_references(root))
