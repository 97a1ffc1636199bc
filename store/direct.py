"""Hot-path statements run on the DBAPI cursor of a write transaction, below SQLAlchemy's
execution layer.

A live retry run writes a few dozen short statements per batch of sends, on the thread that
competes with its senders for the interpreter. Per statement, SQLAlchemy's execution layer
(ORM session, cache key, execution context, result objects) costs several times what SQLite
takes to run it. ``Direct`` keeps what matters of SQLAlchemy: the statement is a Core
construct, compiled by SQLAlchemy once per dialect (and set of INSERT keys), and every value
goes through the same bind and result processors as ``session.execute`` would use (so
datetimes, JSON and booleans are stored and read exactly as elsewhere). Only the dispatch
is skipped. Errors are raised as SQLAlchemy's (``DBAPIError`` and subclasses), as from
``session.execute``.

A statement runs in the session's transaction, on its connection (beginning it if need be,
as ``session.execute`` would), after flushing pending ORM objects (as autoflush would).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

if TYPE_CHECKING:  # the quick Core reads (metrics) import counters, and so this: no ORM
    from sqlalchemy.orm import Session

Params = Mapping[str, Any]
_CONNECTION = "cavra.direct_connection"  # session.info key: (transaction, connection, dbapi)


class _Prepared:
    """One statement compiled for one dialect: its SQL, parameter order and processors."""

    def __init__(self, statement: ClauseElement, dialect: Dialect,
                 column_keys: Sequence[str] | None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(column_keys)
                                     if column_keys is not None else None)
        assert isinstance(compiled, SQLCompiler)
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise ValueError("Direct runs no Python-side column defaults: give every value")
        if compiled.literal_execute_params or getattr(compiled, "_collected_params", None):
            raise ValueError("Direct renders no literal or collected parameters")
        self.compiled = compiled
        self.dialect = dialect
        self.expanding = {compiled.bind_names[b] for b in compiled.post_compile_params}
        self.processors: Mapping[str, Any] = compiled._bind_processors
        self.binds = {name: bind for bind, name in compiled.bind_names.items()}
        escaped: Mapping[str, str] = compiled.escaped_bind_names or {}
        # (name sent to the driver, name given by the caller) in the driver's order.
        names = compiled.positiontup if compiled.positional else list(self.binds)
        self.positional = bool(compiled.positional)
        self.order = [(escaped.get(name, name), name) for name in names or ()]
        # Per driver position: (the caller's key, _) for a value the caller gives, or
        # (None, the value processed once) for one the statement carries (``== "in_flight"``).
        self.plan: list[tuple[str | None, Any]] = []
        for _, name in self.order:
            bind = self.binds[name]
            if bind.required or bind.callable is not None or name in self.expanding:
                self.plan.append((name, None))
            else:
                process: Any = self.processors.get(name)
                self.plan.append((None, process(bind.value) if process else bind.value))
        self.carried = {self.binds[name].key for (given, _), (_, name) in zip(
            self.plan, self.order, strict=True) if given is None}
        self.direct_keys = all(self.binds[name].key == name for _, name in self.order)
        self.sql = compiled.string
        self._expanded: dict[tuple[Any, ...], tuple[str, list[tuple[str, str, Any]]]] = {}
        columns = compiled._result_columns
        self.keys = [column[0] for column in columns]
        self.types = [column[3] for column in columns]
        self.row_type: Any = namedtuple("Row", self.keys, rename=True)  # type: ignore[misc]
        self._result_processors: dict[tuple[Any, ...], list[tuple[int, Any]]] = {}

    def _value(self, name: str, params: Params) -> Any:
        """As ``construct_params`` and the execution context do: the caller's value (by the
        parameter's key, then its name) or the statement's own, then its type's processor."""
        bind = self.binds[name]
        if bind.key in params:
            value = params[bind.key]
        elif name in params:
            value = params[name]
        elif bind.required:
            raise exc.InvalidRequestError(f"A value is required for bind parameter {name!r}")
        else:  # a value the statement carries (``status == "in_flight"``)
            value = bind.effective_value if bind.callable else bind.value
        process = self.processors.get(name)
        return process(value) if process is not None else value

    def _fast_values(self, params: Params) -> list[Any] | None:
        """``_value`` for each position, inline (a batch insert binds thousands of values);
        None when a value is missing (``_value`` then says which, or finds it by name)."""
        if self.carried and not self.carried.isdisjoint(params):
            return None  # the caller overrides a value the statement carries
        processors = self.processors
        values: list[Any] = []
        append = values.append
        try:
            for name, constant in self.plan:
                if name is None:
                    append(constant)
                    continue
                value = params[name]
                process = processors.get(name)
                append(process(value) if process is not None else value)
        except KeyError:
            return None
        return values

    def bind(self, params: Params | None) -> tuple[str, Any]:
        """The SQL to send and its parameters, in the DBAPI's paramstyle."""
        params = params or {}
        if not self.expanding:
            values = self._fast_values(params) if self.direct_keys else None
            if values is None:
                values = [self._value(name, params) for _, name in self.order]
            if self.positional:
                return self.sql, tuple(values)
            return self.sql, {sent: value for (sent, _), value in zip(self.order, values,
                                                                       strict=True)}
        sql, slots = self._expansion(params)
        values = []
        for sent, name, where in slots:
            if where is None:
                values.append((sent, self._value(name, params)))
                continue
            element, part, process = where
            value = params[self.binds[name].key][element]
            if part is not None:
                value = value[part]
            values.append((sent, process(value) if process is not None else value))
        if self.positional:
            return sql, tuple(value for _, value in values)
        return sql, dict(values)

    def _expansion(self, params: Params) -> tuple[str, list[tuple[str, str, Any]]]:
        """The statement with each expanding parameter rendered for as many values as it
        has (SQLAlchemy renders it once per shape, from stand-ins; cached), and where each
        value the driver gets comes from: a plain parameter, or (element, part, processor)
        of an expanding one."""
        given = {name: list(params[self.binds[name].key]) for name in sorted(self.expanding)}
        shape = tuple((name, len(values), len(values[0]) if values and isinstance(
            values[0], tuple) else None) for name, values in given.items())
        found = self._expanded.get(shape)
        if found is not None:
            return found
        if len(self._expanded) > 64:  # a bound on the shapes kept (IN lists vary in size)
            self._expanded.clear()
        stand_ins: dict[int, tuple[str, int, int | None]] = {}
        probe: dict[str, Any] = {}
        for name, count, width in shape:
            elements: list[Any] = []
            for element in range(count):
                if width is None:
                    marker = object()
                    stand_ins[id(marker)] = (name, element, None)
                    elements.append(marker)
                    continue
                parts = []
                for part in range(width):
                    marker = object()
                    stand_ins[id(marker)] = (name, element, part)
                    parts.append(marker)
                elements.append(tuple(parts))
            probe[name] = elements
        values = self.compiled.construct_params({**{
            name: None for name in self.binds if name not in self.expanding}, **probe},
            escape_names=False)
        expanded = self.compiled._process_parameters_for_postcompile(values)
        escaped: Mapping[str, str] = self.compiled.escaped_bind_names or {}
        names = (expanded.positiontup if self.positional else list(expanded.parameters))
        slots: list[tuple[str, str, Any]] = []
        for name in names or ():
            marker = expanded.parameters[name]
            origin = stand_ins.get(id(marker))
            if origin is None:
                slots.append((escaped.get(name, name), name, None))
            else:
                slots.append((escaped.get(name, name), origin[0],
                              (origin[1], origin[2], expanded.processors.get(name))))
        self._expanded[shape] = (expanded.statement, slots)
        return self._expanded[shape]

    def result_processors(self, description: Sequence[Any]) -> list[tuple[int, Any]]:
        """As SQLAlchemy's result does: each column's type given the driver's type code
        (the columns that have a processor, by position)."""
        codes = tuple(column[1] for column in description)
        found = self._result_processors.get(codes)
        if found is None:
            processors = [type_._cached_result_processor(self.dialect, code)
                          for type_, code in zip(self.types, codes, strict=True)]
            found = [(position, process) for position, process in enumerate(processors)
                     if process is not None]
            self._result_processors[codes] = found
        return found


def _made(prepared: _Prepared, fetched: Sequence[Any], description: Sequence[Any]) -> list[Any]:
    """The driver's rows as named tuples, each value through its column's result processor."""
    processed = prepared.result_processors(description)
    make = prepared.row_type._make
    if not processed:
        return [make(row) for row in fetched]
    rows = []
    for row in fetched:
        values = list(row)
        for position, process in processed:
            values[position] = process(values[position])
        rows.append(make(values))
    return rows


def _connection(session: Session) -> tuple[Connection, Any]:
    # As autoflush would: pending ORM objects first (the session's own bookkeeping, read
    # without building the public ``new``/``dirty`` sets on every statement).
    if session._new or session._deleted or session.identity_map._modified:
        session.flush()
    transaction = session.get_transaction()
    cached = session.info.get(_CONNECTION)
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1], cached[2]
    connection = session.connection()  # begins the transaction (BEGIN IMMEDIATE on SQLite)
    dbapi = connection.connection.dbapi_connection
    session.info[_CONNECTION] = (session.get_transaction(), connection, dbapi)
    return connection, dbapi


class Direct:
    """A Core statement, built once, run on the DBAPI cursor of a write session. An INSERT
    is compiled for the keys its rows give (every row of one call gives the same keys)."""

    def __init__(self, statement: ClauseElement, *, keyed: bool | None = None) -> None:
        self.statement = statement
        self.is_insert = bool(getattr(statement, "is_insert", False))
        # Compiled for the keys its parameters give: an INSERT without values of its own.
        self.keyed = self.is_insert if keyed is None else keyed
        self._prepared: dict[tuple[str, tuple[str, ...] | None], _Prepared] = {}
        self._rows: dict[tuple[tuple[str, ...], int], Direct] = {}  # multi-row INSERTs

    def _prepare(self, connection: Connection, params: Params | None) -> _Prepared:
        dialect = connection.dialect
        keys = tuple(params) if self.keyed and params is not None else None
        prepared = self._prepared.get((dialect.name, keys))
        if prepared is None:
            prepared = _Prepared(self.statement, dialect, keys)
            self._prepared[(dialect.name, keys)] = prepared
        return prepared

    def rows(self, session: Session, params: Params | None = None) -> list[Any]:
        """Every row (named tuples in the statement's column order), for a SELECT or a
        statement with RETURNING."""
        connection, dbapi = _connection(session)
        prepared = self._prepare(connection, params)
        sql, bound = prepared.bind(params)
        with _cursor(dbapi, prepared, sql, bound) as cursor:
            cursor.execute(sql, bound)
            fetched = cursor.fetchall()
            description = cursor.description
        return _made(prepared, fetched, description)

    def rows_each(self, session: Session, params: Sequence[Params]) -> list[list[Any]]:
        """``rows`` for each parameter set, in order: one statement per set, in one round
        trip on PostgreSQL (psycopg's pipelined ``executemany`` returning each result)."""
        if len(params) < 2:
            return [self.rows(session, p) for p in params]
        connection, dbapi = _connection(session)
        if connection.dialect.name != "postgresql":
            return [self.rows(session, p) for p in params]
        prepared = self._prepare(connection, params[0])
        if prepared.expanding:
            raise ValueError("expanding parameters cannot run many at once")
        bound = [prepared.bind(p)[1] for p in params]
        results: list[tuple[list[Any], Any]] = []
        with _cursor(dbapi, prepared, prepared.sql, bound) as cursor:
            cursor.executemany(prepared.sql, bound, returning=True)
            while True:
                results.append((cursor.fetchall(), cursor.description))
                if not cursor.nextset():
                    break
        return [_made(prepared, fetched, description) for fetched, description in results]

    def first(self, session: Session, params: Params | None = None) -> Any | None:
        found = self.rows(session, params)
        return found[0] if found else None

    def execute(self, session: Session, params: Params | None = None) -> int:
        """Run once; the number of rows it changed."""
        connection, dbapi = _connection(session)
        prepared = self._prepare(connection, params)
        sql, bound = prepared.bind(params)
        with _cursor(dbapi, prepared, sql, bound) as cursor:
            cursor.execute(sql, bound)
            return int(cursor.rowcount)

    def execute_many(self, session: Session, params: Sequence[Params]) -> None:
        """Run once per parameter set, in one driver call (no expanding parameters). On
        PostgreSQL an INSERT of several rows is one ``INSERT … VALUES (…), (…)`` (psycopg
        would pipeline one statement per row), and a single set is a plain execute."""
        if not params:
            return
        if len(params) == 1:
            self.execute(session, params[0])
            return
        connection, dbapi = _connection(session)
        if self.keyed and connection.dialect.name == "postgresql":
            self._insert_rows(params).execute(session, {
                f"{key}__{index}": value for index, row in enumerate(params)
                for key, value in row.items()})
            return
        prepared = self._prepare(connection, params[0])
        if prepared.expanding:
            raise ValueError("expanding parameters cannot run many at once")
        bound = [prepared.bind(p)[1] for p in params]
        with _cursor(dbapi, prepared, prepared.sql, bound) as cursor:
            cursor.executemany(prepared.sql, bound)

    def _insert_rows(self, params: Sequence[Params]) -> Direct:
        """This INSERT for ``len(params)`` rows of the keys they give, built once per shape."""
        keys = tuple(params[0])
        shape = (keys, len(params))
        found = self._rows.get(shape)
        if found is None:
            if len(self._rows) > 64:  # a bound on the shapes kept (batches are small)
                self._rows.clear()
            table: Any = self.statement.table  # type: ignore[attr-defined]
            found = Direct(self.statement.values([  # type: ignore[attr-defined]
                {key: bindparam(f"{key}__{index}", type_=table.c[key].type) for key in keys}
                for index in range(len(params))]), keyed=False)
            self._rows[shape] = found
        return found


@contextmanager
def pipelined(session: Session) -> Iterator[None]:
    """On PostgreSQL, the ``Direct`` statements run inside go to the server together (one
    round trip, psycopg's pipeline mode) and their errors are raised when the block ends; on
    SQLite it changes nothing. Only for writes whose results nobody reads inside it."""
    connection, dbapi = _connection(session)
    if connection.dialect.name != "postgresql":
        yield
        return
    try:
        with dbapi.pipeline():
            yield
    except connection.dialect.loaded_dbapi.Error as error:
        raise _wrapped(error, "(pipelined statements)", None, connection.dialect) from error


@contextmanager
def _cursor(dbapi: Any, prepared: _Prepared, sql: str, bound: Any) -> Iterator[Any]:
    """A driver cursor, closed after; the driver's errors raised as SQLAlchemy's."""
    cursor = dbapi.cursor()
    try:
        yield cursor
    except prepared.dialect.loaded_dbapi.Error as error:
        raise _wrapped(error, sql, bound, prepared.dialect) from error
    finally:
        cursor.close()


def _wrapped(error: Exception, sql: str, params: Any, dialect: Dialect) -> exc.StatementError:
    """The driver's error as SQLAlchemy raises it (``OperationalError`` and so on)."""
    return exc.DBAPIError.instance(sql, params, error, dialect.loaded_dbapi.Error,
                                   dialect=dialect)
