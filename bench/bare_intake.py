"""The intake baseline: a bare FastAPI endpoint that does one INSERT, served the same way."""

from __future__ import annotations

import json
import os
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from nurture.db import make_engine

engine = make_engine(os.environ["BENCH_DATABASE_URL"])
with engine.begin() as connection:
    connection.execute(
        text("CREATE TABLE IF NOT EXISTS bare_signups (id uuid PRIMARY KEY, body jsonb)")
    )
app = FastAPI()


@app.post("/api/v1/signups")
async def signup(request: Request) -> JSONResponse:
    body = await request.json()
    lead_id = uuid.uuid4()

    def store() -> None:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO bare_signups (id, body) VALUES (:id, CAST(:body AS jsonb))"),
                {"id": lead_id, "body": json.dumps(body)},
            )

    await run_in_threadpool(store)
    return JSONResponse({"lead_id": str(lead_id)}, status_code=201)
