"""Request bodies of the API (pydantic: a bad field is a 422 that names it) and the JSON
shapes of its answers (interchange fields, plus the live workflow's figures)."""

from typing import Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from stepout.domain.billing import reconcile
from stepout.domain.facetime import gross_minutes, net_minutes
from stepout.domain.instants import Instant
from stepout.domain.interchange import concern_to_dict, exit_to_dict, session_to_dict
from stepout.domain.records import Concern, Exit, Session
from stepout.domain.vocabulary import KNOWN_CODES

Text = Field(min_length=1, max_length=2000)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class NewSession(Body):
    """Either `client` and `room` (with a modality and codes), or an `appointment` alone, whose
    client, room, modality and codes the session takes (and its id)."""

    # First: the checks of the fields below read it.
    appointment: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="An appointment of the therapist's (`stepout import schedule`) to start",
    )
    client: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        validate_default=True,
        description="The client's id or code (required without an appointment)",
    )
    room: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        validate_default=True,
        description="A room of the practice (required without an appointment)",
    )
    modality: Literal["in_person", "telehealth"] | None = Field(
        default=None, description="Default: in_person"
    )
    billed_codes: list[str] = Field(default_factory=list, max_length=10)

    @field_validator("client", "room", "modality")
    @classmethod
    def _planned_or_given(cls, value: str | None, info: ValidationInfo) -> str | None:
        from_appointment = info.data.get("appointment") is not None
        if value is None and not from_appointment and info.field_name != "modality":
            raise ValueError("is required without an appointment")
        if value is not None and from_appointment:
            raise ValueError("must be left out: the appointment brings its own")
        return value

    @field_validator("billed_codes")
    @classmethod
    def _known_codes(cls, codes: list[str]) -> list[str]:
        for index, code in enumerate(codes):
            if code not in KNOWN_CODES:
                raise ValueError(f"item {index} is not a CPT code Stepout knows")
        return codes

    @field_validator("billed_codes")
    @classmethod
    def _no_codes_with_an_appointment(cls, codes: list[str], info: ValidationInfo) -> list[str]:
        if codes and info.data.get("appointment") is not None:
            raise ValueError("must be left out: the appointment brings its own")
        return codes


class NewExit(Body):
    reason: Literal["technical", "client_safety", "health_emergency", "other"]
    reason_note: str | None = Field(
        default=None,
        max_length=2000,
        validate_default=True,
        description="Why, in a few words: required when the reason is `other`",
    )
    explanation: str = Field(min_length=1, max_length=2000, description="Words said to the client")
    client_informed: bool = Field(description="The client was told before the therapist left")
    safeguards: list[Literal["records_secured", "screen_locked", "door_closed"]] = Field(
        default_factory=list, description="Confidentiality safeguards confirmed"
    )
    expected_minutes: int | None = Field(default=None, ge=1, le=600)
    client_attended_by: str | None = Field(default=None, max_length=200)
    ems: Literal["called", "not_needed"] | None = None
    ems_note: str | None = Field(default=None, max_length=2000)

    @field_validator("reason_note")
    @classmethod
    def _note_for_other(cls, note: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("reason") == "other" and not (note and note.strip()):
            raise ValueError("a note saying why is required when the reason is other")
        return note


class ReturnBody(Body):
    checked_in: bool = Field(description="The therapist checked in with the client on return")


class InformBody(Body):
    client_informed: Literal["after_return", "before_leaving"] = Field(
        default="after_return", description="When the client was told"
    )
    explanation: str = Field(min_length=1, max_length=2000, description="Words said to the client")


class SafeguardBody(Body):
    safeguard: Literal["records_secured", "screen_locked", "door_closed"]


class EmsBody(Body):
    ems: Literal["called", "not_needed"] = Field(description="Emergency services decision")
    note: str | None = Field(default=None, max_length=2000)


class AttendantBody(Body):
    client_attended_by: str = Field(
        min_length=1, max_length=200, description="Who stays with the client"
    )


class ClassifyBody(Body):
    reason: Literal["technical", "client_safety", "health_emergency", "other"]
    reason_note: str | None = Field(default=None, max_length=2000)


class AmendBody(Body):
    changes: dict[str, Any] = Field(
        min_length=1,
        max_length=20,
        description="Interchange field names and their new values (timestamps ISO 8601 with"
        " an offset)",
    )
    note: str = Field(min_length=1, max_length=2000, description="Why the record is amended")


def bad_input(field: str, reason: str) -> RequestValidationError:
    """A 422 in the shape of a validation error, for what pydantic does not check itself."""
    return RequestValidationError([{"loc": (field,), "msg": reason, "type": "value_error"}])


def session_json(
    session: Session,
    exits: list[Exit],
    at: Instant,
    concerns: list[Concern] | None = None,
) -> dict[str, Any]:
    """A session with its exits and its gross and net minutes (to now, while in progress)."""
    body = session_to_dict(session)
    body.pop("kind", None)
    end = session.end if session.end is not None else max(at, session.start)
    spans = [(x.left_at, x.returned_at) for x in exits]
    body["in_progress"] = session.in_progress
    body["gross_minutes"] = gross_minutes(session.start, end)
    body["net_minutes"] = net_minutes(session.start, end, spans)
    if session.end is not None:
        line = reconcile(session, exits)
        body["billing"] = {"status": line.status, "supported_codes": list(line.supported_codes)}
    body["exits"] = [exit_json(x) for x in exits]
    if concerns is not None:
        body["concerns"] = [concern_json(c) for c in concerns]
    return body


def exit_json(x: Exit) -> dict[str, Any]:
    body = exit_to_dict(x)
    body.pop("kind", None)
    body["expected_minutes"] = x.expected_minutes
    body["open"] = x.returned_at is None
    return body


def concern_json(c: Concern) -> dict[str, Any]:
    body = concern_to_dict(c)
    body.pop("kind", None)
    return body
