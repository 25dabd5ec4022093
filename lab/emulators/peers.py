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
from lab.emulators.oper_model import DeviceIntent, DeviceState, StateMemo, device_state, stamped

Owner = tuple[str, DeviceIntent]  # gateway name, its committed intent


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
    # the device calls PeerRegistry.touch whenever its committed configuration changes
    notifies: bool = False


class PeerRegistry:
    """Thread-safe map gateway name -> PeerView; lookups by public (IKE) address."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._views: dict[str, PeerView] = {}
        self._owners: tuple[tuple[DeviceIntent, ...], dict[str, tuple[Owner, ...]]] | None = None
        self._generation = 0  # counts registrations and the commits devices report
        self._owners_generation = -1
        self._silent = 0  # registered views that do not notify: their intents are asked

    def register(self, view: PeerView) -> None:
        with self._lock:
            if view.gateway in self._views:
                raise PeerError(f"gateway {view.gateway} is already registered")
            self._views[view.gateway] = view
            self._silent += not view.notifies
            self._generation += 1

    def unregister(self, gateway: str) -> None:
        with self._lock:
            view = self._views.pop(gateway, None)
            self._silent -= view is not None and not view.notifies
            self._generation += 1

    def touch(self) -> None:
        """A device's committed configuration changed."""
        with self._lock:
            self._generation += 1

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

    def owners(self) -> dict[str, tuple[Owner, ...]]:
        """Every address with the devices that own it, by gateway name: one pass over the
        devices, built again only when one of their committed intents is a new one (a fleet
        reads the state of every device many times between two commits)."""
        with self._lock:
            generation, cached = self._generation, self._owners
            if (cached is not None and generation == self._owners_generation
                    and self._silent == 0):
                return cached[1]  # no commit reported since: every intent is the same
            views = sorted(self._views.values(), key=lambda v: v.gateway)
        named = [(v.gateway, v.committed()) for v in views]
        intents = tuple(intent for _, intent in named)
        if cached is not None and len(cached[0]) == len(intents) and all(
                a is b for a, b in zip(cached[0], intents, strict=True)):
            owners = cached[1]
        else:
            found: dict[str, list[Owner]] = {}
            for gateway, intent in named:
                for address in intent.local_addresses:
                    found.setdefault(address, []).append((gateway, intent))
            owners = {address: tuple(owned) for address, owned in found.items()}
        with self._lock:
            if self._generation == generation:  # else a commit came in meanwhile: ask again
                self._owners, self._owners_generation = (intents, owners), generation
        return owners


class IntentCache:
    """A device's committed intent, derived again only when the committed config changed.

    key identifies the committed config (the commit record, the tree object, the text); the
    `since` stamps of unchanged tunnels and neighbors carry over (oper_model.stamped).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: object = None
        self._content: bytes | None = None
        self._intent: DeviceIntent | None = None
        self._prepared: tuple[bytes, DeviceIntent] | None = None  # unstamped

    def prepare(self, content: bytes, derive: Callable[[], DeviceIntent]) -> None:
        """Derive ahead the intent of a configuration that may be committed next (a loaded
        candidate, its bytes as get's content will be): its commit finds it ready (a wave's
        commits then wait for no derivation)."""
        with self._lock:
            if content == self._content or (self._prepared is not None
                                            and self._prepared[0] == content):
                return
        derived = derive()
        with self._lock:
            self._prepared = (content, derived)

    def get(self, key: object, derive: Callable[[], DeviceIntent], now: float,
            content: Callable[[], bytes] | None = None) -> DeviceIntent:
        """content: the committed config's bytes; a new key with the same content (a
        confirming commit, a copied tree) keeps the intent instead of deriving it again."""
        with self._lock:
            if self._intent is None or key != self._key:
                data = content() if content is not None else None
                if data is None or data != self._content or self._intent is None:
                    ready = self._prepared
                    derived = ready[1] if ready is not None and ready[0] == data else derive()
                    self._intent = stamped(self._intent, derived, now)
                self._key, self._content = key, data
            return self._intent


class DevicePeers:
    """A device's membership in a registry (or none: a standalone device, every tunnel down).

    committed derives the device's own committed intent; state() combines it with the
    committed intents of the peers at each tunnel's remote address.
    """

    def __init__(self, registry: PeerRegistry | None, gateway: str, platform: str,
                 committed: Callable[[], DeviceIntent], *, notifies: bool = False) -> None:
        """notifies: the device calls changed() whenever its committed configuration does
        (its peers then need not ask it on every read)."""
        self.registry = registry
        self.gateway = gateway
        self.committed = committed
        self._state: tuple[DeviceIntent, object, DeviceState] | None = None
        self._memo: StateMemo | None = None  # per tunnel and session, for self._state's intent
        if registry is not None:
            registry.register(PeerView(gateway, platform, committed, notifies))

    def changed(self, later: Callable[[Callable[[], object]], None] | None = None) -> None:
        """The committed configuration changed; with later (the device's NetconfDevice.soon),
        the new intent is derived once the commit is answered, before a peer's state read
        asks for it."""
        if self.registry is not None:
            self.registry.touch()
        if later is not None:
            later(self.committed)

    def state(self) -> DeviceState:
        """The device's state; the same object while neither its committed intent nor any
        peer's changed (device_state depends on nothing else)."""
        own = self.committed()
        if self.registry is None:  # a standalone device: no peer anywhere
            return device_state(own, lambda address: None)
        owners = self.registry.owners()
        cached = self._state
        if cached is not None and cached[0] is own and cached[1] is owners:
            return cached[2]

        def lookup(address: str) -> DeviceIntent | None:
            return next((intent for gateway, intent in owners.get(address, ())
                         if gateway != self.gateway), None)

        if self._memo is None or self._memo.local is not own:
            self._memo = StateMemo(own)
        state = device_state(own, lookup, self._memo)
        self._state = (own, owners, state)
        return state

    def close(self) -> None:
        if self.registry is not None:
            self.registry.unregister(self.gateway)
