"""Encounters of a FHIR Bundle read as sessions of the records interchange (DESIGN.md).

Each finished Encounter (R5 `completed`, R4B `finished`) becomes one session dict, for the
records import to check and store; other statuses are skipped (counted). What an Encounter
must carry, and where each field of the session comes from, is in docs/fhir.md. Errors name
the entry's index in `Bundle.entry` (from 0, as FHIRPath counts) and the element; they quote no
value from the Bundle (it is health data).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from stepout.adapters.fhir.codes import (
    ACT_CODE,
    CLIENT_ID,
    CPT,
    MODALITY_OF_CLASS,
    PRACTICE_ID,
    ROOM_ID,
    SESSION_ID,
    THERAPIST_ID,
    Release,
)
from stepout.adapters.fhir.resources import Json, model_class
from stepout.adapters.fhir.scanning import bundle_items
from stepout.domain.instants import InstantError, parse_instant
from stepout.domain.validation.rejected import Rejected

FINISHED: Final = {"r5": "completed", "r4b": "finished"}
DIRECTORY: Final = frozenset({"Organization", "Practitioner", "Patient", "Location"})
Report = Callable[[str, str], None]  # (element, what is wrong) of the Encounter being read


@dataclass(frozen=True, slots=True)
class EntryError:
    """What is wrong with one element of one entry (`entry` None: the Bundle itself)."""

    entry: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = "" if self.entry is None else f"entry {self.entry}: "
        return f"{where}{self.field}: {self.message}"


class BundleRejected(Rejected[EntryError]):
    """The Bundle had errors; nothing was stored. `errors` holds all of them, by entry."""

    what = "Bundle"


@dataclass
class Encounters:
    """What a Bundle holds for the records import: each finished Encounter's session as a line
    of JSON Lines, with its entry index, and how many Encounters were not finished."""

    release: Release
    lines: list[bytes] = field(default_factory=list)
    entries: list[int] = field(default_factory=list)  # the entry index of each line
    skipped: int = 0
    errors: list[EntryError] = field(default_factory=list)


def period_field(release: Release) -> str:
    return "actualPeriod" if release == "r5" else "period"


# The element of an Encounter each session field comes from (for the records import's errors).
def field_path(release: Release, session_field: str) -> str:
    period = period_field(release)
    return {
        "id": "Encounter.identifier",
        "practice": "Encounter.serviceProvider",
        "therapist": "Encounter.participant",
        "client": "Encounter.subject",
        "room": "Encounter.location",
        "modality": "Encounter.class",
        "start": f"Encounter.{period}.start",
        "end": f"Encounter.{period}.end",
        "billed_codes": "Encounter.type",
    }.get(session_field, "Encounter")


def release_of(encounter: Json | None) -> Release:
    """R4B if an Encounter's `class` is one Coding (R5: a list of concepts), or it has a
    `period` and no `actualPeriod`; R5 otherwise (and with no Encounter)."""
    if encounter is None:
        return "r5"
    klass = encounter.get("class")
    if isinstance(klass, dict):
        return "r4b"
    if isinstance(klass, list):
        return "r5"
    return "r4b" if "period" in encounter and "actualPeriod" not in encounter else "r5"


def _resource(entry: Any) -> Json | None:
    resource = entry.get("resource") if isinstance(entry, dict) else None
    return resource if isinstance(resource, dict) else None


def read_encounters(
    data: bytes, release: Release | None = None, practice: str | None = None
) -> Encounters:
    """The sessions of the finished Encounters of a Bundle (`release` None: detected from the
    first Encounter). An Encounter that names no Organization belongs to `practice` (an error
    if that is None).

    Two passes over the text, one entry at a time: the first checks the JSON and keeps the
    Bundle's own members, the resources an Encounter may refer to and the first Encounter;
    the second reads the Encounters."""

    def refused(element: str, message: str) -> Encounters:
        found = Encounters(release or "r5")
        found.errors.append(EntryError(None, element, message))
        return found

    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return refused("Bundle", "not UTF-8 text")
    fields: dict[str, Any] = {}
    directory: dict[str, Json] = {}  # by fullUrl and by `Type/id`
    first: Json | None = None
    try:
        for kind, item in bundle_items(text):
            if kind == "field":
                name, value = item
                fields[name] = value
                continue
            resource = _resource(item)
            if resource is None:
                continue
            if resource.get("resourceType") in DIRECTORY:
                _index(directory, item, resource)
            elif first is None and resource.get("resourceType") == "Encounter":
                first = resource
    except json.JSONDecodeError as error:
        return refused("Bundle", f"not JSON: {error.msg} at character {error.pos}")
    if fields.get("resourceType") != "Bundle":
        return refused("Bundle.resourceType", "is not Bundle")
    if "entry" in fields:
        return refused("Bundle.entry", "is not a list")
    found = Encounters(release or release_of(first))
    reader = _Reader(found, directory, practice)
    index = 0
    for kind, item in bundle_items(text):
        if kind == "entry":
            reader.entry(index, item)
            index += 1
    return found


def _index(directory: dict[str, Json], entry: Json, resource: Json) -> None:
    if isinstance(url := entry.get("fullUrl"), str):
        directory[url] = resource
    kind, rid = resource.get("resourceType"), resource.get("id")
    if isinstance(kind, str) and isinstance(rid, str):
        directory.setdefault(f"{kind}/{rid}", resource)


class _Reader:
    def __init__(self, found: Encounters, directory: dict[str, Json], practice: str | None) -> None:
        self.found = found
        self.release = found.release
        self.practice = practice
        self.resources = directory
        self.seen: dict[str, int] = {}  # session id -> the entry that named it first

    def entry(self, index: int, entry: Any) -> None:
        resource = _resource(entry)
        if resource is None:
            self.found.errors.append(EntryError(index, "resource", "missing"))
            return
        if resource.get("resourceType") != "Encounter":
            return
        errors: list[EntryError] = []
        session = self._session(index, resource, errors)
        if session is None and not errors:
            self.found.skipped += 1
            return
        if session is not None and (first := self.seen.setdefault(session["id"], index)) != index:
            message = f"session {session['id']} is also entry {first}"
            errors.append(EntryError(index, "Encounter.identifier", message))
        if errors:
            self.found.errors.extend(errors)
        elif session is not None:
            self.found.lines.append(orjson.dumps(session))
            self.found.entries.append(index)

    def _session(self, index: int, resource: Json, errors: list[EntryError]) -> Json | None:
        """The session of one Encounter; None if it is not finished, or has errors (added)."""
        release = self.release
        try:
            model_class(release, "Encounter").model_validate(resource)
        except ValidationError as invalid:
            errors.extend(EntryError(index, _path(e["loc"]), _message(e)) for e in invalid.errors())
            return None
        if resource.get("status") != FINISHED[release]:
            return None

        def error(element: str, message: str) -> None:
            errors.append(EntryError(index, f"Encounter.{element}", message))

        session_id = _identified(resource, SESSION_ID)
        if session_id is None:
            error("identifier", "missing: neither a Stepout session identifier nor an id")
        period_name = period_field(release)
        period = resource.get(period_name) or {}
        start, end = (_instant(period.get(side), f"{period_name}.{side}", error) for side in
                      ("start", "end"))  # fmt: skip
        modality = self._modality(resource, error)
        therapist = self._therapist(resource, error)
        client = self._named(resource.get("subject"), "Patient", CLIENT_ID, "subject", error)
        places = resource.get("location") or [{}]
        room = self._named(places[0].get("location"), "Location", ROOM_ID, "location", error)
        practice = self._practice(resource, error)
        if errors:
            return None
        codes = [
            c["code"]
            for concept in resource.get("type") or []
            for c in concept.get("coding") or []
            if c.get("system") == CPT and isinstance(c.get("code"), str)
        ]
        return {
            "kind": "session",
            "id": session_id,
            "practice": practice,
            "therapist": therapist,
            "client": client,
            "room": room,
            "modality": modality,
            "start": start,
            "end": end,
            "billed_codes": codes,
        }

    def _modality(self, resource: Json, error: Report) -> str | None:
        klass = resource.get("class")
        codings = (
            [c for concept in klass for c in concept.get("coding") or []]
            if isinstance(klass, list)
            else [klass]
            if isinstance(klass, dict)
            else []
        )
        for coding in codings:
            if coding.get("system") == ACT_CODE and coding.get("code") in MODALITY_OF_CLASS:
                return MODALITY_OF_CLASS[coding["code"]]
        error("class", "missing: expected v3 ActCode AMB (in person) or VR (telehealth)")
        return None

    def _therapist(self, resource: Json, error: Report) -> str | None:
        actor = "actor" if self.release == "r5" else "individual"
        refs = [p.get(actor) for p in resource.get("participant") or [] if p.get(actor)]
        names = {
            name
            for ref in refs
            if (name := self._name(ref, "Practitioner", THERAPIST_ID)) is not None
        }
        if len(names) == 1:
            return names.pop()
        message = "missing: no Practitioner" if not names else "names more than one Practitioner"
        error("participant", message)
        return None

    def _practice(self, resource: Json, error: Report) -> str | None:
        ref = resource.get("serviceProvider")
        if ref is None:
            if self.practice is None:
                error("serviceProvider", "missing (or give the practice to import into)")
            return self.practice
        return self._named(ref, "Organization", PRACTICE_ID, "serviceProvider", error)

    def _named(
        self, ref: Json | None, kind: str, system: str, element: str, error: Report
    ) -> str | None:
        name = None if ref is None else self._name(ref, kind, system)
        if name is None:
            error(element, f"missing: no {kind}" if ref is None else f"names no {kind} with an id")
        return name

    def _name(self, ref: Json, kind: str, system: str) -> str | None:
        """The Stepout id a reference names: the Stepout identifier of the resource it points
        to in the Bundle, else that resource's id (or the id of a `Type/id` reference to
        a resource not in the Bundle); its own identifier if it has no reference."""
        target = ref.get("reference")
        if not isinstance(target, str):
            identifier = ref.get("identifier") or {}
            ok = identifier.get("system") == system and isinstance(identifier.get("value"), str)
            return identifier["value"] if ok else None
        resource = self.resources.get(target)
        if resource is None:
            kind_of, _, rid = target.partition("/")
            return rid if kind_of == kind and rid and "/" not in rid else None
        if resource.get("resourceType") != kind:
            return None
        return _identified(resource, system)


def _identified(resource: Json, system: str) -> str | None:
    """The resource's identifier in `system`, else its id. (A resource an Encounter refers to
    is not validated: any shape is read without failing.)"""
    identifiers = resource.get("identifier") or []
    if isinstance(identifiers, dict):
        identifiers = [identifiers]
    if not isinstance(identifiers, list):
        identifiers = []
    for identifier in identifiers:
        if not isinstance(identifier, dict):
            continue
        if identifier.get("system") == system and isinstance(identifier.get("value"), str):
            value: str = identifier["value"]
            return value
    rid = resource.get("id")
    return rid if isinstance(rid, str) else None


def _instant(value: Any, element: str, error: Report) -> str | None:
    if value is None:
        error(element, "missing")
        return None
    try:
        parse_instant(value)
    except InstantError:
        error(element, "needs a date and time with an offset")
        return None
    text: str = value
    return text


def _path(loc: tuple[int | str, ...]) -> str:
    parts = ["Encounter"]
    for item in loc:
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
        else:
            parts.append(item)
    return ".".join(parts)


def _message(error: ErrorDetails) -> str:
    kind = str(error.get("type", ""))
    if kind == "missing" or kind.endswith(".missing"):
        return "missing"
    return str(error.get("msg", "is not valid"))
