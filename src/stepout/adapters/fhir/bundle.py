"""A FHIR Bundle of type `collection`, written entry by entry: memory holds one resource at a
time, however many there are. One entry per line, so that a diff of two Bundles reads well."""

from typing import BinaryIO

import orjson

from stepout.adapters.fhir.codes import full_url
from stepout.adapters.fhir.resources import Json


class BundleWriter:
    """Write `add`ed resources as the entries of a Bundle to `out`; `close` ends it."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.count = 0
        out.write(b'{"resourceType":"Bundle","type":"collection"')

    def add(self, resource: Json) -> None:
        entry = {"fullUrl": full_url(resource["id"]), "resource": resource}
        # FHIR's JSON has no empty arrays: `entry` starts with the first resource.
        self.out.write(b',\n"entry":[\n' if self.count == 0 else b",\n")
        self.out.write(orjson.dumps(entry))
        self.count += 1

    def close(self) -> None:
        self.out.write(b"\n]}\n" if self.count else b"}\n")
