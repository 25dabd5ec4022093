"""The part of the Junos (SRX, junos-es 24.4R1) configuration grammar that the emulator knows.

The table below is data: one statement per line, nesting by two-space indentation. Element
names are the XML names (equal to the YANG node names, checked by tests against the vendor
YANG when it is present). What follows the name says the kind and how the text and `set`
forms spell it:

    name                 container                 `name { ... }` / `name;` when empty
    name (leaf)          container whose leaf `leaf` may be written positionally on one line,
                         e.g. `local-identity { inet 192.0.2.1; }` <inet><identity-ipv4>
    name ~               container printed on one line when it holds one statement
                         (`then accept;`)
    name ^               container printed joined with each child (`family inet { ... }`)
    name *               list keyed by <name>: `name KEY { ... }`
    name *a,b:kw         list with keys a and b; b is introduced by keyword kw in text
    name * @             list whose text form omits the keyword (`interfaces ge-0/0/0 {`)
    name * @kw           list spelled `kw KEY` in text (`from-zone A to-zone B {`)
    name * {}            list printed grouped: `name { KEY1; KEY2 { ... } }`
    name *a,b,c %b = x|y list whose keys b and c are a match type and its value (route
                         filters), stored as the YANG keys <b>x</b><c/>; Junos' own XML
                         writes <x/>, text and set `name A x` (valueless types only: c empty)
    name =               leaf with a value; `= a|b|c` enumeration, `= N..M` integer range,
                         `= !` secret (shown with ## SECRET-DATA)
    name ;               leaf without a value (YANG type empty)
    name []              leaf-list (`name [ a b ];` or one `name a;` each)

A list's key leaves are added as its first children; `* = a|b` constrains a single key, or
the choice key of a `%` list.
Statements outside this table are rejected with `syntax error`, as a device rejects unknown
statements: extend the table when the renderer emits something new.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cache, lru_cache

from lab.emulators.errors import EmulatorError

_SERVICES = ("all|bootp|dhcp|dhcpv6|dns|finger|ftp|ident-reset|http|https|ike|netconf|ping|"
             "rlogin|reverse-telnet|reverse-ssh|rpm|rsh|snmp|snmp-trap|ssh|telnet|traceroute|"
             "xnm-ssl|xnm-clear-text|tftp|lsping|lsselfping|ntp|sip|r2cp|webapi-clear-text|"
             "webapi-ssl|tcp-encap|appqoe|high-availability|any-service")
_PROTOCOLS = ("all|bfd|bgp|dvmrp|igmp|ldp|msdp|ndp|nhrp|ospf|ospf3|pgm|pim|rip|ripng|"
              "router-discovery|rsvp|sap|vrrp")
_IKE_AUTH = ("pre-shared-keys|rsa-signatures|dsa-signatures|ecdsa-signatures-256|"
             "ecdsa-signatures-384|ecdsa-signatures-521|certificates|digital-signature")
_CIPHERS = "des-cbc|3des-cbc|aes-128-cbc|aes-192-cbc|aes-256-cbc|aes-128-gcm"
_IKE_ENC = f"{_CIPHERS}|aes-256-gcm|chacha20-poly1305"
_ESP_ENC = f"{_CIPHERS}|aes-192-gcm|aes-256-gcm|chacha20-poly1305"
_ESP_AUTH = ("hmac-md5-96|hmac-sha1-96|hmac-sha-256-128|hmac-sha-256-96|hmac-sha-384|"
             "hmac-sha-512")
_SETS = "basic|compatible|standard|suiteb-gcm-128|suiteb-gcm-256|prime-128|prime-256"
_DH = "group1|group2|group5|group14|group15|group16|group19|group20|group21|group24"
_IDENTITY = """
  inet (identity-ipv4)
    identity-ipv4 =
  inet6 (identity-ipv6)
    identity-ipv6 =
  hostname (identity-hostname)
    identity-hostname =
  user-at-hostname (identity-user)
    identity-user =
"""
_HOST_INBOUND = f"""
host-inbound-traffic
  system-services * {{}} = {_SERVICES}
    except ;
  protocols * {{}} = {_PROTOCOLS}
    except ;
"""
_BFD = """
bfd-liveness-detection
  version = 0|1|automatic
  minimum-interval = 1..255000
  minimum-receive-interval = 1..255000
  multiplier = 1..255
  session-mode = automatic|single-hop|multihop
  holddown-interval = 0..255000
"""
_BGP_PEER = f"""
description =
local-address =
hold-time = 0..65535
passive ;
peer-as =
local-as (as-number)
  as-number =
  private ;
  no-prepend-global-as ;
import []
export []
family ^
  inet
    unicast
      prefix-limit
        maximum = 1..4294967295
        teardown
          limit-threshold = 1..100
  inet6
    unicast
authentication-key = !
cluster =
multihop
  ttl = 1..255
  no-nexthop-change ;
multipath
  multiple-as ;
log-updown ;
{_BFD}
"""
_POLICY_TERM_BODY = """
from ~
  protocol []
  neighbor []
  prefix-list *
  prefix-list-filter *list_name,choice-ident,choice-value %choice-ident = exact|longer|orlonger
  community []
  interface []
to ~
  neighbor []
  protocol []
then ~
  local-preference (local-preference)
    local-preference = 0..4294967295
  metric (metric)
    metric = 0..4294967295
  next-hop (address)
    self ;
    peer-address ;
    address =
    reject ;
    discard ;
  as-path-prepend =
  next = policy|term
  accept ;
  reject ;
"""


def _indent(block: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line.strip() else line for line in block.splitlines())


SCHEMA_TEXT = f"""
version =
system
  host-name =
  domain-name =
  time-zone =
  root-authentication
    encrypted-password = !
  login
    message =
    user *
      uid = 100..64000
      class =
      authentication
        encrypted-password = !
  services
    ssh
      root-login = allow|deny|deny-password
      protocol-version []
    netconf
      ssh
        port = 1..65535
      rfc-compliant ;
  name-server * {{}}
  ntp
    server * {{}}
  syslog
    host * {{}}
security
  pki
    ca-profile *
      ca-identity =
      revocation-check
        use-crl ;
        disable ;
        crl
          disable
            on-download-failure ;
          url *
          refresh-interval = 0..8784
  ike
    proposal *
      description =
      authentication-method = {_IKE_AUTH}
      dh-group = {_DH}
      authentication-algorithm = md5|sha1|sha-256|sha-384|sha-512
      encryption-algorithm = {_IKE_ENC}
      lifetime-seconds = 180..86400
    policy *
      mode = main|aggressive
      description =
      proposals []
      proposal-set = {_SETS}
      certificate
        local-certificate =
        peer-certificate-type = pkcs7|x509-signature
        trusted-ca
          ca-profile =
          use-all ;
      pre-shared-key
        ascii-text = !
        hexadecimal = !
    gateway *
      ike-policy =
      address []
      dynamic
        hostname =
        inet =
        inet6 =
        user-at-hostname =
        connections-limit = 1..10000
        ike-user-type = group-ike-id|shared-ike-id
      dead-peer-detection
        optimized ;
        probe-idle-tunnel ;
        always-send ;
        interval = 2..60
        threshold = 1..5
      no-nat-traversal ;
      nat-keepalive = 1..300
      local-identity ~
{_indent(_IDENTITY, 6)}
        distinguished-name ;
      remote-identity ~
{_indent(_IDENTITY, 6)}
        distinguished-name
          container =
          wildcard =
      external-interface =
      local-address =
      general-ikeid ;
      version = v1-only|v2-only
      fragmentation
        disable ;
        size = 570..1500
  ipsec
    proposal *
      extended-sequence-number ;
      description =
      protocol = ah|esp
      authentication-algorithm = {_ESP_AUTH}
      encryption-algorithm = {_ESP_ENC}
      lifetime-seconds = 180..86400
      lifetime-kilobytes = 64..4294967294
    policy *
      description =
      perfect-forward-secrecy
        keys = {_DH}
      proposals []
      proposal-set = {_SETS}
    vpn *
      bind-interface =
      df-bit = clear|set|copy
      copy-outer-dscp ;
      vpn-monitor
        optimized ;
        source-interface =
        destination-ip =
      ike
        gateway =
        idle-time = 60..999999
        no-anti-replay ;
        proxy-identity
          local =
          remote =
          service =
        ipsec-policy =
      traffic-selector *
        local-ip =
        remote-ip =
      establish-tunnels = immediately|on-traffic|responder-only|responder-only-no-rekey
  flow
    tcp-mss
      ipsec-vpn
        mss = 64..65535
  policies
    policy *from-zone-name,to-zone-name:to-zone @from-zone
      policy *
        description =
        match
          source-address []
          destination-address []
          application []
        then
          deny
          reject
          permit
          log
            session-init ;
            session-close ;
          count
  zones
    security-zone *
      description =
      tcp-rst ;
      screen =
{_indent(_HOST_INBOUND, 6)}
      interfaces * {{}}
{_indent(_HOST_INBOUND, 8)}
interfaces
  interface * @
    description =
    disable ;
    vlan-tagging ;
    mtu = 256..9216
    unit *
      description =
      disable ;
      vlan-id =
      mtu = 256..9216
      family ^
        inet
          mtu = 256..9192
          no-redirects ;
          address *
            destination =
            primary ;
            preferred ;
        inet6
          mtu = 1280..9192
          address *
            primary ;
            preferred ;
protocols
  bgp
    log-updown ;
    group *
      type = internal|external
{_indent(_BGP_PEER, 6)}
      neighbor *
{_indent(_BGP_PEER, 8)}
  bfd
    no-issu-timer-negotiation ;
routing-options
  static
    route *
      next-hop []
      reject ;
      discard ;
      preference (metric-value)
        metric-value = 0..4294967295
      description =
  router-id =
  autonomous-system (as-number)
    as-number =
    loops = 1..10
    asdot-notation ;
policy-options
  prefix-list *
    prefix-list-item * @
  policy-statement *
{_indent(_POLICY_TERM_BODY, 4)}
    term *
{_indent(_POLICY_TERM_BODY, 6)}
  community *
    invert-match ;
    members []
"""


class Kind(Enum):
    CONTAINER = "container"
    LIST = "list"
    LEAF = "leaf"
    EMPTY = "empty"
    LEAF_LIST = "leaf-list"


class SchemaError(EmulatorError):
    """The schema table itself is malformed (a programming error)."""


@dataclass(frozen=True)
class Constraint:
    values: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None
    secret: bool = False

    def problem(self, value: str) -> str | None:
        """Why value is not allowed, or None."""
        if self.values and value not in self.values:
            return "syntax error"
        if self.low is not None and self.high is not None and (
                not value.isdigit() or not self.low <= int(value) <= self.high):
            return f"Value {value} is not within range ({self.low}..{self.high})"
        return None


@dataclass(frozen=True)
class SchemaNode:
    """One statement of the grammar; see the module docstring for the spelling rules."""

    name: str
    kind: Kind
    order: int = 0
    keys: tuple[str, ...] = ()
    key_keywords: tuple[str | None, ...] = ()
    keyword: str | None = None
    grouped: bool = False
    positional: str | None = None
    single_line: bool = False
    joined: bool = False
    constraint: Constraint = field(default_factory=Constraint)
    children: Mapping[str, "SchemaNode"] = field(default_factory=dict)
    choice: str | None = None  # the key naming a match type (`%` lists); the next key: value

    @property
    def is_leafy(self) -> bool:
        return self.kind in (Kind.LEAF, Kind.EMPTY, Kind.LEAF_LIST)

    @property
    def choice_keys(self) -> tuple[str, str] | None:
        """(match-type key, its value key) of a `%` list."""
        if self.choice is None:
            return None
        return self.choice, self.keys[self.keys.index(self.choice) + 1]

    def child(self, name: str) -> "SchemaNode | None":
        return self.children.get(name)

    def by_keyword(self, word: str) -> "SchemaNode | None":
        """The child written as `word` in text and set commands."""
        for node in self.children.values():
            if node.kind is Kind.LIST:
                if node.keyword == word:
                    return node
            elif node.name == word and node.name not in self.keys:
                return node
        return None

    def implicit_list(self) -> "SchemaNode | None":
        for node in self.children.values():
            if node.kind is Kind.LIST and node.keyword is None:
                return node
        return None


_LINE = re.compile(r"^( *)([a-z0-9][a-z0-9_.-]*)\s*(.*)$")


def parse_schema(text: str) -> SchemaNode:
    """Build the tree of SchemaNodes from the table format above."""
    entries = _entries(text)
    return SchemaNode("configuration", Kind.CONTAINER,
                      children=_build(entries, 0, len(entries), 0))


def _entries(text: str) -> list[tuple[int, str, str]]:
    entries = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        match = _LINE.match(raw)
        if match is None or len(match.group(1)) % 2:
            raise SchemaError(f"bad schema line: {raw!r}")
        entries.append((len(match.group(1)) // 2, match.group(2), match.group(3).strip()))
    return entries


def _build(entries: list[tuple[int, str, str]], start: int, stop: int,
           depth: int) -> dict[str, SchemaNode]:
    nodes: dict[str, SchemaNode] = {}
    i = start
    while i < stop:
        level, name, spec = entries[i]
        if level != depth:
            raise SchemaError(f"unexpected indentation at {name!r}")
        j = i + 1
        while j < stop and entries[j][0] > depth:
            j += 1
        kids = _build(entries, i + 1, j, depth + 1)
        if name in nodes:
            raise SchemaError(f"duplicate statement {name!r}")
        nodes[name] = _node(name, spec, len(nodes), kids)
        i = j
    return nodes


def _constraint(text: str) -> Constraint:
    text = text.strip()
    if not text:
        return Constraint()
    if text == "!":
        return Constraint(secret=True)
    if re.fullmatch(r"\d+\.\.\d+", text):
        low, high = text.split("..")
        return Constraint(low=int(low), high=int(high))
    return Constraint(values=tuple(text.split("|")))


def _node(name: str, spec: str, order: int, kids: dict[str, SchemaNode]) -> SchemaNode:
    leafy = {";": Kind.EMPTY, "[]": Kind.LEAF_LIST}
    head, _, rest = spec.partition(" ")
    if spec.startswith("="):
        return SchemaNode(name, Kind.LEAF, order, constraint=_constraint(spec[1:]))
    if head in leafy:
        return SchemaNode(name, leafy[head], order, constraint=_constraint(rest.lstrip("= ")))
    if head.startswith("*"):
        return _list_node(name, head[1:], rest, order, kids)
    if spec.startswith("(") and spec.endswith(")"):
        return SchemaNode(name, Kind.CONTAINER, order, positional=spec[1:-1],
                          single_line=True, children=kids)
    if spec in ("", "~", "^"):
        return SchemaNode(name, Kind.CONTAINER, order, single_line=spec == "~",
                          joined=spec == "^", children=kids)
    raise SchemaError(f"unknown spec {spec!r} for {name!r}")


def _list_node(name: str, keyspec: str, rest: str, order: int,
               kids: dict[str, SchemaNode]) -> SchemaNode:
    keys: list[str] = []
    key_keywords: list[str | None] = []
    for part in (keyspec or "name").split(","):
        key, _, word = part.partition(":")
        keys.append(key)
        key_keywords.append(word or None)
    keyword: str | None = name
    grouped = False
    choice: str | None = None
    constraint = Constraint()
    tokens = rest.split()
    while tokens:
        token = tokens.pop(0)
        if token.startswith("%") and token[1:] in keys[:-1]:
            choice = token[1:]
        elif token == "@":
            keyword = None
        elif token.startswith("@"):
            keyword = token[1:]
        elif token == "{}":
            grouped = True
        elif token == "=":
            constraint = _constraint(" ".join(tokens))
            tokens = []
        else:
            raise SchemaError(f"unknown list option {token!r} for {name!r}")
    constrained = choice if choice is not None else keys[0] if len(keys) == 1 else None
    key_nodes = {
        key: SchemaNode(key, Kind.LEAF, n,
                        constraint=constraint if key == constrained else Constraint())
        for n, key in enumerate(keys)
    }
    children = key_nodes | {k: replace(v, order=v.order + len(keys)) for k, v in kids.items()}
    return SchemaNode(name, Kind.LIST, order, tuple(keys), tuple(key_keywords), keyword,
                      grouped, children=children, choice=choice)


@cache
def junos_schema() -> SchemaNode:
    return parse_schema(SCHEMA_TEXT)


@cache
def choice_lists() -> tuple[tuple[tuple[str, ...], SchemaNode], ...]:
    """(element path, node) of every `%` list, for the XML spelling conversions."""
    found: list[tuple[tuple[str, ...], SchemaNode]] = []

    def visit(node: SchemaNode, path: tuple[str, ...]) -> None:
        for child in node.children.values():
            here = (*path, child.name)
            if child.choice is not None:
                found.append((here, child))
            visit(child, here)

    visit(junos_schema(), ())
    return tuple(found)


@lru_cache(maxsize=8192)  # paths are schema paths: a few thousand at most
def schema_at(path: tuple[str, ...]) -> SchemaNode | None:
    """The node at a path of element names from <configuration> (keys not included)."""
    node: SchemaNode | None = junos_schema()
    for name in path:
        if node is None:
            return None
        node = node.child(name)
    return node
