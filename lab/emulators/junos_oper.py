"""Junos operational RPC answers: commit history, uptime, version (SAs and BGP summary are
in junos_oper_state)."""

import time
from collections.abc import Sequence

from lxml import etree

from lab.emulators.datastore import CommitRecord, DeviceClock
from lab.emulators.xmlutil import Element, child, text_of

VERSION = "24.4R1"
JUNOS_NS = f"http://xml.juniper.net/junos/{VERSION}/junos"

# what `show version` reports; the host name comes from the committed configuration
FACTS = {"product-model": "vsrx", "product-name": "vsrx", "junos-version": VERSION}


def junos_attr(name: str) -> str:
    return f"{{{JUNOS_NS}}}{name}"


def utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def sub(parent: Element, name: str, text: str | None = None) -> Element:
    element = etree.SubElement(parent, name)
    if text is not None:
        element.text = text
    return element


def date_time(parent: Element, name: str, seconds: float) -> Element:
    element = sub(parent, name, utc(seconds))
    element.set(junos_attr("seconds"), str(int(seconds)))
    return element


def duration(seconds: float) -> str:
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    days_text = f"{days} day{'s' if days != 1 else ''}, " if days else ""
    return f"{days_text}{hours}:{minutes:02d}"


def _length(parent: Element, name: str, seconds: float) -> None:
    element = sub(parent, name, duration(seconds))
    element.set(junos_attr("seconds"), str(int(seconds)))


def commit_revision(last: CommitRecord) -> Element:
    """`show system commit revision detail` for the newest commit."""
    info = etree.Element("commit-revision-information")
    date_time(info, "date-time", last.seconds)
    sub(info, "revision", last.revision)
    sub(info, "user", last.user)
    sub(info, "client", last.client)
    if last.comment:
        sub(info, "comment", last.comment)
    if last.log:
        sub(info, "log", last.log)
    return info


def commit_information(history: Sequence[CommitRecord]) -> Element:
    """`show system commit`: every kept commit, newest (rollback 0) first."""
    info = etree.Element("commit-information")
    for number, record in enumerate(history):
        entry = sub(info, "commit-history")
        sub(entry, "sequence-number", str(number))
        sub(entry, "user", record.user)
        sub(entry, "client", record.client)
        date_time(entry, "date-time", record.seconds)
        if record.comment:
            sub(entry, "comment", record.comment)
        if record.log:
            sub(entry, "log", record.log)
    return info


def uptime(clock: DeviceClock, last: CommitRecord, users: int) -> Element:
    now = clock.now()
    info = etree.Element("system-uptime-information")
    date_time(sub(info, "current-time"), "date-time", now)
    sub(info, "time-source", " LOCAL CLOCK ")
    booted = sub(info, "system-booted-time")
    date_time(booted, "date-time", clock.boot_epoch)
    _length(booted, "time-length", now - clock.boot_epoch)
    configured = sub(info, "last-configured-time")
    date_time(configured, "date-time", last.seconds)
    _length(configured, "time-length", now - last.seconds)
    sub(configured, "user", last.user)
    summary = sub(info, "uptime-information")
    date_time(summary, "date-time", now)
    _length(summary, "up-time", now - clock.boot_epoch)
    sub(summary, "active-user-count", str(users))
    return info


def host_name(running: Element) -> str:
    system = child(running, "system")
    return text_of(child(system, "host-name")) if system is not None else ""


def software(running: Element) -> Element:
    info = etree.Element("software-information")
    sub(info, "host-name", host_name(running))
    for name, value in FACTS.items():
        sub(info, name, value)
    package = sub(info, "package-information")
    sub(package, "name", "junos")
    sub(package, "comment", f"JUNOS Software Release [{VERSION}]")
    return info
