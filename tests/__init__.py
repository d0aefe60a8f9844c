"""The test suite (see tests/conftest.py for its fixtures).

Bytecode is cached even where PYTHONDONTWRITEBYTECODE is set: without a cache, every pytest
worker compiles the package and assertion-rewrites every test module again, and every
`tokenserver` process a test starts compiles the package again, seconds of each run. The cache
goes under PYTHONPYCACHEPREFIX if set, else `.pytest_cache/pycache`: out of the source tree,
which is what the variable is usually set to keep clean. This runs before any test module or
fixture is imported, in each pytest process, and reaches the processes tests start through the
environment.
"""

import os
import sys
from pathlib import Path

if sys.dont_write_bytecode:
    sys.pycache_prefix = sys.pycache_prefix or str(
        Path(__file__).resolve().parents[1] / ".pytest_cache" / "pycache"
    )
    sys.dont_write_bytecode = False
    os.environ["PYTHONPYCACHEPREFIX"] = sys.pycache_prefix
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
