"""``python -m warehouse_loader``: serve the loader (configuration from ``LOADER_*``), or
``python -m warehouse_loader load WINDOW`` (see :mod:`warehouse_loader.cli`)."""

from __future__ import annotations

from warehouse_loader.cli import cli


def main() -> None:
    cli(prog_name="warehouse-loader")


if __name__ == "__main__":
    main()
