"""``python -m local_pipeline demo``: the same as ``local-pipeline demo``."""

from local_pipeline.cli import app

app(prog_name="local-pipeline")
