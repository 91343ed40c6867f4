"""The key file a benchmark runs with: STEPOUT_SECRET_KEY_FILE if set, else a new one in a
temporary folder, named in the environment so that the processes a benchmark starts use it."""

import os
import tempfile
from pathlib import Path

from stepout.crypto.keyfile import generate, load_keys
from stepout.crypto.keys import Keys


def bench_keys() -> Keys:
    named = os.environ.get("STEPOUT_SECRET_KEY_FILE")
    if named is None:
        path = Path(tempfile.mkdtemp(prefix="stepout-bench-keys-")) / "stepout.key"
        generate(path)
        os.environ["STEPOUT_SECRET_KEY_FILE"] = named = str(path)
    return load_keys(Path(named))
