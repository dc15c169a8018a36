"""`POST /webhooks/changes`: deploys, rollbacks, config and feature-flag changes posted by CI/CD
pipelines, authorised by a bearer token (`CHANGES_WEBHOOK_TOKEN`). The body is one change or a
JSON list of them:

    {"service": "checkout", "kind": "deploy", "version": "v2.14.0",
     "previous_version": "v2.13.2", "description": "Faster cart totals", "author": "ci",
     "link": "https://ci.example.com/builds/1234", "occurred_at": "2026-11-20T03:00:00Z",
     "id": "optional sender id"}

`service`, `kind` and `occurred_at` (with a time zone) are required. Each change is one inbox item
keyed by its natural key (the sender's `id`, else service + kind + version + time), so a
pipeline's retry is answered 202 and ignored.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, RootModel, StringConstraints

from bot.webhooks.bodies import parse_json, read_body, require_json
from bot.webhooks.errors import validate
from bot.webhooks.fields import in_range
from bot.webhooks.intake import intake_of
from bot.webhooks.tokens import require_bearer
from knowledge.changes import ChangeKind, natural_key
from knowledge.inbox import InboxEntry

SOURCE = "changes"
RECORDED_AS = "webhook"  # the `source` of the changes this webhook records
WHAT = "change report (see the README for its fields)"

Short = Annotated[str, StringConstraints(max_length=200)]


class ChangeNotice(BaseModel):
    """One change as a pipeline reports it."""

    service: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                              max_length=200)]
    kind: ChangeKind
    occurred_at: Annotated[AwareDatetime, AfterValidator(in_range)]
    version: Short | None = None
    previous_version: Short | None = None
    description: str = ""  # kept up to 4,000 characters
    author: Short | None = None
    link: Annotated[str, StringConstraints(max_length=2000)] | None = None
    id: Short | int | None = None

    @property
    def sender_id(self) -> str | None:
        return None if self.id is None or self.id == "" else str(self.id)

    @property
    def key(self) -> str:
        return natural_key(service=self.service, kind=self.kind, version=self.version,
                           occurred_at=self.occurred_at, external_id=self.sender_id)


class ChangeBatch(RootModel[list[ChangeNotice]]):
    root: list[ChangeNotice] = Field(min_length=1)


def notices(data: Any) -> list[ChangeNotice]:
    """The changes of a body: one object, or a non-empty list of them."""
    if isinstance(data, list):
        return validate(ChangeBatch, data, what=WHAT).root
    return [validate(ChangeNotice, data, what=WHAT)]


def inbox_entries(changes: list[ChangeNotice]) -> list[InboxEntry]:
    return [InboxEntry(source=SOURCE, key=c.key, payload=c.model_dump(mode="json"))
            for c in changes]


def notice_from_item(payload: dict[str, Any]) -> ChangeNotice:
    return ChangeNotice.model_validate(payload)


def router() -> APIRouter:
    api = APIRouter()

    @api.post("/webhooks/changes", status_code=202)
    async def changes_webhook(request: Request, org: str | None = None) -> JSONResponse:
        intake = intake_of(request)
        target = await intake.org(org)
        require_bearer(request, target, digest=target.changes_token_sha256,
                       env_token=intake.settings.changes_webhook_token,
                       setting="CHANGES_WEBHOOK_TOKEN", option="--changes",
                       hint="set it and have the pipeline send it as "
                            "'Authorization: Bearer <token>'")
        require_json(request)
        body = await read_body(request, limit=intake.settings.max_body_bytes)
        result = await intake.store(org, inbox_entries(notices(parse_json(body))))
        return JSONResponse({"accepted": result.accepted, "duplicates": result.duplicates},
                            status_code=202)

    return api
