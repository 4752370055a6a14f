"""The Starlette application: the page, a JSON API, job progress as server-sent events.

Every error the page can cause comes back as ``{"error": "text"}`` with a status that says
what kind it is (400 bad request or filter error, 404 unknown job, 409 conflict, 413 upload too
large, 429 queue full), so the page shows the message as it is. Work that touches VapourSynth,
the job store or the disk runs in the thread pool, never on the event loop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from vsvsr.errors import VsvsrError
from vsvsr.utils.lazy import lazy_import
from vsvsr.web.jobs import JobConflictError, JobManager, JobStateError, QueueFullError
from vsvsr.web.media import Previewer, clip_facts
from vsvsr.web.paths import VIDEO_SUFFIXES, PathError, Root
from vsvsr.web.settings import (
    CODECS,
    MATRICES,
    MODEL_SUFFIXES,
    PRESETS,
    JobSettings,
    ServeSettings,
    SettingsError,
)
from vsvsr.web.store import DONE, FINAL, JobStore

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
#: Seconds between job-state checks of an event stream.
EVENT_POLL = 0.4


class FilterError(VsvsrError):
    """A VapourSynth error (a filter refused the clip), passed to the page as text."""


class UploadError(VsvsrError):
    """An upload that is empty, too large or of a type the page does not take."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (QueueFullError, 429), (JobConflictError, 409), (JobStateError, 409),
    (PathError, 400), (SettingsError, 400), (FilterError, 400), (VsvsrError, 400),
    (KeyError, 404))


def _guard[T](fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn``; a VapourSynth error becomes a FilterError with the same text."""
    from vsvsr.cli._common import is_vapoursynth_error

    try:
        return fn(*args)
    except Exception as exc:
        if is_vapoursynth_error(exc):
            raise FilterError(str(exc)) from exc
        raise


def create_app(settings: ServeSettings):  # noqa: ANN201, C901  (one closure per route)
    """The ASGI app serving ``settings.root``; its lifespan starts and stops the job queue."""
    starlette = lazy_import("starlette", "vsvsr serve")  # noqa: F841  (clear error if absent)
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from vsvsr.models.registry import BUILTIN_MODELS, DEFAULT_MODEL
    from vsvsr.runtime.select import backend_status
    from vsvsr.utils.atomic import atomic_write

    root = Root(settings.root)
    store = JobStore(settings.db_path)
    manager = JobManager(store, root, max_running=settings.jobs, max_queued=settings.queue)
    previewer = Previewer()

    def error(exc: Exception) -> JSONResponse:
        status = getattr(exc, "status", None) or next(
            (code for cls, code in _STATUS if isinstance(exc, cls)), 500)
        text = f"no such job: {exc.args[0]}" if isinstance(exc, KeyError) else str(exc)
        headers = {"Retry-After": "10"} if status == 429 else None
        return JSONResponse({"error": text}, status_code=status, headers=headers)

    def api(fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request)
            except (VsvsrError, KeyError) as exc:
                return error(exc)
        return endpoint

    async def body_json(request: Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            raise SettingsError("the request body must be JSON") from None

    def job_id(request: Request) -> int:
        try:
            return int(request.path_params["job"])
        except ValueError:
            raise KeyError(request.path_params["job"]) from None

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @api
    async def config(request: Request) -> Response:
        models = [{"name": n, "description": BUILTIN_MODELS.get(n).description}
                  for n in BUILTIN_MODELS.names()]
        models += [{"name": p.name, "description": "model file in the served folder"}
                   for p in sorted(root.path.iterdir())
                   if p.suffix.lower() in MODEL_SUFFIXES and not p.name.startswith(".")
                   and p.is_file()]
        status = await run_in_threadpool(backend_status)
        return JSONResponse({
            "root": root.path.name or "/", "max_upload": settings.max_upload,
            "jobs": settings.jobs, "queue": settings.queue,
            "models": models, "default_model": DEFAULT_MODEL,
            "backends": [{"name": "auto", "available": True, "detail": "the fastest here"}]
            + [{"name": s.name, "available": s.available, "detail": s.detail} for s in status],
            "codecs": list(CODECS), "presets": list(PRESETS), "matrices": list(MATRICES),
            "video_suffixes": sorted(VIDEO_SUFFIXES)})

    @api
    async def files(request: Request) -> Response:
        rel = request.query_params.get("dir", "")
        entries = await run_in_threadpool(root.listing, rel)
        return JSONResponse({"dir": rel, "entries": [e.__dict__ for e in entries]})

    @api
    async def facts(request: Request) -> Response:
        path = root.file(request.query_params.get("path", ""))
        return JSONResponse(await run_in_threadpool(_guard, clip_facts, path))

    @api
    async def preview(request: Request) -> Response:
        data = await body_json(request)
        if not isinstance(data, dict) or not isinstance(data.get("frame"), int):
            raise SettingsError("preview: give the job settings and a whole-number 'frame'")
        frame = data.pop("frame")
        opts = JobSettings.from_json({**data, "output": ""}).upscale_options(
            root, with_output=False)
        return JSONResponse(await run_in_threadpool(_guard, previewer.preview, opts, frame))

    @api
    async def upload(request: Request) -> Response:
        q = request.query_params
        folder = root.folder(q.get("dir", ""))
        name = root.check_name(q.get("name", ""))
        if Path(name).suffix.lower() not in VIDEO_SUFFIXES:
            raise UploadError(f"{name}: not a video file name (use one of "
                              f"{', '.join(sorted(VIDEO_SUFFIXES))})")
        target = folder / name
        if target.exists() and q.get("overwrite") != "1":
            raise JobConflictError(f"{root.relative(target)} exists; confirm to replace it")
        limit = settings.max_upload
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise UploadError(f"{name} is {int(declared)} bytes; the limit is {limit} bytes "
                              "(vsvsr serve --max-upload)", 413)
        size = 0
        with atomic_write(target) as fh:  # a hidden temporary file, renamed when complete
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise UploadError(f"{name} is larger than the limit of {limit} bytes "
                                      "(vsvsr serve --max-upload); nothing was kept", 413)
                await run_in_threadpool(fh.write, chunk)
            if size == 0:
                raise UploadError(f"{name}: the upload was empty; nothing was kept")
        log.info("vsvsr serve: uploaded %s (%d bytes)", target, size)
        return JSONResponse({"path": root.relative(target), "bytes": size}, status_code=201)

    @api
    async def jobs(request: Request) -> Response:
        if request.method == "POST":
            job_settings = JobSettings.from_json(await body_json(request))
            job = await run_in_threadpool(manager.submit, job_settings)
            return JSONResponse(job.to_dict(), status_code=201)
        listed = await run_in_threadpool(store.list)
        return JSONResponse({"jobs": [j.to_dict() for j in listed],
                             "running": manager.running()})

    @api
    async def job(request: Request) -> Response:
        return JSONResponse((await run_in_threadpool(store.get, job_id(request))).to_dict())

    @api
    async def cancel(request: Request) -> Response:
        return JSONResponse((await run_in_threadpool(manager.cancel, job_id(request))).to_dict())

    @api
    async def events(request: Request) -> Response:
        jid = job_id(request)
        await run_in_threadpool(store.get, jid)  # 404 now rather than an empty stream

        async def stream() -> AsyncIterator[str]:
            import anyio

            last = None
            while True:
                current = await run_in_threadpool(store.get, jid)
                text = json.dumps(current.to_dict())
                if text != last:
                    yield f"event: job\ndata: {text}\n\n"
                    last = text
                if current.state in FINAL:
                    yield "event: end\ndata: {}\n\n"
                    return
                if await request.is_disconnected():
                    return
                await anyio.sleep(EVENT_POLL)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @api
    async def download(request: Request) -> Response:
        current = await run_in_threadpool(store.get, job_id(request))
        if current.state != DONE:
            raise JobStateError(f"job {current.id} is {current.state}; only a finished job has "
                                "a file to download")
        path = root.file(current.output)
        return FileResponse(path, filename=path.name)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        manager.start()
        try:
            yield
        finally:
            await run_in_threadpool(manager.close)

    routes = [
        Route("/", index),
        Route("/api/config", config),
        Route("/api/files", files),
        Route("/api/facts", facts),
        Route("/api/preview", preview, methods=["POST"]),
        Route("/api/upload", upload, methods=["PUT"]),
        Route("/api/jobs", jobs, methods=["GET", "POST"]),
        Route("/api/jobs/{job}", job),
        Route("/api/jobs/{job}/cancel", cancel, methods=["POST"]),
        Route("/api/jobs/{job}/events", events),
        Route("/api/jobs/{job}/download", download),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.manager, app.state.store, app.state.root = manager, store, root
    return app
