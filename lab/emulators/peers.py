"""The emulated devices of one lab, so each can derive its operational state from its peers'.

Until emulated gateways are backed by real IKE daemons, a device answers "is my tunnel up"
by reading the committed configuration of the device at the tunnel's remote address (see
oper_model.tunnel_state). The lab supervisor creates one PeerRegistry per lab and passes
`peers=registry, gateway=<name>` to every emulated device; the device registers a PeerView
(read-only: it returns the normalized committed configuration, never the device itself).

A remote address that no registered device owns (a real strongSwan gateway, a typo) has no
view: the tunnel towards it is down.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass

from lab.emulators.errors import EmulatorError
from lab.emulators.oper_model import DeviceIntent, DeviceState, device_state, stamped


class PeerError(EmulatorError):
    """A registration that would make the registry ambiguous."""


@dataclass(frozen=True)
class PeerView:
    """One device as its peers see it: a name and its committed configuration, normalized.

    committed is called from any thread (every device may run on its own event loop): it
    derives from the device's committed tree only, which commits replace but never edit.
    """

    gateway: str
    platform: str
    committed: Callable[[], DeviceIntent]


class PeerRegistry:
    """Thread-safe map gateway name -> PeerView; lookups by public (IKE) address."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._views: dict[str, PeerView] = {}

    def register(self, view: PeerView) -> None:
        with self._lock:
            if view.gateway in self._views:
                raise PeerError(f"gateway {view.gateway} is already registered")
            self._views[view.gateway] = view

    def unregister(self, gateway: str) -> None:
        with self._lock:
            self._views.pop(gateway, None)

    def get(self, gateway: str) -> PeerView | None:
        with self._lock:
            return self._views.get(gateway)

    def gateways(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted(self._views))

    def by_address(self, address: str, *, exclude: str | None = None) -> DeviceIntent | None:
        """The committed intent of the device whose config owns address (None: no such peer).

        Ownership comes from each device's committed interface addresses and IKE local
        addresses at the time of the call, so re-addressing a device moves it.
        """
        with self._lock:
            views = [v for v in self._views.values() if v.gateway != exclude]
        for view in sorted(views, key=lambda v: v.gateway):
            intent = view.committed()
            if address in intent.local_addresses:
                return intent
        return None

    def address_map(self, *, exclude: str | None = None) -> dict[str, DeviceIntent]:
        """by_address for every address at once: one pass over the devices, so a hub with a
        tunnel to each of n devices costs n, not n * n, committed() calls."""
        with self._lock:
            views = [v for v in self._views.values() if v.gateway != exclude]
        owners: dict[str, DeviceIntent] = {}
        for view in sorted(views, key=lambda v: v.gateway):
            intent = view.committed()
            for address in intent.local_addresses:
                owners.setdefault(address, intent)  # the first by gateway name, as by_address
        return owners


class IntentCache:
    """A device's committed intent, derived again only when the committed config changed.

    key identifies the committed config (the commit record, the tree object, the text); the
    `since` stamps of unchanged tunnels and neighbors carry over (oper_model.stamped).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: object = None
        self._intent: DeviceIntent | None = None

    def get(self, key: object, derive: Callable[[], DeviceIntent], now: float) -> DeviceIntent:
        with self._lock:
            if self._intent is None or key != self._key:
                self._intent = stamped(self._intent, derive(), now)
                self._key = key
            return self._intent


class DevicePeers:
    """A device's membership in a registry (or none: a standalone device, every tunnel down).

    committed derives the device's own committed intent; state() combines it with the
    committed intents of the peers at each tunnel's remote address.
    """

    def __init__(self, registry: PeerRegistry | None, gateway: str, platform: str,
                 committed: Callable[[], DeviceIntent]) -> None:
        self.registry = registry
        self.gateway = gateway
        self.committed = committed
        if registry is not None:
            registry.register(PeerView(gateway, platform, committed))

    def lookup(self, address: str) -> DeviceIntent | None:
        if self.registry is None:
            return None
        return self.registry.by_address(address, exclude=self.gateway)

    def state(self) -> DeviceState:
        if self.registry is None:
            return device_state(self.committed(), self.lookup)
        return device_state(self.committed(), self.registry.address_map(
            exclude=self.gateway).get)

    def close(self) -> None:
        if self.registry is not None:
            self.registry.unregister(self.gateway)
