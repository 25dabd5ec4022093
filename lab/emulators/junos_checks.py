"""`commit check`: the cross-reference and mandatory-statement checks the device makes at commit.

The YANG of Junos uses plain strings for references, so a schema check passes a gateway that
names an undefined IKE policy; the device refuses it at commit. These tables say which values
must name something defined elsewhere. Messages follow the device's wording where known and
are close paraphrases otherwise.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from lab.emulators.config_tree import Path
from lab.emulators.junos_config import Trail, edit_path, statement_words, trail_words
from lab.emulators.junos_schema import Kind, SchemaNode, junos_schema
from lab.emulators.rpc_errors import RpcErrorInfo
from lab.emulators.xmlutil import Element, children


@dataclass(frozen=True)
class Reference:
    """Values of the leaf at `source` must be keys of the list at `target`."""

    source: Path
    target: Path
    message: str


REFERENCES: tuple[Reference, ...] = (
    Reference(("security", "ike", "gateway", "ike-policy"), ("security", "ike", "policy"),
              "Referenced IKE policy {value} not defined"),
    Reference(("security", "ike", "policy", "proposals"), ("security", "ike", "proposal"),
              "Referenced IKE proposal {value} not defined"),
    Reference(("security", "ipsec", "policy", "proposals"), ("security", "ipsec", "proposal"),
              "Referenced IPSec proposal {value} not defined"),
    Reference(("security", "ipsec", "vpn", "ike", "gateway"), ("security", "ike", "gateway"),
              "Referenced IKE gateway {value} not defined"),
    Reference(("security", "ipsec", "vpn", "ike", "ipsec-policy"),
              ("security", "ipsec", "policy"), "Referenced IPSec policy {value} not defined"),
    Reference(("protocols", "bgp", "group", "import"), ("policy-options", "policy-statement"),
              "Policy error: Policy {value} referenced but not defined"),
    Reference(("protocols", "bgp", "group", "export"), ("policy-options", "policy-statement"),
              "Policy error: Policy {value} referenced but not defined"),
    Reference(("protocols", "bgp", "group", "neighbor", "import"),
              ("policy-options", "policy-statement"),
              "Policy error: Policy {value} referenced but not defined"),
    Reference(("protocols", "bgp", "group", "neighbor", "export"),
              ("policy-options", "policy-statement"),
              "Policy error: Policy {value} referenced but not defined"),
    Reference(("policy-options", "policy-statement", "term", "from", "prefix-list", "name"),
              ("policy-options", "prefix-list"),
              "Policy error: prefix-list {value} referenced but not defined"),
    Reference(("policy-options", "policy-statement", "from", "prefix-list", "name"),
              ("policy-options", "prefix-list"),
              "Policy error: prefix-list {value} referenced but not defined"),
    Reference(("policy-options", "policy-statement", "term", "from", "prefix-list-filter",
               "list_name"), ("policy-options", "prefix-list"),
              "Policy error: prefix-list {value} referenced but not defined"),
    Reference(("policy-options", "policy-statement", "from", "prefix-list-filter",
               "list_name"), ("policy-options", "prefix-list"),
              "Policy error: prefix-list {value} referenced but not defined"),
)

# Logical interfaces (ifd.unit) that must exist under [edit interfaces].
INTERFACE_REFERENCES: tuple[tuple[Path, str], ...] = (
    (("security", "ike", "gateway", "external-interface"),
     "External interface {value} is not configured"),
    (("security", "ipsec", "vpn", "bind-interface"),
     "Bind interface {value} is not configured"),
)


@dataclass(frozen=True)
class Mandatory:
    """Every entry of the list at `owner` needs the statement at relative path `needs`."""

    owner: Path
    needs: tuple[str, ...]
    message: str


MANDATORY: tuple[Mandatory, ...] = (
    Mandatory(("security", "ike", "gateway"), ("ike-policy",),
              "Missing mandatory statement: 'ike-policy'"),
    Mandatory(("security", "ike", "gateway"), ("external-interface",),
              "Missing mandatory statement: 'external-interface'"),
    Mandatory(("security", "ipsec", "vpn"), ("ike", "gateway"),
              "Missing mandatory statement: 'gateway'"),
    Mandatory(("security", "ipsec", "vpn"), ("ike", "ipsec-policy"),
              "Missing mandatory statement: 'ipsec-policy'"),
)


def commit_check(config: Element) -> list[RpcErrorInfo]:
    """Errors the device would report for this candidate (empty when it commits)."""
    found = _index(config)
    errors: list[RpcErrorInfo] = []
    for ref in REFERENCES:
        defined = {key for key, _ in found.get(ref.target, [])}
        for value, trail in found.get(ref.source, []):
            if value not in defined:
                errors.append(_error(ref.message.format(value=value), trail_words(trail),
                                     ref.source[-1]))
    interfaces = _logical_interfaces(config)
    for source, message in INTERFACE_REFERENCES:
        for value, trail in found.get(source, []):
            if _unit_name(value) not in interfaces:
                errors.append(_error(message.format(value=value), trail_words(trail), source[-1]))
    for rule in MANDATORY:
        for element, words in _entries(config, rule.owner):
            if not _has(element, rule.needs):
                errors.append(_error(rule.message, words, rule.needs[-1]))
    errors.extend(_bgp_checks(config))
    return errors


def _error(message: str, words: Sequence[str], bad: str) -> RpcErrorInfo:
    return RpcErrorInfo(message, path=edit_path(list(words)), info=(("bad-element", bad),))


# a value with the statements above it (junos_config.Trail): their [edit ...] words are made
# only for a value an error names
Found = dict[Path, list[tuple[str, Trail]]]


# the paths the checks above read, and every path above them: the walk goes down only these
# (a gateway's prefix-list items, most of a fabric-wide filter, are never visited)
_WANTED = frozenset(path[:depth] for path in (
    *(p for ref in REFERENCES for p in (ref.source, ref.target)),
    *(source for source, _ in INTERFACE_REFERENCES)) for depth in range(1, len(path) + 1))


def _index(config: Element) -> Found:
    """Every list key and leaf value at a path the checks read, by schema path, with the
    [edit ...] words of its owner."""
    found: Found = {}
    _collect(config, junos_schema(), (), None, found)
    return found


def _collect(element: Element, node: SchemaNode, path: Path, trail: Trail,
             found: Found) -> None:
    if node.kind is Kind.LIST:
        key = "" if not node.keys else _text(element, node.keys[0])
        found.setdefault(path, []).append((key, trail))
    for item in children(element):
        child = node.child(str(item.tag))
        if child is None:
            continue
        child_path = (*path, child.name)
        if child_path not in _WANTED:
            continue
        if child.is_leafy:
            found.setdefault(child_path, []).append(((item.text or "").strip(), trail))
        else:
            _collect(item, child, child_path, (trail, item, child), found)


def _entries(config: Element, path: Path) -> list[tuple[Element, list[str]]]:
    level: list[tuple[Element, SchemaNode, list[str]]] = [(config, junos_schema(), [])]
    for name in path:
        following: list[tuple[Element, SchemaNode, list[str]]] = []
        for element, node, words in level:
            child = node.child(name)
            if child is None:
                continue
            for item in children(element):
                if item.tag == name:
                    following.append((item, child, [*words, *statement_words(item, child)]))
        level = following
    return [(element, words) for element, _, words in level]


def _has(element: Element, needs: tuple[str, ...]) -> bool:
    current = [element]
    for name in needs:
        current = [c for e in current for c in children(e) if c.tag == name]
    return bool(current)


def _text(element: Element, name: str) -> str:
    for item in children(element):
        if item.tag == name:
            return (item.text or "").strip()
    return ""


def _unit_name(value: str) -> str:
    return value if "." in value else f"{value}.0"


def _logical_interfaces(config: Element) -> set[str]:
    names = set()
    for interface, _ in _entries(config, ("interfaces", "interface")):
        ifd = _text(interface, "name")
        for unit in children(interface):
            if unit.tag == "unit":
                names.add(f"{ifd}.{_text(unit, 'name')}")
    return names


def _bgp_checks(config: Element) -> list[RpcErrorInfo]:
    errors: list[RpcErrorInfo] = []
    groups = _entries(config, ("protocols", "bgp", "group"))
    if groups and not _entries(config, ("routing-options", "autonomous-system", "as-number")):
        errors.append(RpcErrorInfo("BGP: autonomous-system must be configured",
                                   path=edit_path(["protocols", "bgp"]),
                                   info=(("bad-element", "bgp"),)))
    for group, words in groups:
        external = _text(group, "type") == "external"
        group_as = _text(group, "peer-as")
        for neighbor in children(group):
            if neighbor.tag != "neighbor":
                continue
            if external and not (group_as or _text(neighbor, "peer-as")):
                address = _text(neighbor, "name")
                errors.append(RpcErrorInfo(
                    f"Error in neighbor {address} of group {_text(group, 'name')}:\n"
                    "peer AS number must be configured for an external peer",
                    path=edit_path([*words, "neighbor", address]),
                    info=(("bad-element", "peer-as"),)))
    return errors
