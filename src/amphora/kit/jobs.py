"""Background jobs on Huey: declaration, after-commit sending, retries, failures, consumers.

Jobs are declared once at import time with ``@job`` / ``@periodic`` as async functions taking a
context (the job side's ``amphora.runtime.Runtime``) and plain ids. ``Jobs(settings)`` binds
every declaration to a Huey instance whose storage the settings choose (a SQLite file in
embedded mode, Redis at scale). Huey runs tasks in
worker threads; each task body is handed to one long-lived event loop (``JobRuntime``) that owns
the job side's database engine, storage and mailer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.api import Task
from huey.consumer import Consumer
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.kit.db import after_commit

if TYPE_CHECKING:
    from amphora.settings import Settings

__all__ = ["JOBS", "JobDef", "Jobs", "crontab", "job", "periodic"]

logger = logging.getLogger("amphora.jobs")

ENQUEUE_KEY = "amphora_enqueue"


JobBody = Callable[..., Coroutine[Any, Any, Any]]


@dataclass(frozen=True)
class JobDef:
    name: str
    body: JobBody
    retries: int
    retry_delay: int
    backoff: float
    schedule: Callable[..., bool] | None = None

    def defer(self, session: AsyncSession, *args: Any) -> None:
        """Send this job once ``session``'s transaction has committed (never before)."""
        enqueue: Callable[[str, tuple[Any, ...]], None] = session.info[ENQUEUE_KEY]
        after_commit(session, lambda: enqueue(self.name, args))


JOBS: dict[str, JobDef] = {}


def job(
    *, retries: int = 5, retry_delay: int = 10, backoff: float = 2.0
) -> Callable[[JobBody], JobDef]:
    """Declare a job. Retries wait ``retry_delay`` seconds, multiplied by ``backoff`` each time."""

    def decorate(body: JobBody) -> JobDef:
        name = f"{body.__module__}.{body.__name__}"
        definition = JobDef(name, body, retries, retry_delay, backoff)
        JOBS[name] = definition
        return definition

    return decorate


def periodic(schedule: Callable[..., bool], *, retries: int = 0) -> Callable[[JobBody], JobDef]:
    """Declare a periodic job (``schedule`` is a Huey ``crontab``); it should fan out per item."""

    def decorate(body: JobBody) -> JobDef:
        name = f"{body.__module__}.{body.__name__}"
        definition = JobDef(name, body, retries, 0, 1.0, schedule=schedule)
        JOBS[name] = definition
        return definition

    return decorate


def make_huey(settings: Settings, *, name: str = "amphora") -> Huey:
    if settings.redis_url:
        return RedisHuey(name, url=settings.redis_url, blocking=True, read_timeout=1)
    path = settings.resolved_data_dir / "jobs.db"
    return SqliteHuey(name, filename=str(path), timeout=30)


class JobRuntime:
    """A private event loop in a thread, where job bodies run with shared resources."""

    def __init__(self, make_context: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        self._make_context = make_context
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="amphora-jobs-loop")
        self._thread.daemon = True
        self._thread.start()
        self.context: Any = self.run(self._make_context())

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        closer = getattr(self.context, "aclose", None)
        if closer is not None:
            self.run(closer())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class _EmbeddedConsumer(Consumer):  # type: ignore[misc]
    """A consumer started from a non-main thread: the host process owns signal handling."""

    def _set_signal_handlers(self) -> None:
        pass


class Jobs:
    """Every declared job bound to one Huey instance; enqueueing and consuming."""

    def __init__(self, settings: Settings, *, huey: Huey | None = None) -> None:
        self.settings = settings
        self.huey = huey or make_huey(settings)
        self.runtime: JobRuntime | None = None
        self._consumer: Consumer | None = None
        self._tasks: dict[str, Any] = {}
        for definition in JOBS.values():
            self._register(definition)

    # -- sending ---------------------------------------------------------------------------

    def enqueue(self, name: str, args: tuple[Any, ...] = (), *, delay: float | None = None) -> str:
        """Blocking (a storage write): call after commit, from a thread when in async code."""
        wrapped = self._tasks[name]
        result = wrapped.schedule(args=args, delay=delay) if delay else wrapped(*args)
        return str(result.id)

    def session_info(self) -> dict[str, Any]:
        """Put into every database session so ``JobDef.defer`` knows where to send."""
        return {ENQUEUE_KEY: self.enqueue}

    # -- running ---------------------------------------------------------------------------

    def _register(self, definition: JobDef) -> None:
        def run_body(*args: Any, task: Task) -> Any:
            runtime = self.runtime
            if runtime is None:
                raise RuntimeError("job runtime not started")
            try:
                return runtime.run(definition.body(runtime.context, *args))
            except Exception as exc:
                if not task.retries:
                    self._record_failure(definition, task, args, exc)
                raise

        run_body.__name__ = definition.name
        if definition.schedule is not None:
            wrapped = self.huey.periodic_task(
                definition.schedule, retries=definition.retries, name=definition.name, context=True
            )(run_body)
        else:
            wrapped = self.huey.task(
                retries=definition.retries,
                retry_delay=definition.retry_delay,
                retry_backoff=definition.backoff,
                name=definition.name,
                context=True,
            )(run_body)
        self._tasks[definition.name] = wrapped

    def _record_failure(
        self, definition: JobDef, task: Task, args: tuple[Any, ...], exc: Exception
    ) -> None:
        from amphora.models import FailedJob

        logger.error("job %s (%s) failed for good: %r", definition.name, task.id, exc)
        error = "".join(traceback.format_exception(exc))[-8000:]

        async def _store() -> None:
            async with self.runtime.context.db.session() as session:  # type: ignore[union-attr]
                session.add(
                    FailedJob(
                        task_name=definition.name,
                        task_id=str(task.id),
                        args=list(args),
                        error=error,
                    )
                )

        try:
            assert self.runtime is not None
            self.runtime.run(_store())
        except Exception:  # a broken database must not hide the original failure
            logger.exception("could not record the failed job %s", task.id)

    def _consumer_for(self, consumer_class: type[Consumer], workers: int) -> Consumer:
        return consumer_class(
            self.huey,
            workers=workers,
            worker_type="thread",
            initial_delay=0.05,
            backoff=1.15,
            max_delay=1.0,
            periodic=True,
            check_worker_health=True,
        )

    def start_consumer(
        self, make_context: Callable[[], Coroutine[Any, Any, Any]], *, workers: int
    ) -> None:
        """Embedded mode: workers and the periodic scheduler in background threads."""
        self.runtime = JobRuntime(make_context)
        self._consumer = self._consumer_for(_EmbeddedConsumer, workers)
        self._consumer.start()

    def run_worker(
        self, make_context: Callable[[], Coroutine[Any, Any, Any]], *, workers: int
    ) -> None:
        """`amphora worker`: consume in this process until SIGINT/SIGTERM."""
        self.runtime = JobRuntime(make_context)
        try:
            self._consumer_for(Consumer, workers).run()
        finally:
            self.stop_consumer()

    def stop_consumer(self) -> None:
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
            self._consumer = None
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None

    # -- inspection ------------------------------------------------------------------------

    def pending(self) -> list[dict[str, Any]]:
        rows = []
        for task in self.huey.pending():
            rows.append({"id": task.id, "name": task.name, "args": list(task.args), "eta": None})
        for task in self.huey.scheduled():
            rows.append(
                {"id": task.id, "name": task.name, "args": list(task.args), "eta": task.eta}
            )
        return rows

    def ping(self) -> None:
        """Readiness: the job storage answers."""
        self.huey.storage.queue_size()
