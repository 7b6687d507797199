"""Repository-wide pytest setup: notebooks executed by nbmake run at smoke size."""

import os

os.environ.setdefault("DISPATCH_NB_SMOKE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
