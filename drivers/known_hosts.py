"""known_hosts files as the drivers read them: parsed once a process (until the file
changes), host names indexed."""

import threading
from pathlib import Path
from typing import Any

import paramiko  # type: ignore[import-untyped]


def known_host_names(host: str, port: int) -> tuple[str, ...]:
    """How OpenSSH names the host in known_hosts: `[host]:port` unless port 22, then `host`."""
    return (host,) if port == 22 else (f"[{host}]:{port}", host)


class KnownHosts:
    """A parsed known_hosts file, its plain host names indexed: paramiko's lookup compares the
    name with every entry (hashed ones by HMAC), and a fleet's file lists every device."""

    def __init__(self, path: Path) -> None:
        self.keys = paramiko.HostKeys(str(path))
        self._by_name: dict[str, dict[str, Any]] = {}
        self._hashed = False
        for entry in self.keys._entries:  # paramiko keeps no public list of the entries
            if entry.key is None:
                continue
            for name in entry.hostnames:
                if name.startswith("|1|"):
                    self._hashed = True
                else:
                    self._by_name.setdefault(name, {}).setdefault(entry.key.get_name(),
                                                                  entry.key)

    def lookup(self, name: str) -> dict[str, Any] | None:
        """keytype -> key for the host name, as paramiko's HostKeys.lookup answers."""
        found = self._by_name.get(name)
        if not self._hashed:
            return found
        merged = dict(found or {})
        for keytype, key in (self.keys.lookup(name) or {}).items():
            merged.setdefault(keytype, key)
        return merged or None


_KNOWN_HOSTS: dict[tuple[str, int, int, int, int], KnownHosts] = {}
_KNOWN_HOSTS_LOCK = threading.Lock()
KNOWN_HOSTS_CACHED = 8  # files


def known_hosts(path: Path) -> KnownHosts:
    """The parsed known_hosts file, parsed again only when the file changed (its inode, size
    or mtime): a fleet connects to hundreds of devices listed in one file, and parsing it
    whole (every key) per connection cost more than the connections. Read-only use."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _KNOWN_HOSTS_LOCK:
        found = _KNOWN_HOSTS.get(key)
    if found is not None:
        return found
    parsed = KnownHosts(path)
    with _KNOWN_HOSTS_LOCK:
        if len(_KNOWN_HOSTS) >= KNOWN_HOSTS_CACHED:
            _KNOWN_HOSTS.clear()
        _KNOWN_HOSTS[key] = parsed
    return parsed
