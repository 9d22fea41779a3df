"""Statements the hot paths run over and over (every delegation, every event, every turn's receipt), compiled once.

On SQLite through the store's own driver (`planner.sqlite`), a `Prepared` statement runs straight on the
transaction's sqlite3 connection: SQLAlchemy's execution path (a greenlet each way, an execution context, a result
object) costs about ten times what SQLite does for such a statement, and more still once other work has pushed it
out of the processor's caches, as an agent call does between a delegation's two transactions. SQLAlchemy still
compiles the statement, and its column types still convert every value both ways, so what is stored and read back
is what Core stores and reads. On any other database, or when something listens to the engine's statements (an
event listener, `echo`), it runs through Core as any statement does, and they see it.

Rows come back as tuples (Core's rows are tuples too): read them by position.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from planner.sqlite import InlineConnection

Processor = Callable[[Any], Any]
_REQUIRED = object()


class _Slot(NamedTuple):
    """Where a positional parameter's value comes from."""

    key: str
    """The bind parameter's key: what the caller's parameters name it."""
    name: str
    """Its name in the compiled statement (Core also accepts this one)."""
    fixed: Any
    """The value the statement itself gives it (`_REQUIRED`: the caller must)."""
    convert: Processor | None
    """Its type's conversion, which Core applies to every value, None included (JSON stores None as `null`)."""


class _Form:
    """A statement compiled for SQLite, for one set of parameter names.

    How its values are bound and its rows read is worked out here, once: a delegation binds a hundred values.
    """

    __slots__ = ("_converted", "_lookups", "_read", "_required", "slots", "sql")

    def __init__(self, sql: str, slots: tuple[_Slot, ...], columns: tuple[Processor | None, ...]) -> None:
        self.sql = sql
        self.slots = slots
        self._lookups = tuple((slot.name if _anonymous(slot) else slot.key, slot.fixed) for slot in slots)
        """Each slot's parameter name, and its value when it is not given."""
        self._required = frozenset(key for key, fixed in self._lookups if fixed is _REQUIRED)
        self._converted = tuple((index, slot.convert) for index, slot in enumerate(slots) if slot.convert is not None)
        self._read = tuple((index, column) for index, column in enumerate(columns) if column is not None)
        """How to read the columns of its rows that SQLite does not give as they are."""

    def values(self, parameters: Mapping[str, Any]) -> list[Any]:
        if not self._required <= parameters.keys():
            self._refuse(parameters)
        get = parameters.get
        values = [get(key, fixed) for key, fixed in self._lookups]
        for index, convert in self._converted:
            values[index] = convert(values[index])
        return values

    def _refuse(self, parameters: Mapping[str, Any]) -> None:
        missing = next(key for key in self._required if key not in parameters)
        error = exc.InvalidRequestError(f"A value is required for bind parameter {missing!r}")  # as Core says it
        raise exc.StatementError(str(error), self.sql, dict(parameters), error)

    def rows(self, fetched: list[Any]) -> list[tuple[Any, ...]]:
        read = self._read
        if not read:
            return fetched
        rows = []
        for row in fetched:
            values = list(row)
            for index, column in read:
                values[index] = column(values[index])
            rows.append(tuple(values))
        return rows


def _anonymous(slot: _Slot) -> bool:
    """A parameter the statement named itself (a literal value in it): callers reach it by its compiled name only,
    as Core's callers do (its key is made up: `%(4417 param)s`)."""
    return slot.key != slot.name and slot.key.startswith("%(")


def _compile(statement: Executable, dialect: Dialect, keys: Sequence[str]) -> _Form:
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    assert isinstance(compiled, SQLCompiler)
    if compiled.escaped_bind_names or compiled._render_postcompile or compiled.post_compile_params:
        raise TypeError(f"Prepared cannot run {statement}: it has IN lists or unusual parameter names; use Core")
    defaults = {}
    for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
        default = column.default if column in compiled.insert_prefetch else column.onupdate
        if default is None or not getattr(default, "is_scalar", False):
            raise TypeError(f"Prepared cannot compute the default of {column}: pass its value")
        defaults[column.key] = default.arg  # type: ignore[attr-defined]  # a scalar default has its value
    by_name = {name: bind for bind, name in compiled.bind_names.items()}
    slots = []
    for name in compiled.positiontup or ():
        bind = by_name[name]
        if bind.key in defaults:
            fixed = defaults[bind.key]
        elif bind.required:
            fixed = _REQUIRED
        else:
            fixed = bind.effective_value
        slots.append(_Slot(bind.key, name, fixed, bind.type.dialect_impl(dialect).bind_processor(dialect)))
    columns = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in compiled._result_columns
    )
    return _Form(sql=str(compiled), slots=tuple(slots), columns=columns)


def inline_driver(conn: AsyncConnection) -> InlineConnection | None:
    """The store's SQLite driver connection under `conn`, if nothing needs to see its statements go through Core."""
    sync = conn.sync_connection
    if sync is None or sync.dialect.name != "sqlite" or sync.closed or sync.invalidated:
        return None  # Core raises what it should for a closed or invalidated connection
    if sync._echo or (
        # Set once anything listened to the engine or the connection (the listeners may have gone since).
        (sync._has_events or sync.engine._has_events) and _listened(sync.dispatch)
    ):
        return None
    driver = sync.connection.dbapi_connection
    return driver if isinstance(driver, InlineConnection) else None


def _listened(listening: Any) -> bool:
    """Whether any of the engine's or the connection's listeners wants to see statements."""
    return bool(
        listening.before_execute
        or listening.before_cursor_execute
        or listening.after_cursor_execute
        or listening.after_execute
    )


class Prepared:
    """A Core statement run on SQLite's own driver without Core's execution path (see the module's docstring).

    Keep one per statement, built once (at import): it compiles the statement once per set of parameter names.
    Raises what Core raises (`sqlalchemy.exc.IntegrityError`…), with the statement and its parameters.
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._forms: dict[tuple[str, ...], _Form] = {}
        """By parameter names. Only SQLite's forms are compiled, and its dialects compile alike."""

    async def rows(self, conn: AsyncConnection, parameters: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run it once with `parameters`; the rows it returns (a SELECT's, or a RETURNING's)."""
        driver = inline_driver(conn)
        if driver is None:
            return [tuple(row) for row in (await conn.execute(self.statement, dict(parameters))).all()]
        form = self._form(conn, parameters)
        fetched, _count = await self._run(driver, form, parameters, form.values(parameters))
        return form.rows(fetched)

    async def first(self, conn: AsyncConnection, parameters: Mapping[str, Any]) -> tuple[Any, ...] | None:
        rows = await self.rows(conn, parameters)
        return rows[0] if rows else None

    async def count(self, conn: AsyncConnection, parameters: Mapping[str, Any]) -> int:
        """Run it once with `parameters`; how many rows it changed."""
        driver = inline_driver(conn)
        if driver is None:
            return (await conn.execute(self.statement, dict(parameters))).rowcount
        form = self._form(conn, parameters)
        _rows, count = await self._run(driver, form, parameters, form.values(parameters))
        return count

    async def many(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run it once per item of `rows` (parameters with the same names), in one call (`executemany`)."""
        if not rows:
            return
        driver = inline_driver(conn)
        if driver is None:
            await conn.execute(self.statement, [dict(row) for row in rows])
            return
        form = self._form(conn, rows[0])
        await self._run(driver, form, rows, [form.values(row) for row in rows], many=True)

    def _form(self, conn: AsyncConnection, parameters: Mapping[str, Any]) -> _Form:
        names = tuple(parameters)
        form = self._forms.get(names)
        if form is None:
            form = self._forms[names] = _compile(self.statement, conn.dialect, names)
        return form

    @staticmethod
    async def _run(
        driver: InlineConnection,
        form: _Form,
        parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        values: Any,
        *,
        many: bool = False,
    ) -> tuple[list[Any], int]:
        try:
            return await driver.statement(form.sql, values, many=many)
        except sqlite3.Error as error:
            raise _as_core_error(error, form.sql, parameters) from error


async def end(driver: InlineConnection, *, commit: bool) -> None:
    """Commit or roll back the transaction `Prepared` statements began on `driver` with nothing of Core's."""
    try:
        await driver.end(commit=commit)
    except sqlite3.Error as error:
        raise _as_core_error(error, "COMMIT" if commit else "ROLLBACK", None) from error


def _as_core_error(
    error: sqlite3.Error, sql: str, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
) -> BaseException:
    """sqlite3's error as Core raises it (`sqlalchemy.exc.IntegrityError`…), which is what callers catch."""
    return exc.DBAPIError.instance(sql, parameters, error, sqlite3.Error)
