"""`user@addr[:port]`: the one spelling of a device's SSH address, on the command line and in files."""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgekit.errors import EdgekitError

DEFAULT_PORT = 22

# user@ is optional; an IPv6 address takes brackets when a port follows ([::1]:2222)
_ADDRESS = re.compile(r"^(?:(?P<user>[^@\s:/]+)@)?(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^@\s:/\[\]]+))(?::(?P<port>\d+))?$")


@dataclass(frozen=True)
class Address:
    host: str
    user: str | None = None
    port: int = DEFAULT_PORT

    def with_user(self, user: str | None) -> Address:
        return self if self.user or not user else Address(self.host, user, self.port)

    def known_hosts_name(self) -> str:
        """How OpenSSH (and so ssh-keyscan) names this host in known_hosts."""
        return self.host if self.port == DEFAULT_PORT else f"[{self.host}]:{self.port}"

    def keyscan(self) -> str:
        """The command that reads this host's key, for the message that says how to trust it."""
        port = "" if self.port == DEFAULT_PORT else f"-p {self.port} "
        return f"ssh-keyscan {port}{self.host}"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        port = "" if self.port == DEFAULT_PORT else f":{self.port}"
        return f"{user}{host}{port}"


class AddressError(EdgekitError):
    """An SSH address that is not user@addr[:port]."""


def parse(text: str) -> Address:
    match = _ADDRESS.match(str(text).strip())
    if not match:
        raise AddressError(f"'{text}' is not an SSH address: write user@addr[:port] (e.g. nvidia@192.168.1.20:22)")
    port = int(match["port"]) if match["port"] else DEFAULT_PORT
    if not 0 < port < 65536:
        raise AddressError(f"'{text}': port {port} is not between 1 and 65535")
    return Address(host=match["v6"] or match["host"], user=match["user"], port=port)
