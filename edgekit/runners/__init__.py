"""Runner kinds: one module per kind of place a model can run (see edgekit/placement.py).

Each module has `open_runner(artifact, target, options) -> Runner`:

  host.py      this process: the backend's own in-process runner
  board.py     a microcontroller over its serial protocol: QEMU (`qemu`) or a real port (`serial`)
  ssh.py       a Linux device (Jetson, Raspberry Pi) running edgekit's device program over SSH
  node.py      a TF.js graph model under Node.js
  browser.py   a TF.js graph model in a browser page (headless Chromium, or any browser with --serve)

A kind whose module is absent is refused by placement with one line.
"""
