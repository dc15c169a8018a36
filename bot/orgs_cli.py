"""`sre-copilot orgs add|list|rotate`: the orgs (tenants) and their own credentials. `add` makes
an org and prints its generated Alertmanager and changes tokens — shown once, stored as digests;
`rotate` makes new ones (the old stop working at once) or replaces the PagerDuty secrets; `list`
shows what each org has set, never a secret."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from bot.outgoing import unredacted_stdout
from bot.settings import Settings
from knowledge.orgs import NewTokens, Org, OrgExists, OrgNotFound, create_org, get_org, list_orgs
from knowledge.orgs import rotate as rotate_org


class OrgsError(Exception):
    """A refused command; the message says why (exit 2)."""


def add_parser(sub: Any) -> None:
    orgs = sub.add_parser("orgs", help="orgs (tenants) and their own credentials")
    orgs_sub = orgs.add_subparsers(dest="orgs_command", required=True, metavar="ACTION")
    add = orgs_sub.add_parser("add", help="create an org; prints its alertmanager_token and "
                                          "changes_token (shown once)")
    add.add_argument("slug", help="the org's slug, used as ?org=SLUG on the webhooks")
    add.add_argument("--name", help="a display name (default: the slug)")
    add.add_argument("--pagerduty-secret", action="append", default=[], metavar="S",
                     help="its PagerDuty webhook signing secret (repeat while rotating)")
    add.add_argument("--digest-slack-channel", metavar="CHANNEL",
                     help="the Slack channel id its weekly digest goes to")
    add.add_argument("--json", action="store_true", help="print the result as JSON")
    listing = orgs_sub.add_parser("list", help="the orgs and which credentials each has")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    rot = orgs_sub.add_parser("rotate", help="new tokens for an org (the old stop working), "
                                             "or new PagerDuty secrets")
    rot.add_argument("slug")
    rot.add_argument("--alertmanager", action="store_true", help="a new alertmanager_token")
    rot.add_argument("--changes", action="store_true", help="a new changes_token")
    rot.add_argument("--pagerduty-secret", action="append", metavar="S",
                     help="replace its PagerDuty secrets with these (repeatable)")
    rot.add_argument("--digest-slack-channel", metavar="CHANNEL",
                     help="change where its weekly digest goes")
    rot.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.startup import prepare_database
    from bot.webhooks.intake import ORG_SLUG

    slug: str = getattr(args, "slug", None) or ""
    if args.orgs_command != "list" and not ORG_SLUG.fullmatch(slug):
        raise OrgsError(f"{slug!r} is not a slug: letters, digits, '.', '_' and '-', at most 64")
    db = await prepare_database(settings)
    try:
        async with db.session() as session, session.begin():
            if args.orgs_command == "list":
                orgs = await list_orgs(session)
                _print_list(orgs, settings, as_json=args.json)
                return 0
            if args.orgs_command == "add":
                try:
                    org, tokens = await create_org(
                        session, slug=slug, name=args.name,
                        pagerduty_secrets=args.pagerduty_secret,
                        digest_slack_channel=args.digest_slack_channel)
                except OrgExists as exc:
                    raise OrgsError(str(exc)) from exc
            else:
                try:
                    org = await get_org(session, slug=slug)
                except OrgNotFound as exc:
                    raise OrgsError(f"{exc}; `sre-copilot orgs add {slug}` creates it") from exc
                if not (args.alertmanager or args.changes or args.pagerduty_secret is not None
                        or args.digest_slack_channel is not None):
                    raise OrgsError("say what to rotate: --alertmanager, --changes, "
                                    "--pagerduty-secret S or --digest-slack-channel C")
                tokens = rotate_org(org, alertmanager=args.alertmanager, changes=args.changes,
                                    pagerduty_secrets=args.pagerduty_secret)
                if args.digest_slack_channel is not None:
                    org.digest_slack_channel = args.digest_slack_channel or None
                session.add(org)
        _print_tokens(org, tokens, as_json=args.json)
        return 0
    finally:
        await db.dispose()


def _summary(org: Org, settings: Settings) -> dict[str, Any]:
    default = org.slug == settings.default_org
    return {"slug": org.slug, "name": org.name,
            "alertmanager_token": bool(org.alertmanager_token_sha256) or (
                default and bool(settings.alertmanager_webhook_token)),
            "changes_token": bool(org.changes_token_sha256) or (
                default and bool(settings.changes_webhook_token)),
            "pagerduty_secrets": len(org.pagerduty_secrets or []) + (
                len(settings.pagerduty_secrets) if default else 0),
            "digest_slack_channel": org.digest_slack_channel or (
                settings.digest_slack_channel if default else None),
            "slack_team_id": org.slack_team_id, "teams_tenant_id": org.teams_tenant_id}


def _print_list(orgs: list[Org], settings: Settings, *, as_json: bool) -> None:
    rows = [_summary(o, settings) for o in orgs]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        have = [name for name in ("alertmanager_token", "changes_token") if row[name]]
        print(f"{row['slug']:<20} {row['name']:<24} tokens: {', '.join(have) or 'none'}; "
              f"PagerDuty secrets: {row['pagerduty_secrets']}; digest to Slack: "
              f"{row['digest_slack_channel'] or '-'}")


def _print_tokens(org: Org, tokens: NewTokens, *, as_json: bool) -> None:
    made = {"slug": org.slug, "alertmanager_token": tokens.alertmanager_token,
            "changes_token": tokens.changes_token,
            "pagerduty_secrets": len(org.pagerduty_secrets or []),
            "digest_slack_channel": org.digest_slack_channel}
    # Past the CLI's redaction: these tokens are what the operator asked for.
    out = unredacted_stdout()
    if as_json:
        print(json.dumps({k: v for k, v in made.items() if v is not None}, indent=2), file=out)
        return
    print(f"org {org.slug}:", file=out)
    if tokens.alertmanager_token:
        print(f"  alertmanager_token: {tokens.alertmanager_token}", file=out)
        print(f"    Alertmanager: url …/webhooks/alertmanager?org={org.slug}, "
              "http_config.authorization.credentials: this token", file=out)
    if tokens.changes_token:
        print(f"  changes_token: {tokens.changes_token}", file=out)
        print(f"    pipelines: POST …/webhooks/changes?org={org.slug} with "
              "'Authorization: Bearer <token>'", file=out)
    print(f"  PagerDuty secrets: {made['pagerduty_secrets']}"
          f" (webhook URL …/webhooks/pagerduty?org={org.slug})", file=out)
    if tokens.alertmanager_token or tokens.changes_token:
        print("  Shown once: keep them now (only their digests are stored).", file=out)
