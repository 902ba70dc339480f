"""What the live tests share: reading a guest's console file, waiting for a
condition, a free TCP port on the loopback."""
import socket
import time
from pathlib import Path

import pytest


def read(path):
    """A file's text (a console log being written), or "" if unreadable."""
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def wait_for(pred, timeout_s, what):
    """Poll `pred` every 0.2 s until it is true (its value is returned), or
    fail the test after `timeout_s` naming `what`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def free_port():
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
