"""Junos configuration grammar of the emulator: text and set parsing, printing, compare, checks."""

from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from lab.emulators.config_tree import edit, subtree_filter
from lab.emulators.errors import ConfigSyntaxError
from lab.emulators.junos_checks import commit_check
from lab.emulators.junos_config import JunosRules, normalize_loaded
from lab.emulators.junos_diff import compare
from lab.emulators.junos_print import to_set, to_text
from lab.emulators.junos_schema import Kind, SchemaNode, junos_schema
from lab.emulators.junos_text import apply_set_commands, parse_text
from lab.emulators.xmlutil import Element, canonical, copy_tree
from lab.yang import yang_dir

VPN_SET = """\
set security ike proposal IKE-PROP authentication-method pre-shared-keys
set security ike proposal IKE-PROP dh-group group20
set security ike proposal IKE-PROP encryption-algorithm aes-256-gcm
set security ike proposal IKE-PROP lifetime-seconds 28800
set security ike policy IKE-POL proposals IKE-PROP
set security ike policy IKE-POL pre-shared-key ascii-text "$9$abc"
set security ike gateway GW address 192.0.2.1
set security ike gateway GW ike-policy IKE-POL
set security ike gateway GW dead-peer-detection probe-idle-tunnel interval 10 threshold 3
set security ike gateway GW local-identity inet 198.51.100.2
set security ike gateway GW external-interface ge-0/0/0.0
set security ike gateway GW version v2-only
set security ipsec proposal IPSEC-PROP protocol esp
set security ipsec proposal IPSEC-PROP encryption-algorithm aes-256-gcm
set security ipsec policy IPSEC-POL perfect-forward-secrecy keys group20
set security ipsec policy IPSEC-POL proposals IPSEC-PROP
set security ipsec vpn VPN bind-interface st0.0
set security ipsec vpn VPN ike gateway GW
set security ipsec vpn VPN ike ipsec-policy IPSEC-POL
set security zones security-zone vpn interfaces st0.0 host-inbound-traffic protocols bgp
set security policies from-zone trust to-zone vpn policy P1 then permit
set interfaces ge-0/0/0 unit 0 family inet address 198.51.100.2/24
set interfaces st0 unit 0 family inet address 169.254.10.2/30
set protocols bgp group VPN type external peer-as 65001
set protocols bgp group VPN neighbor 169.254.10.1 bfd-liveness-detection minimum-interval 300
set policy-options policy-statement EXPORT term 1 then accept
set routing-options autonomous-system 65002 router-id 198.51.100.2
"""


def config_from_set(text: str) -> Element:
    root = etree.Element("configuration")
    assert apply_set_commands(root, text) == []
    return root


def merged(source: Element, *, honor_replace: bool = False,
           into: Element | None = None) -> Element:
    target = into if into is not None else etree.Element("configuration")
    edit(target, source, JunosRules(honor_replace=honor_replace))
    return target


def test_set_commands_build_the_device_xml() -> None:
    config = config_from_set(VPN_SET)
    gateway = config.find("security/ike/gateway")
    assert gateway is not None
    assert gateway.findtext("name") == "GW"
    assert gateway.findtext("local-identity/inet/identity-ipv4") == "198.51.100.2"
    assert gateway.findtext("dead-peer-detection/threshold") == "3"
    assert config.findtext("interfaces/interface[name='st0']/unit/family/inet/address/name") \
        == "169.254.10.2/30"
    policy = config.find("security/policies/policy")
    assert policy is not None
    assert [policy.findtext("from-zone-name"), policy.findtext("to-zone-name")] == \
        ["trust", "vpn"]
    assert config.findtext("routing-options/autonomous-system/as-number") == "65002"
    assert config.findtext("routing-options/router-id") == "198.51.100.2"


def test_text_and_set_forms_round_trip() -> None:
    config = config_from_set(VPN_SET)
    text = to_text(config)
    assert "    local-identity inet 198.51.100.2;\n" in text
    assert "            family inet {\n" in text
    assert "        from-zone trust to-zone vpn {\n" in text
    assert '            ascii-text "$9$abc"; ## SECRET-DATA\n' in text
    assert "    autonomous-system 65002;\n" in text
    assert "        term 1 {\n            then accept;\n" in text
    assert canonical(merged(parse_text(text))) == canonical(config)
    assert canonical(config_from_set(to_set(config))) == canonical(config)


def test_xml_load_is_reordered_like_the_device_shows_it() -> None:
    loaded = normalize_loaded(etree.XML(
        "<configuration><routing-options><router-id>1.1.1.1</router-id></routing-options>"
        "<system><host-name>a</host-name></system></configuration>"))
    assert [c.tag for c in merged(loaded)] == ["system", "routing-options"]


def test_replace_tag_replaces_only_with_load_replace() -> None:
    base = config_from_set("set security ike proposal P dh-group group20\n"
                           "set security ike proposal P lifetime-seconds 3600")
    change = parse_text("security { ike { replace: proposal P { dh-group group21; } } }")
    replaced = merged(change, honor_replace=True, into=copy_tree(base))
    plain = merged(change, into=copy_tree(base))
    assert replaced.findtext("security/ike/proposal/lifetime-seconds") is None
    assert replaced.findtext("security/ike/proposal/dh-group") == "group21"
    assert plain.findtext("security/ike/proposal/lifetime-seconds") == "3600"


def test_delete_tag_and_delete_attribute_remove_statements() -> None:
    base = config_from_set("set system host-name a\nset security ike policy P proposals A\n"
                           "set security ike policy P proposals B")
    merged(parse_text("security { ike { policy P { delete: proposals A; } } }"), into=base)
    assert [e.text for e in base.iter("proposals")] == ["B"]
    xml = normalize_loaded(etree.XML(
        '<configuration><system><host-name delete="delete"/></system></configuration>'))
    merged(xml, into=base)
    assert base.find("system/host-name") is None


def test_set_delete_edit_and_warnings() -> None:
    config = config_from_set(VPN_SET)
    warnings = apply_set_commands(config, """
        edit security ike gateway GW
        delete dead-peer-detection
        set version v1-only
        top
        delete security ipsec vpn NOPE
        delete protocols bgp group VPN neighbor 169.254.10.1
    """)
    assert warnings == ["statement not found"]
    assert config.find("security/ike/gateway/dead-peer-detection") is None
    assert config.findtext("security/ike/gateway/version") == "v1-only"
    assert config.find("protocols/bgp/group/neighbor") is None


@pytest.mark.parametrize(("text", "bad", "message"), [
    ("system { host-nam x; }", "host-nam", "syntax error"),
    ("security { ike { proposal P { dh-group group99; } } }", "group99", "syntax error"),
    ("security { ike { proposal P { lifetime-seconds 60; } } }", "60",
     "Value 60 is not within range (180..86400)"),
    ("system { host-name x; ", None, "syntax error, expecting '}'"),
    ("system { services { ssh } }", "}", "syntax error"),
])
def test_text_syntax_errors_name_the_bad_element(text: str, bad: str | None,
                                                 message: str) -> None:
    with pytest.raises(ConfigSyntaxError) as failure:
        parse_text(text)
    assert failure.value.message == message
    assert failure.value.bad_element == bad


def test_set_syntax_error_reports_line() -> None:
    with pytest.raises(ConfigSyntaxError) as failure:
        apply_set_commands(etree.Element("configuration"),
                           "set system host-name a\nset system bogus 1\n")
    assert (failure.value.bad_element, failure.value.line) == ("bogus", 2)


def test_compare_output_like_show_compare() -> None:
    old = config_from_set(VPN_SET)
    new = copy_tree(old)
    apply_set_commands(new, "set security ike proposal IKE-PROP dh-group group21\n"
                            "set security ike proposal NEW dh-group group20\n"
                            "delete security ike gateway GW dead-peer-detection\n"
                            "set security zones security-zone vpn interfaces st0.1\n"
                            "set system host-name fw1\n")
    assert compare(old, new) == (
        "\n"
        "[edit]\n"
        "+  system {\n"
        "+      host-name fw1;\n"
        "+  }\n"
        "[edit security ike proposal IKE-PROP]\n"
        "-   dh-group group20;\n"
        "+   dh-group group21;\n"
        "[edit security ike]\n"
        "+   proposal NEW {\n"
        "+       dh-group group20;\n"
        "+   }\n"
        "[edit security ike gateway GW]\n"
        "-   dead-peer-detection {\n"
        "-       probe-idle-tunnel;\n"
        "-       interval 10;\n"
        "-       threshold 3;\n"
        "-   }\n"
        "[edit security zones security-zone vpn interfaces]\n"
        "+   st0.1;\n")
    assert compare(old, copy_tree(old)) == "\n"


def test_commit_check_finds_undefined_references_and_missing_statements() -> None:
    assert commit_check(config_from_set(VPN_SET)) == []
    broken = config_from_set(VPN_SET + "set security ipsec vpn VPN2 bind-interface st0.9\n"
                                       "set security ipsec vpn VPN2 ike gateway GW-NOPE\n"
                                       "delete routing-options autonomous-system\n")
    found = {(e.message, e.path) for e in commit_check(broken)}
    assert found == {
        ("Referenced IKE gateway GW-NOPE not defined", "[edit security ipsec vpn VPN2 ike]"),
        ("Bind interface st0.9 is not configured", "[edit security ipsec vpn VPN2]"),
        ("Missing mandatory statement: 'ipsec-policy'", "[edit security ipsec vpn VPN2]"),
        ("BGP: autonomous-system must be configured", "[edit protocols bgp]"),
    }


def test_subtree_filter_selects_by_key() -> None:
    config = config_from_set(VPN_SET)
    selection = etree.XML("<configuration><interfaces><interface><name>st0</name>"
                          "</interface></interfaces></configuration>")
    result = subtree_filter(config, selection)
    assert result is not None
    assert [e.text for e in result.iter("name")] == ["st0", "0", "169.254.10.2/30"]



@pytest.mark.parametrize("selection", [
    "<configuration><interfaces><interface><name>st0</name></interface></interfaces>"
    "</configuration>",
    "<configuration><interfaces/><security><ike/></security></configuration>",
    "<configuration><interfaces><interface><name>nope</name></interface></interfaces>"
    "</configuration>",
    "<configuration><security><ipsec><vpn><name>VPN1</name><ike/></vpn></ipsec></security>"
    "<protocols/></configuration>",
    "<configuration/>",
])
def test_a_subtree_filter_that_takes_from_its_tree_selects_what_a_copying_one_does(
        selection: str) -> None:
    """take=True prunes the (throwaway) tree in place: the same selection, nothing copied."""
    wanted = etree.XML(selection)
    copied = subtree_filter(config_from_set(VPN_SET), wanted)
    throwaway = config_from_set(VPN_SET)
    taken = subtree_filter(throwaway, wanted, take=True)
    if copied is None:
        assert taken is None
        return
    assert taken is throwaway
    assert etree.tostring(taken, method="c14n") == etree.tostring(copied, method="c14n")


# --- the grammar table against Juniper's published YANG ---------------------------------

_SKIP_WITHOUT_YANG = "the vendor YANG folder (DCVPN_YANG_DIR, ../shared/yang) is absent"


def _yang_root() -> Any:
    folder = yang_dir()
    if folder is None:
        pytest.skip(_SKIP_WITHOUT_YANG)
    libyang = pytest.importorskip("libyang", reason="the libyang binding is not installed")
    conf = Path(folder) / "junos" / "24.4R1" / "junos-es" / "conf"
    ctx = libyang.Context(str(conf))
    for name in ("junos-es-conf-root", "junos-es-conf-security", "junos-es-conf-interfaces",
                 "junos-es-conf-protocols", "junos-es-conf-routing-options",
                 "junos-es-conf-policy-options"):
        ctx.load_module(name).feature_enable_all()
    return libyang, next(ctx.get_module("junos-es-conf-root").children())


def _yang_children(libyang: Any, node: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in node.children():
        if item.nodetype() in (libyang.SNode.CHOICE, libyang.SNode.CASE):
            found.update(_yang_children(libyang, item))
        else:
            found[item.name()] = item
    return found


def _mismatches(libyang: Any, node: SchemaNode, yang: Any, path: str) -> list[str]:
    problems = []
    available = _yang_children(libyang, yang)
    for name, child in node.children.items():
        where = f"{path}/{name}"
        item = available.get(name)
        if item is None:
            problems.append(f"{where}: not in the YANG")
            continue
        wrong = _kind_mismatch(libyang, child, item, where)
        problems.extend(wrong)
        if child.kind in (Kind.CONTAINER, Kind.LIST) and not wrong:
            problems.extend(_mismatches(libyang, child, item, where))
    return problems


def _kind_mismatch(libyang: Any, node: SchemaNode, item: Any, where: str) -> list[str]:
    if node.kind is Kind.LIST:
        is_list = isinstance(item, libyang.SList)
        keys = tuple(k.name() for k in item.keys()) if is_list else ()  # noqa: SIM118
        return [] if keys == node.keys else [f"{where}: keys {node.keys} != {keys}"]
    if node.kind is Kind.CONTAINER:
        return [] if isinstance(item, libyang.SContainer) else [f"{where}: not a container"]
    if node.kind is Kind.LEAF_LIST:
        return [] if isinstance(item, libyang.SLeafList) else [f"{where}: not a leaf-list"]
    if not isinstance(item, libyang.SLeaf):
        return [f"{where}: not a leaf"]
    empty = item.type().base() == libyang.Type.EMPTY
    if empty != (node.kind is Kind.EMPTY):
        return [f"{where}: empty-ness differs"]
    if node.constraint.values and item.type().base() == libyang.Type.ENUM:
        allowed = {e.name() for e in item.type().enums()}
        extra = set(node.constraint.values) - allowed
        return [f"{where}: values {sorted(extra)} not in the YANG"] if extra else []
    return []


def test_grammar_table_matches_the_junos_es_yang() -> None:
    libyang, root = _yang_root()
    table = junos_schema()
    # `system` is not among the shared junos-es modules; everything else must match
    checked = SchemaNode(table.name, table.kind, children={
        k: v for k, v in table.children.items() if k != "system"})
    assert _mismatches(libyang, checked, root, "") == []
