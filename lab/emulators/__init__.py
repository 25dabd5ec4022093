"""Stateful device emulators that real client libraries drive as if they were devices.

netconf_framing / netconf_session / ssh_server make the NETCONF core (RFC 6241/6242 over
asyncssh); datastore and config_tree hold the configuration state; each platform flavour
(junos, ...) adds its RPCs, capabilities and error spellings as data and handlers.
"""
