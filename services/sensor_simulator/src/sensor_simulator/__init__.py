"""Sensor simulator: synthetic sensor readings produced to Kafka.

Runs are driven by a REST API (:mod:`sensor_simulator.api`) or the CLI
(:mod:`sensor_simulator.cli`); both use the same engine: :mod:`.generator`
makes the events, :mod:`.delivery` gets them to Kafka, :mod:`.runs` paces them.
"""

__version__ = "0.1.0"
