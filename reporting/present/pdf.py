"""HTML to PDF with WeasyPrint, fetching only our own files, in worker processes that
die with their build (`workers`); a PDF over `pdf_timeout_s` stops the build."""
from __future__ import annotations

import logging
import mimetypes
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..core.errors import PdfTimeout
from ..store.files import atomic_write
from ..store.owner import write_if_owner
from . import workers

log = logging.getLogger(__name__)


PDF_VARIANT = "pdf/a-2a"


# --- PDF -------------------------------------------------------------------------------

def _fetcher_class():
    # lazy: start-up time (only PDFs need it; the fork server of PDF workers preloads it)
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class LocalOnlyFetcher(URLFetcher):
        """Serves files under the allowed folders; refuses every other URL."""

        def __init__(self, roots: Iterable[Path]) -> None:
            super().__init__(allowed_protocols={"file", "data"})
            self.roots = [Path(r).resolve() for r in roots]

        def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
            if url.startswith("data:"):   # inline bytes, e.g. a raster inside a chart SVG
                return super().fetch(url, headers)
            path = allowed_path(url, self.roots)
            if path is None:
                log.warning("refused to fetch %s", url[:200])
                raise ValueError(f"refused: {url[:200]}")
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(path.as_uri(), body=path.read_bytes(),
                                      headers={"Content-Type": mime})

    return LocalOnlyFetcher


def allowed_path(url: str, roots: Iterable[Path]) -> Path | None:
    """The local file `url` names when it is a file: URL inside one of `roots`, else None."""
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        return None
    path = Path(unquote(parts.path)).resolve()
    for root in roots:
        root = Path(root).resolve()
        if path.is_relative_to(root) and path.is_file():
            return path
    return None


def fetcher(roots: Iterable[Path]) -> Any:
    return _fetcher_class()(roots)


def write_pdf(html: str, base_dir: Path, target: Path, roots: Iterable[Path],
              owner: tuple[Path, str] | None = None) -> Path:
    """Render `html` to `target`, resolving relative URLs against `base_dir`; with `owner`
    (output folder, build id) only while that build still owns the folder."""
    # lazy: start-up time (only PDFs need it; the fork server of PDF workers preloads it)
    from weasyprint import HTML

    doc = HTML(string=html, base_url=base_dir.resolve().as_uri() + "/",
               url_fetcher=fetcher(roots))
    # Tagged and archival: structure tree, /Lang from <html lang>, title and XMP metadata,
    # each <img alt> as the figure's /Alt.
    data = doc.write_pdf(attachments=[], pdf_variant=PDF_VARIANT)
    if owner is not None:
        return write_if_owner(target, data, *owner)
    return atomic_write(target, data)


PdfJob = tuple[str, Path, Path, list[Path], tuple[Path, str] | None, float | None]


def render_pdfs(jobs: list[PdfJob]) -> list[Path]:
    """One PDF per audience, in worker processes when there is more than one core."""
    if not jobs:
        return []
    if not workers.pdfs_in_workers(len(jobs)):
        return [pdf_job(job) for job in jobs]
    # Off the main thread (the scheduler) a PDF renders in a worker process even alone:
    # only a process's main thread can have the alarm that enforces pdf_timeout_s.
    # Longest documents first, so the two workers finish close together.
    ordered = sorted(jobs, key=lambda job: len(job[0]), reverse=True)
    with workers.pool(workers.pdf_workers(len(jobs))) as pool:
        done = dict(zip([job[2] for job in ordered], pool.map(pdf_job, ordered)))
    return [done[job[2]] for job in jobs]


def pdf_job(job: PdfJob) -> Path:
    html, base_dir, target, roots, owner, timeout = job
    if not timeout or not workers.main_thread():
        return write_pdf(html, base_dir, target, roots, owner=owner)

    late = PdfTimeout(f"The {target.stem} PDF took longer than {timeout:g} s to render "
                      f"and was stopped (pdf_timeout_s in the config); its HTML version "
                      f"is {base_dir / (target.stem + '.html')}.")
    fired: list[bool] = []

    def expired(*_: object) -> None:
        fired.append(True)
        raise late

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        written = write_pdf(html, base_dir, target, roots, owner=owner)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if fired:    # the alarm's exception was caught inside WeasyPrint: still too late
        raise late
    return written
