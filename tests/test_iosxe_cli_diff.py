"""drivers.iosxe_cli_diff: skipping equal top-level statements changes no line of the diff."""

from lxml import etree

from drivers import iosxe_cli_diff
from drivers.iosxe_cli_diff import cli_diff, leaf_lines

NS = "http://cisco.com/ns/yang/Cisco-IOS-XE-native"


def native(body: str) -> etree._Element:
    return etree.fromstring(f'<native xmlns="{NS}">{body}</native>')


def every_leaf(running: etree._Element, candidate: etree._Element) -> tuple[set[str], set[str]]:
    """The lines of the diff computed from every leaf, nothing skipped."""
    before, after = set(leaf_lines(running)), set(leaf_lines(candidate))
    return ({line.show() for line in before - after}, {line.show() for line in after - before})


def test_equal_statements_add_nothing_and_changed_ones_show_as_before() -> None:
    hostname = "<hostname>r1</hostname>"
    tunnel = "<interface><Tunnel><name>20</name><description>dcvpn x</description></Tunnel>" \
             "</interface>"
    running = native(hostname + tunnel + "<ip><domain><name>a.example</name></domain></ip>")
    candidate = native(hostname + tunnel.replace("dcvpn x", "dcvpn y")
                       + "<ip><domain><name>a.example</name></domain></ip>"
                       + "<ip><domain><name>b.example</name></domain></ip>")  # tag twice
    lines = cli_diff(running, candidate).splitlines()
    gone, new = every_leaf(running, candidate)
    assert {line[2:] for line in lines if line.startswith("- ")} == gone
    assert {line[2:] for line in lines if line.startswith("+ ")} == new
    assert "+ interface Tunnel20 / description dcvpn y" in lines
    assert "+ ip domain b.example" in lines  # a first child named like a key: a list entry
    assert not any("hostname" in line for line in lines)
    assert cli_diff(running, running) == ""


def test_list_entries_lined_up_once_are_the_same_lines_in_each_place() -> None:
    """An entry shared by many devices is lined up once a process (iosxe_cli_diff's memo):
    the same entry under another statement still gets that statement's header."""
    entry = "<prefixes><name>DCVPN-FABRIC</name><no>10</no><action>permit</action>" \
            "<ip>10.0.1.0/24</ip></prefixes>"
    first = native(f"<ip><prefix-lists>{entry}</prefix-lists></ip>")
    again = native(f"<ip><prefix-lists>{entry}</prefix-lists></ip>")
    elsewhere = native(f"<ipv6><prefix-lists>{entry}</prefix-lists></ipv6>")
    expected = ["+ ip prefix-lists prefixes DCVPN-FABRIC 10 / action permit",
                "+ ip prefix-lists prefixes DCVPN-FABRIC 10 / ip 10.0.1.0/24"]
    assert cli_diff(native(""), first).splitlines() == expected
    assert cli_diff(native(""), again).splitlines() == expected
    warm = cli_diff(native(""), elsewhere)
    iosxe_cli_diff._ENTRY_LINES.clear()
    iosxe_cli_diff._SHOWN.clear()
    assert warm == cli_diff(native(""), elsewhere)  # as lined up with nothing remembered
    assert warm.startswith("+ ipv6 prefix-lists prefixes DCVPN-FABRIC")


def test_no_secret_is_kept_once_its_diff_is_made() -> None:
    keyring = ("<crypto><ikev2><keyring><name>DCVPN-KR</name><peer><name>p1</name>"
               "<pre-shared-key><key>s3cr3t-psk</key></pre-shared-key></peer></keyring>"
               "</ikev2></crypto>")
    lines = cli_diff(native(""), native(keyring))
    assert "s3cr3t-psk" not in lines and "pre-shared-key <masked>" in lines
    kept = [*iosxe_cli_diff._ENTRY_LINES.values(), *iosxe_cli_diff._SHOWN.items()]
    assert "s3cr3t-psk" not in repr(kept)
