"""Processes that die with their parent. Importing this module ties the importing process
to its parent (`die_with_parent`), so only workers import it: the fork server of the chart
and PDF workers preloads it first, so a build killed with -9 leaves no fork server behind,
and its workers, which die with the server (`die_with_parent` in their initializer), go
with it; the load's pool workers import it in their initializer."""
from __future__ import annotations

import ctypes
import signal


def die_with_parent() -> bool:
    """SIGKILL this process when its parent dies (PR_SET_PDEATHSIG, Linux); False where the
    platform has no such call."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False
    return True


die_with_parent()
