"""Quality gate: Great Expectations suites that decide which lake windows may be loaded."""

import os

# Great Expectations reports usage to its vendor unless told not to; a gate in a
# private cluster must not phone home. An explicit setting in the environment wins.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
