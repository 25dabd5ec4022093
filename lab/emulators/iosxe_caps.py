"""What an IOS-XE 17.x device with the candidate datastore advertises: hello and yang-library.

The protocol capabilities are those of the published 17.15.1 / 17.12.1 hello captures
(YangModels/yang vendor/cisco/xe/17151 and 17121, capability-c8000v.xml), which do not list
:confirmed-commit; the emulator adds :confirmed-commit:1.1 unless told not to. As on the
device, only YANG 1.0 modules appear in the hello; the YANG 1.1 modules (all of
Cisco-IOS-XE-*) are listed by ietf-yang-library (<get> modules-state).
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

from lab.emulators.device import BASE_10, BASE_11
from lab.emulators.iosxe_schema import YangModule, folder_modules

CAP = "urn:ietf:params:netconf:capability:"
CONFIRMED_COMMIT = f"{CAP}confirmed-commit:1.1"
IETF_NETCONF = "urn:ietf:params:xml:ns:netconf:base:1.0?module=ietf-netconf&revision=2011-06-01"
YANG_LIBRARY_NS = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
CISCO_IA_NS = "http://cisco.com/yang/cisco-ia"
SELF_MGMT_NS = "http://cisco.com/yang/cisco-self-mgmt"

# Modules whose RPCs or data the emulator serves, with the revisions of the published
# captures; the YANG folder adds (or, for the same name, confirms) the rest.
RELEASE_MODULES: dict[str, tuple[YangModule, ...]] = {
    "17.15": (YangModule("cisco-ia", CISCO_IA_NS, "2024-07-01", "1", False),
              YangModule("cisco-self-mgmt", SELF_MGMT_NS, "2019-07-01", "1", False)),
    "17.12": (YangModule("cisco-ia", CISCO_IA_NS, "2021-11-01", "1", False),
              YangModule("cisco-self-mgmt", SELF_MGMT_NS, "2019-07-01", "1", False)),
}
NETCONF_MODULES = (
    YangModule("ietf-netconf-monitoring", "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring",
               "2010-10-04", "1", False),
    YangModule("ietf-netconf-with-defaults",
               "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults", "2011-06-01", "1",
               False),
)


@dataclass(frozen=True)
class Advertised:
    capabilities: tuple[str, ...]
    modules: tuple[YangModule, ...]  # every implemented module, for ietf-yang-library
    module_set_id: str


def advertised(version: str, folder: Path | None, *, confirmed_commit: bool) -> Advertised:
    modules = {m.name: m for m in RELEASE_MODULES[version]}
    if folder is not None:
        modules.update({m.name: m for m in folder_modules(folder) if not m.submodule})
    modules.update({m.name: m for m in NETCONF_MODULES})
    ordered = tuple(modules[name] for name in sorted(modules))
    digest = hashlib.md5("".join(f"{m.name}@{m.revision};" for m in ordered).encode(),
                         usedforsecurity=False).hexdigest()
    features = ["writable-running", "candidate", "rollback-on-error", "validate", "xpath"]
    if confirmed_commit:
        features.insert(2, "confirmed-commit")
    protocol = [
        BASE_10, BASE_11, f"{CAP}writable-running:1.0", f"{CAP}candidate:1.0",
        *([CONFIRMED_COMMIT] if confirmed_commit else []),
        f"{CAP}rollback-on-error:1.0", f"{CAP}validate:1.0", f"{CAP}validate:1.1",
        f"{CAP}xpath:1.0", f"{CAP}notification:1.0", f"{CAP}interleave:1.0",
        f"{CAP}partial-lock:1.0",
        f"{CAP}with-defaults:1.0?basic-mode=explicit&also-supported=report-all-tagged,"
        "report-all",
        f"{CAP}with-operational-defaults:1.0?basic-mode=explicit&also-supported="
        "report-all-tagged,report-all",
        f"{CAP}yang-library:1.0?revision=2019-01-04&module-set-id={digest}",
        f"{CAP}yang-library:1.1?revision=2019-01-04&content-id={digest}",
        "http://tail-f.com/ns/netconf/actions/1.0",
    ]
    in_hello = [f"{m.namespace}?module={m.name}&revision={m.revision}"
                for m in ordered if m.yang_version == "1"]
    in_hello.append(f"{IETF_NETCONF}&features={','.join(features)}")
    return Advertised((*protocol, *sorted(in_hello), f"{CAP}notification:1.1"), ordered,
                      digest)
