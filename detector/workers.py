"""Worker processes for the records of one crawl file: this process reads the file and hands each record's
page to the next free worker, and takes the results back in the file's order. One big JSON Lines or WARC file
then uses every core (work shared out by file left all but one idle), and its output is the same, byte for
byte, as with one process.

Nothing here knows about pages: ``in_order(work, items, jobs)`` is ``map`` over a stream, with what a crawl
needs beside it. An exception the work raised comes back as the item's outcome; a worker still at one item
``hard_limit`` seconds after it began is ended (the outcome is ``Ended``), and one that died (the out-of-memory
killer, ``kill -9``) is told as ``Died``: that item alone fails, and a new worker takes the old one's place.
Each worker has one item at a time, so neither side ever waits to send while the other waits to send too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at run time (see _named_tuple)
if TYPE_CHECKING:
    from typing import Any

WATCH_EVERY = 1.0  # seconds between looks at the workers' time when a hard limit is set
MAX_AHEAD = 64  # items read past the oldest unfinished one: their results wait here to be handed on in order
_WAITING = object()  # the outcome of an item that a worker still has


class Ended(Exception):
    """The item's worker was still at it ``hard_limit`` seconds after it began, and was ended."""


class Died(Exception):
    """The item's worker process died before it answered (out of memory? killed?)."""


class _Worker:
    """One forked worker: its process, its end of the pipe, and the item it has (with when it got it)."""

    __slots__ = ("connection", "entry", "pid", "since")

    def __init__(self, pid: int, connection: Any) -> None:
        self.pid = pid
        self.connection = connection
        self.entry: list | None = None
        self.since = 0.0


def in_order(
    work: Callable[..., Any],
    items: Iterable[tuple[tuple | None, Any]],
    jobs: int,
    start: Callable[[], None] | None = None,
    hard_limit: float = 0.0,
    stops: tuple[int, ...] = (),
    here: float = 0.0,
    again: bool = False,
    source: int | None = None,
    told: list[str] | None = None,
) -> Iterator[tuple[Any, Any]]:
    """``(tag, outcome)`` for each ``(args, tag)`` of ``items``, in their order: the outcome is ``work(*args)``
    or the exception it raised (returned, not raised); an item whose ``args`` is None is not worked on (its
    outcome is None) but keeps its place. With ``jobs`` above 1 the items are worked on by ``jobs`` worker
    processes forked from this one, once those worked on here have taken ``here`` seconds (``work`` and
    what it uses are theirs without being sent); each calls ``start`` first, and ``stops`` (signals) are
    blocked while it is forked, for ``start`` to set them. With ``again``, an item whose worker died is worked
    on again here (site memory's first pass: a batch counts a dead worker's files again, in a new one).
    ``source``: the descriptor of a pipe the items are read from, which is read only when it has bytes while
    workers have items (a slow producer's records that were cleaned waited for the next to arrive, and a stop
    lost them). Workers that cannot be started (too many open files or processes) are done without: the
    items go to those there are, or are worked on here, and a note says so in ``told``. Ending early (an
    exception here, or the caller closing the generator) ends the workers at once."""
    if jobs <= 1 or not hasattr(os, "fork"):
        for args, tag in items:
            yield tag, None if args is None else _outcome(work, args)
        return
    crew = _Crew(work, jobs, start, stops, hard_limit)
    pending: deque[list] = deque()  # [tag, args, outcome] in the items' order
    worked = 0.0  # seconds of work done here
    finished = False
    try:
        for args, tag in items:
            entry = [tag, args, None if args is None else _WAITING]
            pending.append(entry)
            if args is not None and worked < here:
                began = time.monotonic()
                entry[1:] = [None, _outcome(work, args)]
                worked += time.monotonic() - began
            elif args is not None:
                crew.hand_on(entry)
            yield from _done(pending, work, again)
            while len(pending) > MAX_AHEAD:
                crew.collect()
                yield from _done(pending, work, again)
            while source is not None and crew.busy() and not _has_bytes(source):  # before a read that may wait
                crew.collect(also=source)
                yield from _done(pending, work, again)
        while pending:
            if pending[0][2] is _WAITING:
                crew.collect()
            yield from _done(pending, work, again)
        finished = True
        if crew.refused and told is not None:
            where = "the records go on" if crew.jobs else "the records are cleaned in this process"
            count = f"{crew.jobs} of {jobs} worker processes" if crew.jobs else "no worker process"
            told.append(f"{count} could be started ({crew.refused}): {where}")
    finally:
        crew.end(at_once=not finished)


def _done(pending: deque[list], work: Callable[..., Any], again: bool) -> Iterator[tuple[Any, Any]]:
    """The finished items at the head of the queue, handed on."""
    while pending and pending[0][2] is not _WAITING:
        tag, args, outcome = pending.popleft()
        if again and isinstance(outcome, Died):
            outcome = _outcome(work, args)
        yield tag, outcome


def _has_bytes(descriptor: int) -> bool:
    import select

    try:
        return bool(select.select([descriptor], [], [], 0)[0])
    except (OSError, ValueError):  # closed meanwhile: a read tells
        return True


def _outcome(work: Callable[..., Any], args: tuple) -> Any:
    try:
        return work(*args)
    except Exception as exc:
        return exc


class _Crew:
    """The forked workers of one stream, each with one item at a time, and what a new one needs."""

    def __init__(
        self,
        work: Callable[..., Any],
        jobs: int,
        start: Callable[[], None] | None,
        stops: tuple[int, ...],
        hard_limit: float,
    ) -> None:
        self.workers: list[_Worker] = []
        self.work, self.jobs, self.start, self.stops, self.hard_limit = work, jobs, start, stops, hard_limit
        self.refused = ""  # why a worker could not be started (its OSError), once one could not

    def busy(self) -> bool:
        return any(w.entry is not None for w in self.workers)

    def hand_on(self, entry: list) -> None:
        """Give an item to a free worker; one that cannot be pickled (a JSON record nested deeper than pickle
        goes: it needs twice json's depth) is worked on here, as with one job, rather than failing; so is
        every item when no worker could be started."""
        while True:
            free = self._free_worker()
            if free is None:
                entry[1:] = [None, _outcome(self.work, entry[1])]
                return
            try:
                free.connection.send(entry[1])  # (pickled whole before a byte is sent)
            except OSError:  # the worker died while idle: another takes the item
                self._end_worker(free)
                continue
            except Exception:
                entry[1:] = [None, _outcome(self.work, entry[1])]
                return
            free.entry, free.since = entry, time.monotonic()
            return

    def _free_worker(self) -> _Worker | None:
        """A worker without an item: an idle one, a new one while there are fewer than ``jobs``, else the
        first to finish; None when there is none and none can be started."""
        while True:
            for worker in self.workers:
                if worker.entry is None:
                    return worker
            if len(self.workers) < self.jobs:
                others = [w.connection for w in self.workers]
                try:
                    self.workers.append(_fork(self.work, self.start, self.stops, others))
                except OSError as exc:  # too many open files or processes (ulimit): do with those there are
                    self.jobs = len(self.workers)
                    self.refused = self.refused or (exc.strerror or str(exc)).lower()
                continue
            if not self.workers:
                return None
            self.collect()

    def collect(self, also: int | None = None) -> None:
        """Wait until a worker answers (its outcome goes into its item's entry), dies, or is over its time, or
        until the descriptor ``also`` has bytes."""
        from multiprocessing.connection import wait

        busy = {w.connection: w for w in self.workers if w.entry is not None}
        if not busy:
            return
        for ready in wait([*busy, *([] if also is None else [also])], WATCH_EVERY if self.hard_limit else None):
            if ready == also:
                continue
            worker = busy[ready]
            try:
                outcome = worker.connection.recv()
            except (EOFError, OSError):
                outcome = Died()
            except Exception as exc:  # an outcome that could be pickled there and not unpickled here
                outcome = RuntimeError(f"its result could not be read ({type(exc).__name__}: {exc})")
            assert worker.entry is not None
            worker.entry[2] = outcome
            if isinstance(outcome, Died):  # (its item kept, to be worked on again)
                self._end_worker(worker)
            else:
                worker.entry[1] = None  # (a page waiting to be handed on holds its result, not its input too)
            worker.entry = None
        if self.hard_limit:
            now = time.monotonic()
            for worker in [w for w in self.workers if w.entry is not None and now - w.since > self.hard_limit]:
                worker.entry[1:], worker.entry = [None, Ended()], None  # type: ignore[index]
                self._end_worker(worker)

    def _end_worker(self, worker: _Worker) -> None:
        self.workers.remove(worker)
        _kill(worker.pid)
        worker.connection.close()
        _reap(worker.pid)

    def end(self, at_once: bool) -> None:
        """Idle workers end when their pipe closes; with ``at_once`` (an interrupted or failed run) every
        worker is killed, whatever it has."""
        for worker in self.workers:
            if at_once or worker.entry is not None:
                _kill(worker.pid)
            worker.connection.close()
        for worker in self.workers:
            _reap(worker.pid)
        self.workers.clear()


def _fork(
    work: Callable[..., Any], start: Callable[[], None] | None, stops: tuple[int, ...], others: list
) -> _Worker:
    from multiprocessing.connection import Pipe

    mine, theirs = Pipe(duplex=True)
    held = signal.pthread_sigmask(signal.SIG_BLOCK, stops) if stops else None
    try:
        try:
            pid = os.fork()
        except OSError:
            mine.close()
            theirs.close()
            raise
        if pid == 0:  # the worker: never returns into the caller's frames (their finally blocks are not its own)
            code = 1
            try:
                mine.close()
                for connection in others:
                    connection.close()
                if start is not None:
                    start()
                _serve(work, theirs)
                code = 0
            finally:
                os._exit(code)
    finally:
        if held is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
    theirs.close()
    return _Worker(pid, mine)


def _serve(work: Callable[..., Any], connection: Any) -> None:
    """A worker's life: items in, outcomes out, until this process closes the pipe."""
    while True:
        try:
            args = connection.recv()
        except EOFError:
            return
        outcome = _outcome(work, args)
        del args
        try:
            connection.send(outcome)
        except Exception as exc:  # an outcome that cannot be pickled (an exception of a library's making)
            connection.send(RuntimeError(f"{type(outcome).__name__}: {outcome} (and {type(exc).__name__}: {exc})"))


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # (it ended meanwhile)
        os.kill(pid, signal.SIGKILL)


def _reap(pid: int) -> None:
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except ChildProcessError:
            return
        except InterruptedError:  # (retried by Python itself since 3.5; kept for a handler that raises)
            continue
