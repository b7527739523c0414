"""``python -m iotpipe``: the same as the ``iotpipe`` command."""

from iotpipe.cli import app

app(prog_name="iotpipe")
