"""The whole pipeline on one machine: ``make demo`` and the end-to-end tests' stages."""
