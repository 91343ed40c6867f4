"""`GET /findings`: the audit of the caller's practice, with the filters of `stepout audit`.

Paginated with `limit`/`offset`; the answer is the JSON array of `stepout audit --format json`
(that page of it), each finding with two more fields: its stable `key` and its `review`
(state, assignee, who acknowledged and resolved it, when, with their notes); the total in
`X-Total-Count` and the next page in a `Link: rel="next"` header. A therapist gets the
findings about their own sessions and those a supervisor assigned to them; a biller gets the
review state without its notes."""

from datetime import date
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from stepout.domain.instants import InstantError, parse_instant
from stepout.policy.model import RULE_IDS
from stepout.services.audit import span_target
from stepout.services.ports import Selection
from stepout.services.reporting import run_audit
from stepout.services.reviews import (
    Reviewed,
    assigned_elsewhere,
    sees_review_notes,
    with_reviews,
)
from stepout.web.api.reviews import review_json
from stepout.web.api.schemas import bad_input
from stepout.web.audit import record_read
from stepout.web.security import ApiUser, State, require

router = APIRouter(tags=["findings"])

DEFAULT_LIMIT: Final = 1000
MAX_LIMIT: Final = 10_000


@router.get(
    "/findings",
    responses={
        200: {
            "headers": {
                "X-Total-Count": {"description": "Findings over all pages."},
                "Link": {"description": 'The next page, as rel="next", while there is one.'},
            }
        },
        403: {"description": "A therapist asked for another therapist's findings."},
    },
)
def findings(
    request: Request,
    response: Response,
    user: ApiUser,
    state: State,
    date_from: Annotated[
        date | None, Query(alias="from", description="First session date, inclusive.")
    ] = None,
    date_to: Annotated[
        date | None, Query(alias="to", description="Last session date, inclusive.")
    ] = None,
    rule: Annotated[list[str] | None, Query(description="Only these rules (repeatable).")] = None,
    severity: Annotated[Literal["violation", "warning"] | None, Query()] = None,
    therapist: Annotated[str | None, Query(description="One therapist's id.")] = None,
    as_of: Annotated[
        str | None,
        Query(description="Judge deadlines at this ISO 8601 time with an offset (default: now)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """The findings of the caller's practice (a therapist's: their own), in audit order."""
    require(user, "findings.read")
    unknown = sorted(set(rule or ()) - set(RULE_IDS))
    if unknown:
        raise bad_input("rule", f"unknown rule {unknown[0]}; the rules are: {', '.join(RULE_IDS)}")
    if date_from and date_to and date_to < date_from:
        raise bad_input("to", "is before from")
    instant = state.now() if as_of is None else _instant(as_of)
    if user.role == "therapist":
        if therapist not in (None, user.id):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "A therapist reads only their own findings."
            )
        therapist = user.id
    selection = Selection(
        date_from=date_from, date_to=date_to, practice=user.practice, therapist=therapist
    )
    with state.db.uow(read_only=True) as uow:
        own = run_audit(uow.records, selection, state.policy, instant, rule or None)
        found = with_reviews(uow.reviews, user.practice, own)
        if user.role == "therapist":
            assigned = assigned_elsewhere(uow, user, selection, state.policy, instant)
            found += [r for r in assigned if rule is None or r.finding.rule in rule]
    if severity is not None:
        found = [r for r in found if r.finding.severity == severity]
    page = found[offset : offset + limit]
    record_read(state, "findings.read", span_target(date_from, date_to), count=len(page))
    response.headers["X-Total-Count"] = str(len(found))
    if offset + limit < len(found):
        following = request.url.include_query_params(offset=offset + limit, limit=limit)
        response.headers["Link"] = f'<{following}>; rel="next"'
    notes = sees_review_notes(user)
    return [_json(r, notes) for r in page]


def _json(reviewed: Reviewed, notes: bool) -> dict[str, Any]:
    review = review_json(reviewed.review)
    if not notes:
        review["acknowledged_note"] = review["resolved_note"] = None
    return {**reviewed.finding.as_dict(), "key": review.pop("key"), "review": review}


def _instant(text: str) -> int:
    try:
        return parse_instant(text)
    except InstantError as e:
        raise bad_input("as_of", f"{e}; expected like 2026-11-30T18:00:00+00:00") from None
