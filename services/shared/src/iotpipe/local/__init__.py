"""The local stack: a real single-node KRaft Kafka and a real PostgreSQL, started
as plain processes from the project's own jars and Debian's PostgreSQL.

Used by ``iotpipe local up|down|status``, ``make demo`` and the pytest fixtures.
"""

from iotpipe.local.kafka import KafkaBroker
from iotpipe.local.postgres import Postgres

__all__ = ["KafkaBroker", "Postgres"]
