"""HTML to PDF with WeasyPrint, fetching only our own files, in worker processes that
die with their build; a PDF over `pdf_timeout_s` stops the build."""
from __future__ import annotations

import logging
import mimetypes
import multiprocessing.forkserver
import os
import signal
import threading
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..core.errors import PdfTimeout
from ..store.files import atomic_write
from ..store.owner import write_if_owner

log = logging.getLogger(__name__)


PDF_VARIANT = "pdf/a-2a"


# --- PDF -------------------------------------------------------------------------------

def _fetcher_class():
    # lazy: start-up time (only PDFs need it; the PDF fork server preloads it)
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
    # lazy: start-up time (only PDFs need it; the PDF fork server preloads it)
    from weasyprint import HTML

    doc = HTML(string=html, base_url=base_dir.resolve().as_uri() + "/",
               url_fetcher=fetcher(roots))
    # Tagged and archival: structure tree, /Lang from <html lang>, title and XMP metadata,
    # each <img alt> as the figure's /Alt.
    data = doc.write_pdf(attachments=[], pdf_variant=PDF_VARIANT)
    if owner is not None:
        return write_if_owner(target, data, *owner)
    return atomic_write(target, data)


def start_pdf_workers(fmt: str, pdfs: int) -> None:
    if fmt != "html" and (_pdf_worker_count(pdfs) > 1 or not _main_thread()):
        _pdf_workers()


def _pdf_workers() -> multiprocessing.context.BaseContext:
    """The fork server the PDF workers start from; starting it once the data is loaded
    lets it import WeasyPrint while the sections compute (not during the load, where its
    memory would add to the load's workers')."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["reporting.core.procs", "reporting.present.pdf", "weasyprint"])
    multiprocessing.forkserver.ensure_running()
    return ctx


def _pdf_worker_count(pdfs: int) -> int:
    return min(pdfs, os.cpu_count() or 1)


PdfJob = tuple[str, Path, Path, list[Path], tuple[Path, str] | None, float | None]


def render_pdfs(jobs: list[PdfJob]) -> list[Path]:
    """One PDF per audience, in worker processes when there is more than one core."""
    workers = _pdf_worker_count(len(jobs))
    if not jobs:
        return []
    if workers <= 1 and _main_thread():
        return [pdf_job(job) for job in jobs]
    # Off the main thread (the scheduler) a PDF renders in a worker process even alone:
    # only a process's main thread can have the alarm that enforces pdf_timeout_s.
    ctx = _pdf_workers()
    # Longest documents first, so the two workers finish close together.
    ordered = sorted(jobs, key=lambda job: len(job[0]), reverse=True)
    # The workers die with the build (see _die_with_parent): a build killed during this
    # stage leaves no worker behind to replace a later build's PDFs.
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_die_with_build,
                             initargs=(os.getpid(),)) as pool:
        done = dict(zip([job[2] for job in ordered], pool.map(pdf_job, ordered)))
    return [done[job[2]] for job in jobs]


def pdf_job(job: PdfJob) -> Path:
    html, base_dir, target, roots, owner, timeout = job
    if not timeout or not _main_thread():
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


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _die_with_build(build_pid: int) -> None:
    """Worker initializer: SIGKILL when the fork server (the worker's parent) dies, and the
    fork server dies with the build (PR_SET_PDEATHSIG, Linux; elsewhere a no-op)."""
    # lazy: importing procs ties the importing process to its parent; only workers may
    from ..core.procs import die_with_parent

    if die_with_parent() and not os.path.exists(f"/proc/{build_pid}"):
        os._exit(1)                              # the build died before prctl ran
