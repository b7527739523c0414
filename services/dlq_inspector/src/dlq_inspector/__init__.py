"""DLQ inspector: list, filter, inspect and replay the pipeline's dead-lettered events."""
