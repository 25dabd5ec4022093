"""Where `dcvpn watch` sends what it sees: JSON lines on stdout, an optional webhook, and the
metrics file (thin I/O).

The webhook gets one POST per alert (the alert's JSON object) from a background thread fed
by a bounded queue, so a slow or dead receiver never holds up a cycle: each request has a
timeout, a full queue drops the alert (counted), and at the end the queue gets a bounded
time to drain. Only loopback receivers are allowed unless remote ones are asked for; proxies
from the environment are never used.
"""

import contextlib
import json
import os
import queue
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

MAX_QUEUE = 1000
LOOPBACK_NAMES = frozenset({"localhost"})
_STOP = object()


class WebhookUrlError(Exception):
    """The webhook URL is unusable or not allowed (bad input)."""


def check_webhook(url: str, allow_remote: bool) -> str:
    """The URL, if it is http(s) with a host, and loopback unless `allow_remote`."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError as exc:
        raise WebhookUrlError(f"--webhook {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookUrlError(f"--webhook {url!r}: give an http:// or https:// URL with a host")
    if port == 0:
        raise WebhookUrlError(f"--webhook {url!r}: port 0")
    if parts.username or parts.password:
        raise WebhookUrlError("--webhook: credentials in the URL are not accepted")
    if not allow_remote and not is_loopback(parts.hostname):
        raise WebhookUrlError(f"--webhook {parts.hostname} is not a loopback address; alerts go "
                              "to loopback receivers only unless --allow-remote is given")
    return url


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class WebhookStats:
    sent: int
    failed: int
    dropped: int  # the queue was full
    unsent: int  # still queued when the watcher stopped
    last_error: str | None


class Webhook:
    def __init__(self, url: str, timeout: float, max_queue: int = MAX_QUEUE) -> None:
        self.url = url
        self.timeout = timeout
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.sent = self.failed = self.dropped = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="dcvpn-webhook", daemon=True)
        self._thread.start()

    def send(self, payload: Mapping[str, object]) -> None:
        try:
            self._queue.put_nowait(json.dumps(payload, sort_keys=True).encode())
        except queue.Full:
            self.dropped += 1

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with self._opener.open(request, timeout=self.timeout) as reply:
                reply.read(1 << 16)
            self.sent += 1
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self.failed += 1
            self.last_error = str(getattr(exc, "reason", None) or exc)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, bytes)
            self._post(item)

    def close(self, wait: float) -> WebhookStats:
        """Let the queue drain for at most `wait` seconds; what is left is not sent."""
        deadline = time.monotonic() + wait
        while not self._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.02)
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=max(deadline - time.monotonic(), 0.01))
        self._thread.join(timeout=max(deadline - time.monotonic(), 0.01) + self.timeout)
        return WebhookStats(self.sent, self.failed, self.dropped, self._queue.qsize(),
                            self.last_error)


class AlertSink:
    """JSON lines on a stream (flushed per alert), and the webhook if there is one."""

    def __init__(self, stream: TextIO | None = None, webhook: Webhook | None = None) -> None:
        self.stream = stream or sys.stdout
        self.webhook = webhook
        self.count = 0

    def emit(self, payload: Mapping[str, object]) -> None:
        self.stream.write(json.dumps(payload, sort_keys=True) + "\n")
        self.stream.flush()
        self.count += 1
        if self.webhook is not None:
            self.webhook.send(payload)


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace `path` in one step: a scraper never reads half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
