"""Full-stack diagnostics reports: web-shop exports in, audience PDFs out."""
from __future__ import annotations

__version__ = "0.1.0"
