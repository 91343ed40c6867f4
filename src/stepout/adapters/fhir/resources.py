"""Stepout's records as FHIR resources (R5 or R4B), as plain JSON dicts in FHIR's JSON form.

Each builder returns the resource as it is written to the Bundle; `validated` checks it
against its `fhir.resources` model first (docs/fhir.md: what maps to what, and why).
"""

import importlib
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any, Final

from stepout.adapters.fhir.codes import (
    ACT_CODE,
    CLASS_OF_MODALITY,
    CLIENT_ID,
    CLIENT_INFORMED,
    CPT,
    EMS_DECISION,
    EXIT_ID,
    EXIT_REASON,
    PARTICIPATION_TYPE,
    POLICY_VERSION,
    PRACTICE_ID,
    ROOM_ID,
    RULE,
    SESSION_ID,
    THERAPIST_ID,
    UCUM,
    Release,
    extension,
    full_url,
    resource_id,
)
from stepout.domain.facetime import ExitSpan, net_minutes
from stepout.domain.instants import Instant, format_instant
from stepout.domain.records import Exit, Session
from stepout.policy.findings import Finding

Json = dict[str, Any]

EMS_EXTENSION: Final = extension("ems-decision")  # R4B's AdverseEvent has no mitigatingAction
SEVERITY: Final = {"violation": "high", "warning": "moderate"}
_PACKAGE: Final = {"r5": "fhir.resources", "r4b": "fhir.resources.R4B"}


@cache
def model_class(release: Release, resource_type: str) -> Any:
    """The `fhir.resources` model of a resource type in a release."""
    module = importlib.import_module(f"{_PACKAGE[release]}.{resource_type.lower()}")
    return getattr(module, resource_type)


def validated(release: Release, resource: Json) -> Json:
    """`resource`, once its model accepts it (pydantic's ValidationError if not). What is
    written is this dict, not the model's own serialization: the same JSON, in half the time."""
    model_class(release, resource["resourceType"]).model_validate(resource)
    return resource


def _concept(system: str, code: str) -> Json:
    return {"coding": [{"system": system, "code": code}]}


def _identifier(system: str, value: str) -> list[Json]:
    return [{"system": system, "value": value}]


def _ref(resource_type: str, *key: str | None) -> Json:
    return {"reference": full_url(resource_id(resource_type, *key))}


def _at(instant: Instant) -> str:
    return format_instant(instant)


# -- The directory: who, whom, where, whose.


def organization(practice: str) -> Json:
    return {
        "resourceType": "Organization",
        "id": resource_id("Organization", practice),
        "identifier": _identifier(PRACTICE_ID, practice),
    }


def practitioner(practice: str, therapist: str) -> Json:
    return {
        "resourceType": "Practitioner",
        "id": resource_id("Practitioner", practice, therapist),
        "identifier": _identifier(THERAPIST_ID, therapist),
    }


def patient(practice: str, client: str) -> Json:
    """Pseudonymous: the client's id, nothing else."""
    return {
        "resourceType": "Patient",
        "id": resource_id("Patient", practice, client),
        "identifier": _identifier(CLIENT_ID, client),
    }


def location(practice: str, room: str) -> Json:
    return {
        "resourceType": "Location",
        "id": resource_id("Location", practice, room),
        "identifier": _identifier(ROOM_ID, room),
        "mode": "instance",
        "managingOrganization": _ref("Organization", practice),
    }


# -- One session.


def presence(start: Instant, end: Instant, exits: Iterable[ExitSpan]) -> list[tuple[int, int]]:
    """The therapist's presence intervals: `[start, end]` minus the exits (clipped to it; one
    that never returned lasts to `end`), with the same arithmetic as `facetime.absent_micros`.
    Empty intervals are left out."""
    gaps = sorted(
        (max(lo, start), end if hi is None or hi > end else hi)
        for lo, hi in exits
        if (end if hi is None or hi > end else hi) > max(lo, start)
    )
    found: list[tuple[int, int]] = []
    at = start
    for lo, hi in gaps:
        if lo > at:
            found.append((at, lo))
        at = max(at, hi)
    if end > at:
        found.append((at, end))
    return found


def _spans(exits: Iterable[Exit]) -> list[ExitSpan]:
    return [(x.left_at, x.returned_at) for x in exits]


def encounter(release: Release, session: Session, end: Instant, exits: Iterable[Exit]) -> Json:
    """One Encounter per ended session: one therapist participant per presence interval (the
    gaps are the exits), `length` the net face-to-face minutes, the billed CPT codes as types."""
    s = session
    spans = _spans(exits)
    actor = "actor" if release == "r5" else "individual"
    who = _ref("Practitioner", s.practice, s.therapist)
    role = [_concept(PARTICIPATION_TYPE, "PPRF")]
    intervals = presence(s.start, end, spans)
    participants: list[Json] = [
        {"type": role, "period": {"start": _at(lo), "end": _at(hi)}, actor: who}
        for lo, hi in intervals
    ] or [{"type": role, actor: who}]  # absent throughout: the therapist, with no period
    code = CLASS_OF_MODALITY[s.modality]
    resource: Json = {
        "resourceType": "Encounter",
        "id": resource_id("Encounter", s.id),
        "identifier": _identifier(SESSION_ID, s.id),
        "status": "completed" if release == "r5" else "finished",
        "class": [_concept(ACT_CODE, code)]
        if release == "r5"
        else {"system": ACT_CODE, "code": code},
    }
    if s.billed_codes:
        resource["type"] = [_concept(CPT, c) for c in s.billed_codes]
    resource["subject"] = _ref("Patient", s.practice, s.client)
    resource["participant"] = participants
    resource["actualPeriod" if release == "r5" else "period"] = {
        "start": _at(s.start),
        "end": _at(end),
    }
    resource["length"] = {
        "value": net_minutes(s.start, end, spans),
        "unit": "min",
        "system": UCUM,
        "code": "min",
    }
    resource["location"] = [{"location": _ref("Location", s.practice, s.room)}]
    resource["serviceProvider"] = _ref("Organization", s.practice)
    return resource


def communication(release: Release, session: Session, end: Instant, x: Exit) -> Json | None:
    """What the client was told about an exit (None if they were not informed): when
    (`sent`: on leaving, or on return), before or after (`category`), the words (`payload`)."""
    if x.client_informed == "not_informed":
        return None
    s = session
    when = x.left_at if x.client_informed == "before_leaving" else (x.returned_at or end)
    resource: Json = {
        "resourceType": "Communication",
        "id": resource_id("Communication", x.id),
        "identifier": _identifier(EXIT_ID, x.id),
        "status": "completed",
        "category": [_concept(CLIENT_INFORMED, x.client_informed)],
        "subject": _ref("Patient", s.practice, s.client),
        "encounter": _ref("Encounter", s.id),
        "sent": _at(when),
        "recipient": [_ref("Patient", s.practice, s.client)],
        "sender": _ref("Practitioner", s.practice, s.therapist),
    }
    if x.reason is not None:
        reason = _concept(EXIT_REASON, x.reason)
        if release == "r5":
            resource["reason"] = [{"concept": reason}]
        else:
            resource["reasonCode"] = [reason]
    if x.explanation:
        # R5 has no plain string payload: the words are a concept's text.
        content = (
            {"contentCodeableConcept": {"text": x.explanation}}
            if release == "r5"
            else {"contentString": x.explanation}
        )
        resource["payload"] = [content]
    return resource


def adverse_event(release: Release, session: Session, x: Exit) -> Json | None:
    """A health emergency exit (None for any other), with the emergency-services decision."""
    if x.reason != "health_emergency":
        return None
    s = session
    event = _concept(EXIT_REASON, "health_emergency")
    ems = None if x.ems is None else _concept(EMS_DECISION, x.ems)
    resource: Json = {"resourceType": "AdverseEvent", "id": resource_id("AdverseEvent", x.id)}
    if release == "r5":
        resource["identifier"] = _identifier(EXIT_ID, x.id)
        resource["status"] = "completed"
        resource["actuality"] = "actual"
        resource["code"] = event
        resource["subject"] = _ref("Patient", s.practice, s.client)
        resource["encounter"] = _ref("Encounter", s.id)
        period = {"start": _at(x.left_at)}
        if x.returned_at is not None:
            period["end"] = _at(x.returned_at)
        resource["occurrencePeriod"] = period
        resource["detected"] = _at(x.left_at)
        resource["recorder"] = _ref("Practitioner", s.practice, s.therapist)
        if ems is not None:
            resource["mitigatingAction"] = [{"itemCodeableConcept": ems}]
        return resource
    if ems is not None:
        resource["extension"] = [{"url": EMS_EXTENSION, "valueCodeableConcept": ems}]
    resource["identifier"] = {"system": EXIT_ID, "value": x.id}
    resource["actuality"] = "actual"
    resource["event"] = event
    resource["subject"] = _ref("Patient", s.practice, s.client)
    resource["encounter"] = _ref("Encounter", s.id)
    resource["date"] = _at(x.left_at)
    resource["detected"] = _at(x.left_at)
    resource["recorder"] = _ref("Practitioner", s.practice, s.therapist)
    return resource


def detected_issue(
    release: Release, finding: Finding, session: Session | None, practice: str | None, as_of: int
) -> Json:
    """A finding of the policy audit: the rule (`code`), its severity, the policy version (an
    extension), and what it implicates: the session's Encounter and the exit (an identifier:
    exits are the Encounter's gaps, not resources), or the therapist's Practitioner. `session`
    is the finding's session (None for a finding about a therapist, whose `practice` is
    given)."""
    f = finding
    key = (f.rule, f.session, f.exit, f.therapist)
    implicated: list[Json] = []
    resource: Json = {
        "resourceType": "DetectedIssue",
        "id": resource_id("DetectedIssue", *key),
        "extension": [{"url": POLICY_VERSION, "valueString": f.policy_version}],
        "status": "final",
        "code": _concept(RULE, f.rule),
        "severity": SEVERITY[f.severity],
    }
    if session is not None:
        whom = _ref("Patient", session.practice, session.client)
        if release == "r5":
            resource["subject"] = whom
            resource["encounter"] = _ref("Encounter", session.id)
        else:
            resource["patient"] = whom
        implicated.append(_ref("Encounter", session.id))
        if f.exit is not None:
            implicated.append({"identifier": {"system": EXIT_ID, "value": f.exit}})
    elif f.therapist is not None:
        implicated.append(_ref("Practitioner", practice, f.therapist))
    resource["identifiedDateTime"] = _at(as_of)
    if implicated:
        resource["implicated"] = implicated
    resource["detail"] = f.message
    return resource


def entries_of_session(release: Release, session: Session, exits: Iterable[Exit]) -> Iterator[Json]:
    """The Encounter of an ended session, then, exit by exit (by time), its Communication and
    AdverseEvent."""
    end = session.end
    assert end is not None, "only ended sessions are exported"
    ordered = sorted(exits, key=lambda x: (x.left_at, x.id))
    yield encounter(release, session, end, ordered)
    for x in ordered:
        told = communication(release, session, end, x)
        if told is not None:
            yield told
        event = adverse_event(release, session, x)
        if event is not None:
            yield event
