"""config_tree.fresh_copy and edit: the copy a load takes in, in the schema's sibling order,
and a merge of new statements (copied whole when a copy is what the merge would build)."""

from lxml import etree

from lab.emulators.config_tree import Op, edit, fresh_copy
from lab.emulators.junos_config import JunosRules

PROPOSAL = "<proposal><name>P</name>{fields}</proposal>"
IN_ORDER = ("<authentication-method>pre-shared-keys</authentication-method>"
            "<dh-group>group20</dh-group><lifetime-seconds>28800</lifetime-seconds>")
OUT_OF_ORDER = ("<lifetime-seconds>28800</lifetime-seconds><dh-group>group20</dh-group>"
                "<authentication-method>pre-shared-keys</authentication-method>")


def _security(fields: str, attribute: str = "") -> etree._Element:
    return etree.fromstring(f"<security{attribute}><ike>{PROPOSAL.format(fields=fields)}</ike>"
                            "</security>")


def _names(copy: etree._Element) -> list[str]:
    return [str(e.tag) for e in next(copy.iter("proposal"))]


def test_siblings_out_of_schema_order_are_put_in_it() -> None:
    copy = fresh_copy(_security(OUT_OF_ORDER), ("security",), JunosRules())
    assert _names(copy) == ["name", "authentication-method", "dh-group", "lifetime-seconds"]


def test_a_copy_in_order_is_equal_and_independent_of_its_source() -> None:
    source = _security(IN_ORDER, ' replace="replace"')
    copy = fresh_copy(source, ("security",), JunosRules(honor_replace=True))
    assert not copy.attrib  # operation attributes are not copied
    source.attrib.clear()
    assert etree.tostring(copy) == etree.tostring(source)
    next(copy.iter("name")).text = "Q"  # a copy: the source keeps its own nodes
    assert next(source.iter("name")).text == "P"


def _merged(source: str) -> str:
    target = etree.Element("configuration")
    assert edit(target, etree.fromstring(f"<configuration>{source}</configuration>"),
                JunosRules(), (), Op.MERGE) == []
    return etree.tostring(target).decode()


def test_a_new_subtree_is_merged_as_a_copy_of_itself() -> None:
    new = f"<security><ike>{PROPOSAL.format(fields=IN_ORDER)}</ike></security>"
    assert _merged(new) == f"<configuration>{new}</configuration>"


def test_a_new_subtree_that_a_merge_changes_is_merged_not_copied() -> None:
    """Twice the same list entry folds into one; a key after other statements moves first."""
    twice = PROPOSAL.format(fields=IN_ORDER) * 2
    assert _merged(f"<security><ike>{twice}</ike></security>").count("<proposal>") == 1
    late_key = ("<security><ike><proposal><dh-group>group20</dh-group><name>P</name>"
                "</proposal></ike></security>")
    assert "<proposal><name>P</name><dh-group>" in _merged(late_key)
