"""Loaded into the app's Python process by the privacy test (PYTHONPATH): every outgoing socket
connection to anything but loopback is refused and written to $DERMLAB_NETGUARD_LOG."""
import ipaddress
import os
import socket

_LOG = os.environ.get("DERMLAB_NETGUARD_LOG")
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _allowed(address) -> bool:
    if not isinstance(address, tuple):           # unix sockets
        return True
    host = address[0]
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guard(address) -> None:
    if not _allowed(address):
        if _LOG:
            with open(_LOG, "a") as handle:
                handle.write(f"{address!r}\n")
        raise OSError(f"network access blocked by the privacy test: {address!r}")


def connect(self, address):
    _guard(address)
    return _connect(self, address)


def connect_ex(self, address):
    _guard(address)
    return _connect_ex(self, address)


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
