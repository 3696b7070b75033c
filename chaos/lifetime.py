"""Children that die with the rig.

A rig killed with SIGKILL (or crashing) runs no cleanup, and its children run in
their own session (so a terminal Ctrl-C reaches the rig first). Linux's
PR_SET_PDEATHSIG makes the kernel send SIGKILL to the child when the thread that
started it ends, so no fake server or Toxiproxy outlives the run whatever happens.
Elsewhere it is a no-op and ordinary cleanup is all there is.
"""

from __future__ import annotations

import ctypes
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # Resolved before any fork: the child only makes the call.
        prctl: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_prctl = _load_prctl()


def die_with_parent() -> None:
    """`preexec_fn` for `subprocess.Popen`: SIGKILL this child when the rig goes."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
