"""The run's keys, for code that opens a database outside a fixture."""

import os
from functools import cache
from pathlib import Path

from stepout.crypto.keyfile import load_keys
from stepout.crypto.keys import Keys


@cache
def run_keys() -> Keys:
    """The keys of the key file `tests/conftest.py` made for this run."""
    return load_keys(Path(os.environ["STEPOUT_SECRET_KEY_FILE"]))
