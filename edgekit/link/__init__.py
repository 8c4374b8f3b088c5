"""The process boundary: edgekit's request/response protocol over any byte stream.

    host side (this process)                      device side (another process, maybe another machine)
    LinkRunner ──frames over a stream──▶ device program: load an artifact, infer, time N runs
                                          on the device's own clock, report its environment

`device.py` is the device-side program for Python devices (a Jetson, a
Raspberry Pi, a child process here): one file that needs only numpy and the
one runtime it runs. The framing lives there too, and the host side imports
it, so both ends share one implementation. docs/protocol.md is the spec.
"""
