"""``python -m quality_gate`` serves the API (same as ``quality-gate serve``)."""

from quality_gate.cli import app

app(prog_name="quality-gate")
