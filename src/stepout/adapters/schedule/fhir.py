"""Schedules as a FHIR Bundle of Appointment resources (JSON), checked with `fhir.resources`
(docs/schedules.md).

Each entry whose resource is an Appointment is one appointment; other resources (the
Practitioners, Patients and Locations an Appointment refers to, say) are passed over. An
Appointment must be valid FHIR R5 or R4B. It maps to Stepout as:
- id: the resource's `id`;
- therapist, client, room: the ids of the `participant` actors that are a `Practitioner/…`,
  a `Patient/…` (or R5's `subject`) and a `Location/…` (relative or absolute references);
- modality: `telehealth` when the Appointment has a `virtualService` or a `class` coded `VR`
  (HL7 ActCode "virtual"), else `in_person`;
- billed codes: the CPT codings (system `http://www.ama-assn.org/go/cpt`) of `serviceType`;
- `start` and `end`; `status` `cancelled` or `entered-in-error` cancels.
Comments, descriptions, reasons and patient instructions are never read.

Places are `entry[i]`, the entry's index in `Bundle.entry` counted from 0 as FHIRPath does.
"""

from collections.abc import Iterator
from typing import Any, Final

import orjson
from fhir.resources.appointment import Appointment as R5Appointment
from fhir.resources.R4B.appointment import Appointment as R4BAppointment
from pydantic import ValidationError

from stepout.domain.schedule import Raw, ScheduleError

CPT: Final = "http://www.ama-assn.org/go/cpt"
CANCELLED: Final = frozenset({"cancelled", "entered-in-error"})
ROLES: Final = {"Practitioner": "therapist", "Patient": "client", "Location": "room"}
NAMES: Final = {
    "therapist": "participant",
    "client": "participant",
    "room": "participant",
    "modality": "class",
    "billed_codes": "serviceType",
}
SHOWN_PROBLEMS: Final = 3


class FhirFileError(ValueError):
    """The file as a whole is not a FHIR Bundle."""

    def __init__(self, errors: list[ScheduleError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


def read_fhir(data: bytes, practice: str) -> Iterator[Raw]:
    """The appointments of a FHIR Bundle for `practice`. Raises `FhirFileError` when the
    file is not a JSON Bundle."""
    try:
        bundle = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise FhirFileError([ScheduleError("bundle", "json", f"{e.msg}")]) from None
    if type(bundle) is not dict or bundle.get("resourceType") != "Bundle":
        raise FhirFileError([ScheduleError("bundle", "resourceType", "must be Bundle")])
    entries = bundle.get("entry", [])
    if type(entries) is not list:
        raise FhirFileError([ScheduleError("bundle", "entry", "must be a list")])
    for index, entry in enumerate(entries):
        place = f"entry[{index}]"
        resource = entry.get("resource") if type(entry) is dict else None
        if type(resource) is not dict:
            error = ScheduleError(place, "resource", "is missing")
            yield Raw(place, (index, 0), {}, errors=(error,))
        elif resource.get("resourceType") == "Appointment":
            yield _raw(resource, index, practice)


def _problems(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """Why the resource is neither valid R5 nor valid R4B (the R5 reasons), or nothing."""
    try:
        R5Appointment.model_validate(resource)
        return []
    except ValidationError as r5:
        try:
            R4BAppointment.model_validate(resource)
            return []
        except ValidationError:
            pass
        found = []
        for problem in r5.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in problem["loc"] if part != "__root__")
            found.append((where or "resource", str(problem["msg"])))
        return found


def _actor_id(reference: object) -> tuple[str, str] | None:
    """(type, id) of a `Type/id` reference, relative or absolute."""
    if type(reference) is not str:
        return None
    parts = reference.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] in ROLES and parts[-1]:
        return parts[-2], parts[-1]
    return None


def _raw(resource: dict[str, Any], index: int, practice: str) -> Raw:
    place = f"entry[{index}]"
    errors = [
        ScheduleError(place, where, f"is not valid FHIR: {message}")
        for where, message in _problems(resource)[:SHOWN_PROBLEMS]
    ]
    fields: dict[str, Any] = {
        "id": resource.get("id"),
        "practice": practice,
        "start": resource.get("start"),
        "end": resource.get("end"),
    }
    actors: dict[str, list[str]] = {role: [] for role in ROLES.values()}
    participants = resource.get("participant") or []
    subject = resource.get("subject")
    references = [p.get("actor", {}).get("reference") for p in participants if type(p) is dict]
    if type(subject) is dict:
        references.append(subject.get("reference"))
    for reference in references:
        found = _actor_id(reference)
        if found is not None and found[1] not in actors[ROLES[found[0]]]:
            actors[ROLES[found[0]]].append(found[1])
    for role, ids in actors.items():
        if len(ids) > 1:
            errors.append(ScheduleError(place, "participant", f"names more than one {role}"))
        fields[role] = ids[0] if ids else None
    fields["modality"] = "telehealth" if _virtual(resource) else "in_person"
    fields["billed_codes"] = _cpt_codes(resource.get("serviceType") or [])
    cancelled = resource.get("status") in CANCELLED
    return Raw(place, (index, 0), fields, cancelled, errors=tuple(errors), names=NAMES)


def _codings(concept: object) -> list[dict[str, Any]]:
    if type(concept) is not dict:
        return []
    codings = concept.get("coding") or []
    return [c for c in codings if type(c) is dict]


def _virtual(resource: dict[str, Any]) -> bool:
    if resource.get("virtualService"):
        return True
    classes = resource.get("class") or []
    return any(c.get("code") == "VR" for concept in classes for c in _codings(concept))


def _cpt_codes(service_types: list[Any]) -> list[str]:
    codes: list[str] = []
    for item in service_types:
        # R4B: a CodeableConcept; R5: a CodeableReference whose `concept` is one.
        concept = item.get("concept", item) if type(item) is dict else None
        for coding in _codings(concept):
            if coding.get("system") == CPT and type(coding.get("code")) is str:
                codes.append(coding["code"])
    return codes
