"""The systems, code systems and extensions the FHIR Bundle uses (docs/fhir.md lists them).

Stepout's own names share one form: `https://stepout.example/fhir/<kind>/<name>`, where kind
is `CodeSystem` (codes Stepout defines), `id` (identifier systems: Stepout's ids) or
`StructureDefinition` (extensions).
"""

import uuid
from functools import lru_cache
from typing import Final, Literal

import orjson

Release = Literal["r5", "r4b"]
RELEASES: Final[tuple[Release, ...]] = ("r5", "r4b")

BASE: Final = "https://stepout.example/fhir"


def code_system(name: str) -> str:
    return f"{BASE}/CodeSystem/{name}"


def id_system(kind: str) -> str:
    return f"{BASE}/id/{kind}"


def extension(name: str) -> str:
    return f"{BASE}/StructureDefinition/{name}"


EXIT_REASON: Final = code_system("exit-reason")
CLIENT_INFORMED: Final = code_system("client-informed")
EMS_DECISION: Final = code_system("ems-decision")
RULE: Final = code_system("rule")
POLICY_VERSION: Final = extension("policy-version")

SESSION_ID: Final = id_system("session")
EXIT_ID: Final = id_system("exit")
CLIENT_ID: Final = id_system("client")
THERAPIST_ID: Final = id_system("therapist")
ROOM_ID: Final = id_system("room")
PRACTICE_ID: Final = id_system("practice")

ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
CPT: Final = "http://www.ama-assn.org/go/cpt"
UCUM: Final = "http://unitsofmeasure.org"

# Encounter class: v3 ActCode AMB (ambulatory) for in person, VR (virtual) for telehealth.
CLASS_OF_MODALITY: Final = {"in_person": "AMB", "telehealth": "VR"}
MODALITY_OF_CLASS: Final = {code: modality for modality, code in CLASS_OF_MODALITY.items()}

# Resource ids and fullUrls are name-based UUIDs (version 5) of the Stepout record they stand
# for: the same record gives the same id in every export, on every installation.
_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, BASE)


@lru_cache(maxsize=1 << 14)  # the directory's ids recur in every session that refers to it
def resource_id(kind: str, *key: str | None) -> str:
    """The stable id of the resource of `kind` for the Stepout record named by `key`."""
    return str(uuid.uuid5(_NAMESPACE, orjson.dumps([kind, *key]).decode()))


def full_url(resource_id: str) -> str:
    return f"urn:uuid:{resource_id}"
