"""The http-01 responder (RFC 8555 section 8.3): serves key authorizations while an order runs.

It answers GET /.well-known/acme-challenge/<token> for the tokens of the running order only
(404 for anything else), listens only inside the `with` block, and logs nothing: key
authorizations are not secret, but nothing about the requests needs to reach the user.
"""

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tasks.pki.errors import PkiError

PREFIX = "/.well-known/acme-challenge/"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    tokens: dict[str, bytes]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a client that stalls is dropped

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        body = self.server.tokens.get(path[len(PREFIX):]) if path.startswith(PREFIX) else None
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


class Http01Responder:
    """Tokens published while `serving()` runs; `publish` before answering the challenge."""

    def __init__(self, tokens: dict[str, bytes]) -> None:
        self._tokens = tokens  # shared by every listening socket

    def publish(self, token: str, key_authorization: str) -> None:
        self._tokens[token] = key_authorization.encode()

    def withdraw(self, token: str) -> None:
        self._tokens.pop(token, None)


@contextmanager
def serving(addresses: Sequence[tuple[str, int]]) -> Iterator[Http01Responder]:
    tokens: dict[str, bytes] = {}
    running: list[tuple[_Server, threading.Thread]] = []
    try:
        for host, port in addresses:
            try:
                server = _Server((host, port), _Handler)
            except OSError as exc:
                raise PkiError(f"http-01 responder cannot listen on {host}:{port}: "
                               f"{exc.strerror} (set --acme-http-listen at pki init; port 80 "
                               "needs privileges)") from None
            server.tokens = tokens
            thread = threading.Thread(target=server.serve_forever,
                                      kwargs={"poll_interval": 0.2},
                                      name="dcvpn-acme-http01", daemon=True)
            thread.start()
            running.append((server, thread))
        yield Http01Responder(tokens)
    finally:
        for server, thread in running:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
