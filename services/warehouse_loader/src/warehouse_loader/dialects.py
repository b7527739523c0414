"""The two warehouses behind one interface: PostgreSQL (local, CI) and Redshift (production).

A dialect knows how to connect, how to render the model's tables, how to lock a table
for the one writer at a time, and how to fill the load's staging table:

- PostgreSQL: ``COPY stage_gold FROM STDIN (FORMAT binary)``, the Gold rows the loader
  read encoded column by column from Arrow by pgpq (no per-row Python, no text parsing on
  the server, doubles and timestamps bit for bit);
- Redshift: ``COPY stage_gold FROM 's3://.../window_date=YYYY-MM-DD/' IAM_ROLE ...
  FORMAT AS PARQUET``, one per Gold partition of the window: the data goes from the
  lake to Redshift without passing through the loader.

Everything else a load runs is the same SQL on both (see :mod:`warehouse_loader.warehouse`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar, Protocol
from urllib.parse import unquote, urlsplit

import pyarrow as pa

from warehouse_loader.gold import GoldSlice, partition_path, within
from warehouse_loader.schema import STAGE_GOLD, Table
from warehouse_loader.settings import LoaderSettings

APPLICATION_NAME = "warehouse-loader"
COPY_BATCH_ROWS = 50_000


class Cursor(Protocol):
    """The DB-API cursor both drivers give (psycopg 3 and redshift-connector)."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, query: Any, params: Any = ..., /) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Any: ...


class Connection(Protocol):
    def cursor(self) -> Any: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


def quote_literal(value: str) -> str:
    """A SQL string literal (for the statements that take no parameters, like COPY)."""
    return "'" + value.replace("'", "''") + "'"


class Dialect(ABC):
    name: ClassVar[str]

    def __init__(self, settings: LoaderSettings) -> None:
        self.settings = settings

    @abstractmethod
    def connect(self) -> Connection:
        """A new connection, in a transaction (not autocommit), timestamps in UTC."""

    @property
    @abstractmethod
    def errors(self) -> tuple[type[Exception], ...]:
        """The driver's errors (DB-API ``Error``): the warehouse failed or is unreachable."""

    @abstractmethod
    def lock(self, table: str) -> str:
        """Lock ``table`` against other writers until the transaction ends (readers go on)."""

    @abstractmethod
    def fill_stage(self, cursor: Cursor, gold: GoldSlice) -> int | None:
        """Put the window's Gold rows into the (empty) staging table.

        Returns how many rows the stage holds when the dialect staged only the window's
        rows and its COPY reported the count; ``None`` when the stage may hold rows outside
        the window (Redshift COPYs whole day partitions): the loader then deletes those and
        counts the stage itself.
        """

    @property
    def duplicate_key_errors(self) -> tuple[type[Exception], ...]:
        """The driver's error for a duplicate primary key, where the warehouse enforces keys.

        Empty where keys are planner hints (Redshift): the loader then counts duplicate
        keys in the stage itself. Where the fact table's key is enforced (PostgreSQL), the
        INSERT from the stage fails on a duplicate anyway, and counting them first would
        be a second pass over the window's rows for nothing.
        """
        return ()

    foreign_keys: ClassVar[bool] = True
    """Declare the model's foreign keys (Redshift keeps them as planner hints, unenforced)."""

    partitions_by_day: ClassVar[bool] = False
    """The fact table is partitioned by day (migration 5): a load swaps in the whole days of
    its window and deletes and inserts only the rest (:mod:`warehouse_loader.partitions`)."""

    temporary_suffix: ClassVar[str] = ""
    """Appended to CREATE TEMPORARY TABLE (PostgreSQL drops its temp tables at commit)."""

    def table_options(self, table: Table) -> str:
        """Trailing CREATE TABLE options (Redshift's distribution and sort keys)."""
        return ""

    def indexes(self, table: Table) -> list[str]:
        return []

    def create_table(self, table: Table) -> list[str]:
        """The statements that create ``table`` if it is missing (idempotent)."""
        lines = [f"    {c.name} {c.type}{'' if c.nullable else ' NOT NULL'}" for c in table.columns]
        if table.primary_key:
            lines.append(f"    PRIMARY KEY ({', '.join(table.primary_key)})")
        if self.foreign_keys:
            lines += [
                f"    FOREIGN KEY ({fk.column}) REFERENCES {fk.table} ({fk.references})"
                for fk in table.foreign_keys
            ]
        body = ",\n".join(lines)
        create = f"CREATE TABLE IF NOT EXISTS {table.name} (\n{body}\n){self.table_options(table)}"
        return [create, *self.indexes(table)]

    def create_temporary(self, table: Table) -> str:
        columns = ",\n".join(f"    {c.name} {c.type}" for c in table.columns)
        return f"CREATE TEMPORARY TABLE {table.name} (\n{columns}\n){self.temporary_suffix}"

    def create_temporary_as(self, name: str, select: str) -> str:
        return f"CREATE TEMPORARY TABLE {name}{self.temporary_suffix} AS\n{select}"


class PostgresDialect(Dialect):
    name = "postgresql"
    # Enforced, they would check each fact row against both dimensions (in the benchmark,
    # most of a load's time) for what the load guarantees anyway: it writes the window's
    # dimension rows in the same transaction as its facts. As on Redshift, the foreign
    # keys are documented, not enforced (the primary keys are enforced).
    foreign_keys = False
    partitions_by_day = True
    temporary_suffix = " ON COMMIT DROP"

    def connect(self) -> Connection:
        import psycopg

        return psycopg.connect(
            self.settings.warehouse_dsn.get_secret_value(),
            application_name=APPLICATION_NAME,
            options="-c TimeZone=UTC",
            connect_timeout=10,
        )

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        import psycopg

        return (psycopg.Error,)

    @property
    def duplicate_key_errors(self) -> tuple[type[Exception], ...]:
        import psycopg.errors

        return (psycopg.errors.UniqueViolation,)

    def lock(self, table: str) -> str:
        # Conflicts with itself and with row writers, not with SELECT.
        return f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"

    def indexes(self, table: Table) -> list[str]:
        if not table.sortkey or table.primary_key[: len(table.sortkey)] == table.sortkey:
            return []
        name = f"{table.name}_{'_'.join(table.sortkey)}_idx"
        return [f"CREATE INDEX IF NOT EXISTS {name} ON {table.name} ({', '.join(table.sortkey)})"]

    def copy_statement(self) -> str:
        columns = ", ".join(STAGE_GOLD.column_names)
        return f"COPY {STAGE_GOLD.name} ({columns}) FROM STDIN (FORMAT binary)"

    def fill_stage(self, cursor: Cursor, gold: GoldSlice) -> int:
        # Only the window's rows are sent, and COPY counts them: no scan of the stage to
        # trim or count it (a no-op DELETE and a COUNT(*) over the window's rows).
        with cursor.copy(self.copy_statement()) as copy:  # type: ignore[attr-defined]
            for chunk in binary_copy_chunks(within(gold.table, gold.window)):
                copy.write(chunk)
        return cursor.rowcount


def binary_copy_chunks(table: pa.Table, rows: int = COPY_BATCH_ROWS) -> Iterator[bytes]:
    """The rows in COPY's binary format: a header, chunks of up to ``rows`` rows, a trailer.

    The stage's columns are Gold's file columns with the matching types (VARCHAR for
    strings, BIGINT, DOUBLE PRECISION, TIMESTAMP for UTC instants), so each value goes
    as the server stores it: no text to format here or to parse there.
    """
    from pgpq import ArrowToPostgresBinaryEncoder

    encoder = ArrowToPostgresBinaryEncoder(table.schema)
    yield encoder.write_header()
    for batch in table.to_batches(max_chunksize=rows):
        if chunk := encoder.write_batch(batch):  # the encoder buffers small batches
            yield chunk
    yield encoder.finish()


class RedshiftDialect(Dialect):
    name = "redshift"

    def connect(self) -> Connection:
        import redshift_connector

        url = urlsplit(self.settings.warehouse_dsn.get_secret_value())
        connection = redshift_connector.connect(
            host=url.hostname or "",
            port=url.port or 5439,
            database=unquote(url.path.lstrip("/")) or "dev",
            user=unquote(url.username or ""),
            password=unquote(url.password or ""),
            application_name=APPLICATION_NAME,
            timeout=30,
        )
        connection.autocommit = False
        return connection

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        import redshift_connector

        return (redshift_connector.Error,)

    def lock(self, table: str) -> str:
        return f"LOCK {table}"

    def table_options(self, table: Table) -> str:
        options = []
        if table.replicate:
            options.append("DISTSTYLE ALL")
        elif table.distkey:
            options.append(f"DISTSTYLE KEY DISTKEY ({table.distkey})")
        if table.sortkey:
            options.append(f"SORTKEY ({', '.join(table.sortkey)})")
        return "".join(f"\n{option}" for option in options)

    def copy_statements(self, gold: GoldSlice) -> list[str]:
        """One COPY per Gold partition that holds rows of the window."""
        location = gold.location.replace("s3a://", "s3://", 1)
        role = self.settings.redshift_iam_role or "default"
        iam_role = "default" if role == "default" else quote_literal(role)
        return [
            f"COPY {STAGE_GOLD.name}\n"
            f"FROM {quote_literal(partition_path(location, day) + '/')}\n"
            f"IAM_ROLE {iam_role}\n"
            "FORMAT AS PARQUET"
            for day in gold.days
        ]

    def fill_stage(self, cursor: Cursor, gold: GoldSlice) -> None:
        for statement in self.copy_statements(gold):
            cursor.execute(statement)
        return None


DIALECTS: dict[str, type[Dialect]] = {d.name: d for d in (PostgresDialect, RedshiftDialect)}


def dialect_for(settings: LoaderSettings) -> Dialect:
    return DIALECTS[settings.dialect](settings)
