"""Devices reached over SSH: where they are, how to trust them, and the byte stream to them.

    address.py   `user@addr[:port]` as the user writes it
    config.py    which device a target means: --host, the user's devices.yaml, a target file
    ssh.py       the SSH connection (host keys checked), the device program copied by content
                 hash, and the channel the edgekit.link/1 frames travel on

Nothing here runs a model: edgekit/runners/ssh.py puts these together with
the link's host side (edgekit/link/host.py).
"""
