"""The present floor's worker processes. One fork server per process, started once the
data is loaded, imports matplotlib and the charts module (and WeasyPrint when the build
writes PDFs) while the sections compute; the chart and PDF workers fork from it, ready,
and die with their build (`core.procs`).

Charts are drawn on every core: a chart is pure CPU (about 75 ms of matplotlib each, a
build has dozens), so two workers halve the stage on two cores. A chart goes to a worker
as pickled bytes made in the build's process while its page's voice is active: each
`i18n.Phrase` in it (a title, a label, a target line) is pickled with the sentence that
voice says (`i18n.said_as`), since a pickled Phrase is otherwise its English text; the
worker then draws in the same locale and zone. The files are byte for byte those drawn
in the build's process.
"""
from __future__ import annotations

import io
import multiprocessing.forkserver
import os
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ..core import i18n

if TYPE_CHECKING:
    from .chartplan import Drawing

CHARTS = ["reporting.core.procs", "reporting.present.charts"]
PDFS = ["reporting.present.pdf", "weasyprint"]
CHARTS_PER_WORKER = 4      # fewer charts than this a worker: drawn in the build's process

Batch = tuple[i18n.Voice | None, list["Drawing"]]


def cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def pdf_workers(pdfs: int) -> int:
    """Workers for `pdfs` PDFs: one a PDF, at most one a core."""
    return min(pdfs, cores())


def pdfs_in_workers(pdfs: int) -> bool:
    """Whether `pdfs` PDFs render in workers: more than one worker, or off the main
    thread (a PDF's timeout needs a main thread of its own)."""
    return pdf_workers(pdfs) > 1 or not main_thread()


def start(fmt: str, pdfs: int) -> None:
    """Start the fork server when workers will fork from it: charts on more than one core,
    and `pdfs` PDFs (none when `fmt` is html) in workers when there are more than one and
    more than one core, or off the main thread (a PDF's timeout needs a main thread of its
    own); WeasyPrint is preloaded only then. Called after the load: its imports then run
    beside the sections, and its memory never adds to the load's workers'. The first
    start in a process sets what the server preloads; a PDF worker of a server started
    without WeasyPrint imports it itself."""
    pdf_workers = fmt != "html" and pdfs_in_workers(pdfs)
    if cores() > 1 or pdf_workers:
        _server(pdfs=pdf_workers)


def _server(pdfs: bool) -> multiprocessing.context.BaseContext:
    """The fork server's context; its imports are set by the first call in a process."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(CHARTS + (PDFS if pdfs else []))
    multiprocessing.forkserver.ensure_running()
    return ctx


def pool(workers: int, pdfs: bool = True) -> ProcessPoolExecutor:
    """`workers` processes forked from the fork server. They die with the build (see
    `_die_with_build`): a build killed meanwhile leaves none to replace a later build's
    files."""
    return ProcessPoolExecutor(workers, mp_context=_server(pdfs), initializer=_die_with_build,
                               initargs=(os.getpid(),))


def draw_charts(batches: list[Batch]) -> None:
    """Draw every chart of every batch, each in its batch's voice (None: English), on every
    core when there are enough charts to share."""
    total = sum(len(todo) for _, todo in batches)
    workers = min(cores(), total // CHARTS_PER_WORKER)
    if workers <= 1:
        for voice, todo in batches:
            with i18n.speaking(voice):
                for drawing in todo:
                    drawing()
        return
    jobs = [_job(voice, drawing) for voice, todo in batches for drawing in todo]
    with pool(workers, pdfs=False) as running:
        try:
            list(running.map(_draw_job, jobs))       # re-raises a chart's error here
        except BaseException:
            running.shutdown(cancel_futures=True)    # the charts not begun are not drawn
            raise


class _Said(pickle.Pickler):
    """Pickles each Phrase with what the active voice says: it unpickles as a Phrase equal
    to its English text (a chart's column finds its label by it) that says that."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, i18n.Phrase):
            return i18n.said_as, (str.__str__(obj), obj.said())
        return NotImplemented


def _job(voice: i18n.Voice | None, drawing: Drawing) -> tuple[str | None, str | None, bytes]:
    """A drawing as a worker gets it: the voice's locale and zone, and the drawing pickled
    in that voice."""
    out = io.BytesIO()
    with i18n.speaking(voice):
        _Said(out, protocol=pickle.HIGHEST_PROTOCOL).dump(drawing)
    if voice is None:
        return None, None, out.getvalue()
    return str(voice.locale), voice.zone.key, out.getvalue()


def _draw_job(job: tuple[str | None, str | None, bytes]) -> None:
    locale, zone, payload = job
    voice = None if locale is None else i18n.voice(locale, ZoneInfo(zone))
    drawing = pickle.loads(payload)
    with i18n.speaking(voice):
        drawing()


def _die_with_build(build_pid: int) -> None:
    """Worker initializer: SIGKILL when the fork server (the worker's parent) dies, and the
    fork server dies with the build (PR_SET_PDEATHSIG, Linux; elsewhere a no-op)."""
    # lazy: importing procs ties the importing process to its parent; only workers may
    from ..core.procs import die_with_parent

    if die_with_parent() and not os.path.exists(f"/proc/{build_pid}"):
        os._exit(1)                              # the build died before prctl ran
