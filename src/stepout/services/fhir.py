"""FHIR out and in (docs/fhir.md).

Export: one pass over the selection's ended sessions, in (start, id) order. Each session
gives its Encounter, then per exit its Communication and AdverseEvent, then the DetectedIssues
of the audit's findings about it; the Organization, Practitioner, Patient and Location it
refers to come just before it, the first time they are referred to. The findings about a
therapist (`exit-rate-high`) come last. Memory holds the ids of the directory resources
written so far and per-therapist counts, never the sessions.

Import: the finished Encounters of a Bundle become sessions through the records import, all
or nothing (`stepout.services.importing`); its errors are given back by entry and element.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from stepout.adapters.fhir import resources as fhir
from stepout.adapters.fhir.bundle import BundleWriter
from stepout.adapters.fhir.codes import Release
from stepout.adapters.fhir.reading import (
    BundleRejected,
    EntryError,
    field_path,
    read_encounters,
)
from stepout.domain.billing import minimum_net_minutes
from stepout.domain.facetime import gross_minutes
from stepout.domain.instants import Instant
from stepout.domain.records import Session
from stepout.policy.engine import active_rules, audit
from stepout.policy.model import Policy
from stepout.policy.rules_session import exit_rate_high
from stepout.services.importing import ImportRejected, import_records
from stepout.services.ports import Records, Selection, SessionBundle, UnitOfWork

__all__ = ["BundleRejected", "EntryError", "FhirImportReport", "export_fhir", "import_fhir"]


def export_fhir(
    records: Records,
    selection: Selection,
    policy: Policy,
    as_of: Instant,
    release: Release,
    out: BinaryIO,
) -> int:
    """Write the selection as a FHIR Bundle (type `collection`) to `out`, each resource
    validated by its model first; return how many resources were written. Findings are judged
    at `as_of`."""
    writer = BundleWriter(out)

    def add(resource: fhir.Json) -> None:
        writer.add(fhir.validated(release, resource))

    active = active_rules(policy)
    per_session = tuple(r for r in active if r != "exit-rate-high")
    rate = exit_rate_high(policy, as_of) if "exit-rate-high" in active else None
    sessions: dict[str, int] = {}
    with_exits: dict[str, int] = {}
    practice_of: dict[str, str] = {}  # therapist -> practice, for the therapist's findings
    written: set[tuple[str, str, str]] = set()

    def once(kind: str, practice: str, key: str, build: Callable[[], fhir.Json]) -> None:
        if (kind, practice, key) not in written:
            written.add((kind, practice, key))
            add(build())

    def directory(s: Session) -> None:
        p = s.practice
        once("Organization", p, p, lambda: fhir.organization(p))
        once("Practitioner", p, s.therapist, lambda: fhir.practitioner(p, s.therapist))
        once("Patient", p, s.client, lambda: fhir.patient(p, s.client))
        once("Location", p, s.room, lambda: fhir.location(p, s.room))

    for bundle in records.bundles(selection):
        s = bundle.session
        directory(s)
        practice_of.setdefault(s.therapist, s.practice)
        sessions[s.therapist] = sessions.get(s.therapist, 0) + 1
        if bundle.exits:
            with_exits[s.therapist] = with_exits.get(s.therapist, 0) + 1
        for resource in fhir.entries_of_session(release, s, bundle.exits):
            add(resource)
        if per_session and _may_have_findings(bundle):
            for f in audit((bundle,), policy, as_of, per_session, therapist_counts={}):
                add(fhir.detected_issue(release, f, s, s.practice, as_of))
    if rate is not None:
        for f in rate(sessions, with_exits):
            practice = practice_of.get(f.therapist or "")
            add(fhir.detected_issue(release, f, None, practice, as_of))
    writer.close()
    return writer.count


def _may_have_findings(bundle: SessionBundle) -> bool:
    """Whether the session can yield a finding of its own: it has an exit or a concern, or
    fewer minutes than its billed codes need (as `Records.bundles_to_judge` chooses)."""
    s = bundle.session
    if bundle.exits or bundle.concerns:
        return True
    end = s.end if s.end is not None else s.start
    return bool(s.billed_codes) and gross_minutes(s.start, end) < minimum_net_minutes(
        s.billed_codes
    )


@dataclass(frozen=True)
class FhirImportReport:
    release: Release
    encounters: int  # finished Encounters read
    skipped: int  # Encounters not finished
    created: int  # sessions stored
    unchanged: int  # sessions already stored with the same values


def import_fhir(
    uow: UnitOfWork,
    data: bytes,
    *,
    release: Release | None = None,
    practice: str | None = None,
    only_practice: str | None = None,
    actor: str = "import",
    progress: Callable[[int], None] | None = None,
) -> FhirImportReport:
    """Import the finished Encounters of the Bundle `data` as sessions in `uow` (entered by the
    caller) and commit; or raise `BundleRejected` with every error and commit nothing.
    `release` None: detected from the Encounters. `practice`: the practice of an Encounter
    that names no Organization (`only_practice` too, if given); with `only_practice`, every
    session must belong to it (the API: the caller's practice). `progress` is told the
    sessions read, as `import_records` tells lines."""
    found = read_encounters(data, release, practice or only_practice)
    if found.errors:
        raise BundleRejected(found.errors)
    try:
        report = import_records(
            uow, found.lines, actor=actor, progress=progress, practice=only_practice
        )
    except ImportRejected as rejected:
        raise BundleRejected(
            [
                EntryError(found.entries[e.line - 1], field_path(found.release, e.field), e.message)
                for e in rejected.errors
            ]
        ) from None
    return FhirImportReport(
        release=found.release,
        encounters=len(found.lines),
        skipped=found.skipped,
        created=report.created["session"],
        unchanged=report.unchanged,
    )
