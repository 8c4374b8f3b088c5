"""Keep native libraries' log lines out of user output.

TensorFlow's C++ side writes CUDA probes, MLIR notes and converter chatter
straight to file descriptors 1 and 2, past Python's logging. A user of
`edgekit convert` should see edgekit's one-line answer, so those blocks run
with both descriptors pointed at a scratch file. EDGEKIT_DEBUG=1 shows them.
"""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager


@contextmanager
def native_output_hidden():
    if os.environ.get("EDGEKIT_DEBUG"):
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        for fd in saved:
            os.close(fd)
