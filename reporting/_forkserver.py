"""Imported first by the PDF workers' fork server: the server dies with the build that
started it (PR_SET_PDEATHSIG, Linux; elsewhere nothing), so a build killed with -9 leaves
no fork server behind, and its workers, which die with the server, go with it."""
from __future__ import annotations

import ctypes
import signal

try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # 1 = PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
