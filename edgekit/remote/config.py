"""Which device a target means, and how to reach it.

edgekit connects only where the user said. The address and the settings
come, first found wins, from:

  1. the command line: --host user@addr[:port], --ssh-key, --known-hosts, --device-python
  2. the user's devices file, `$XDG_CONFIG_HOME/edgekit/devices.yaml`
     (default `~/.config/edgekit/devices.yaml`), one entry per target name
  3. `extras.ssh` of a target file the user wrote (the shipped targets name no address)

With no address from any of them, the target cannot be reached and nothing runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.remote.address import Address, parse

DEFAULT_PYTHON = "python3"
DEFAULT_CACHE = "~/.cache/edgekit-device"
DEFAULT_TIMEOUT = 60.0
DEVICE_KEYS = ("host", "user", "ssh_key", "known_hosts", "python", "cache_dir", "timeout")


class DeviceConfigError(EdgekitError):
    """The devices file or a target's ssh settings are malformed."""


@dataclass(frozen=True)
class Device:
    """Everything needed to reach one device and run the device program there."""

    address: Address
    ssh_key: str | None = None
    known_hosts: str | None = None  # None: the user's ~/.ssh/known_hosts
    python: str = DEFAULT_PYTHON
    cache_dir: str = DEFAULT_CACHE
    timeout: float = DEFAULT_TIMEOUT  # seconds any one answer from the device may take


def devices_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "edgekit" / "devices.yaml"


def _devices_entry(target) -> tuple[dict, str]:
    """The devices file's entry for `target` (by name or alias), and how to name it in errors."""
    path = devices_file()
    if not path.is_file():
        return {}, str(path)
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DeviceConfigError(f"{path}: cannot read the devices file ({first})") from None
    if not isinstance(data, dict):
        raise DeviceConfigError(f"{path}: must map target names to their device settings")
    for name in (target.name, *target.aliases):
        if name in data:
            return _checked(data[name], f"{path}: entry '{name}'"), f"{path} ('{name}')"
    return {}, str(path)


def _checked(entry, label: str) -> dict:
    if entry is None:
        return {}
    if not isinstance(entry, dict):
        raise DeviceConfigError(f"{label} must be a mapping of {', '.join(DEVICE_KEYS)}")
    unknown = sorted(str(k) for k in entry if k not in DEVICE_KEYS)
    if unknown:
        raise DeviceConfigError(f"{label}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(DEVICE_KEYS)}")
    for key, value in entry.items():
        if key == "timeout":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise DeviceConfigError(f"{label}: timeout must be a positive number of seconds, got {value!r}")
        elif not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
            raise DeviceConfigError(f"{label}: {key} must be a non-empty string, got {value!r}")
    return dict(entry)


def _target_entry(target) -> dict:
    return _checked((target.extras or {}).get("ssh"), f"{target.source}: extras.ssh")


def where_to_say(target) -> str:
    """How to give the device's address, for the line that refuses a target without one."""
    return (
        f"give --host user@addr[:port], or `host:` under `{target.name}:` in {devices_file()}"
    )


def device_for(target, options) -> Device | None:
    """The device `target` means for this command, or None when nobody named one."""
    entry, _ = _devices_entry(target)
    shipped = _target_entry(target)

    def pick(flag, key, default=None):
        for value in (flag, entry.get(key), shipped.get(key)):
            if value not in (None, ""):
                return value
        return default

    host = pick(getattr(options, "host", None), "host")
    if host is None:
        return None
    address = parse(str(host)).with_user(pick(None, "user"))
    key = pick(getattr(options, "ssh_key", None), "ssh_key")
    known = pick(getattr(options, "known_hosts", None), "known_hosts")
    return Device(
        address=address,
        ssh_key=os.path.expanduser(str(key)) if key else None,
        known_hosts=os.path.expanduser(str(known)) if known else None,
        python=str(pick(getattr(options, "device_python", None), "python", DEFAULT_PYTHON)),
        cache_dir=str(pick(None, "cache_dir", DEFAULT_CACHE)),
        timeout=float(pick(None, "timeout", DEFAULT_TIMEOUT)),
    )
