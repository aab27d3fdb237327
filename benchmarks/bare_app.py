"""Servers for `bench_ingest.py`, run as `python benchmarks/bare_app.py --port P [--app ...]`.

- `--app bare` (phase d, the HTTP ceiling): a Litestar app whose `POST /v1/track` reads the
  body, decodes it with msgspec and answers like the real endpoint, touching no database.
  None of the ingest API's middleware (request ids, Prometheus, CORS, security headers), key
  lookup, normalization or group commit is there.
- `--app orm` (phase e, context only): the real normalizer, then one SQLAlchemy ORM INSERT and
  one COMMIT per request (the naive design group commit replaces). No key lookup.
- `--app lytics`: the real ingest app, for trying uvicorn loop/http choices that
  `python -m lytics_ingest_api` does not expose (`--loop asyncio --http h11`).

Every app is served with the same uvicorn arguments as `lytics_ingest_api/__main__.py`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import uvicorn
from litestar import Litestar, Request, get, post

if __package__ in (None, ""):
    # `python benchmarks/bare_app.py`: uvicorn imports this module as `bare_app`.
    sys.path.insert(0, str(Path(__file__).resolve().parent))

OUTER_BODY_LIMIT = 6 * 1024 * 1024  # as lytics_ingest_api.app


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@post("/v1/track", status_code=200)
async def bare_track(request: Request[Any, Any, Any]) -> dict[str, Any]:
    event = msgspec.json.decode(await request.body())
    message_id = event.get("messageId") if isinstance(event, dict) else None
    return {"success": True, "messageId": message_id, "status": "accepted"}


def create_app() -> Litestar:
    """Phase (d): HTTP + body + JSON decode, nothing else."""
    return Litestar(
        route_handlers=[health, bare_track],
        request_max_body_size=OUTER_BODY_LIMIT,
        logging_config=None,
    )


def create_orm_app() -> Litestar:
    """Phase (e): one ORM INSERT + COMMIT per request (connections act as `lytics_ingest`)."""
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
    from sqlalchemy.orm import DeclarativeBase

    from lytics.warehouse import tables
    from lytics.warehouse.urls import render, with_driver
    from lytics_ingest_api.events.normalize import RequestContext, segment_event

    class Base(DeclarativeBase):
        pass

    class Event(Base):
        __table__ = tables.events

    project_id = int(os.environ["BENCH_PROJECT_ID"])
    engine = create_async_engine(
        render(with_driver(os.environ["DATABASE_URL"], "psycopg")),
        connect_args={"prepare_threshold": None, "options": "-c role=lytics_ingest"},
        pool_size=10,
        max_overflow=0,
    )
    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await engine.dispose()

    @post("/v1/track", status_code=200)
    async def orm_track(request: Request[Any, Any, Any]) -> dict[str, Any]:
        event = msgspec.json.decode(await request.body())
        ctx = RequestContext(
            project_id=project_id,
            received_at=datetime.now(UTC),
            source="segment",
            max_event_bytes=32 * 1024,
            max_future=timedelta(hours=23),
            ip=request.client.host if request.client else None,
            user_agent=request.headers.get("user-agent"),
        )
        row = segment_event(event, ctx, "track")
        values = {name: getattr(row, name) for name in row.__slots__}
        values["payload"] = msgspec.json.decode(values["payload"])
        async with sessions() as session:
            session.add(Event(**values))
            await session.commit()
        return {"success": True, "messageId": row.message_id, "status": "accepted"}

    return Litestar(
        route_handlers=[health, orm_track],
        lifespan=[lifespan],
        request_max_body_size=OUTER_BODY_LIMIT,
        logging_config=None,
    )


def create_lytics_app() -> Any:
    """The real app, as `python -m lytics_ingest_api` builds it."""
    from lytics_ingest_api.app import create_app as create_lytics

    return create_lytics()


TARGETS = {
    "bare": "bare_app:create_app",
    "orm": "bare_app:create_orm_app",
    "lytics": "bare_app:create_lytics_app",
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python benchmarks/bare_app.py")
    parser.add_argument("--app", choices=sorted(TARGETS), default="bare")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--loop", default="auto", help="uvicorn --loop (auto picks uvloop)")
    parser.add_argument("--http", default="auto", help="uvicorn --http (auto picks httptools)")
    args = parser.parse_args()
    if args.app == "lytics":
        from lytics.logs import configure_logging
        from lytics.settings import get_settings

        settings = get_settings()
        configure_logging(settings.log_level, settings.log_format)
    # The same arguments as lytics_ingest_api/__main__.py, plus the loop/http choice.
    uvicorn.run(
        TARGETS[args.app],
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop=args.loop,
        http=args.http,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=8,
    )


if __name__ == "__main__":
    main()
