"""Point prometheus_client at a multiprocess directory before anything imports it.

Imported first by workers/app.py: prefork children inherit the environment, and each writes
its counters there for the worker's metrics endpoint to add up.
"""

from __future__ import annotations

import os

from nurture.config.settings import get_settings

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    directory = get_settings().var_dir / "metrics" / f"worker-{os.getpid()}"
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory.resolve())
