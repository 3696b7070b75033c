"""A rig killed with SIGKILL runs no cleanup: its children must die with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

PARENT = """
import sys
from chaos.processes import ManagedProcess
child = ManagedProcess([sys.executable, "-c", "import time; time.sleep(120)"])
child.start()
print(child.pid, flush=True)
sys.stdin.read()  # hold until killed
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie counts as gone: it runs nothing and holds no port.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_a_sigkilled_rig_takes_its_children_along() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert _alive(child_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.02)  # polling a condition with a deadline, not synchronising
    assert not _alive(child_pid), f"child {child_pid} outlived its SIGKILLed parent"
