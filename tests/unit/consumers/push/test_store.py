"""Which store errors blame the record and which the database (no database needed)."""

from __future__ import annotations

import asyncpg
import pytest

from consumers.push.store import DATABASE_DOWN as DOWN
from consumers.push.store import describe_fault, is_record_fault

RECORD_FAULTS = [
    asyncpg.UntranslatableCharacterError,  # 22P05: "\u0000 cannot be converted to text"
    asyncpg.CharacterNotInRepertoireError,  # 22021: a NUL byte in text
    asyncpg.StringDataRightTruncationError,  # 22001: too long for the column
    asyncpg.InvalidTextRepresentationError,  # 22P02: not valid JSON, say
    asyncpg.NumericValueOutOfRangeError,  # 22003
    asyncpg.DatetimeFieldOverflowError,  # 22008
    asyncpg.DataError,  # 22000: asyncpg's own encoding of an argument failed
    asyncpg.CheckViolationError,  # 23514: a kind the table does not allow
    asyncpg.NotNullViolationError,  # 23502
    asyncpg.ForeignKeyViolationError,  # 23503
    asyncpg.UniqueViolationError,  # 23505: not our idempotency, which ON CONFLICT absorbs
    asyncpg.ProgramLimitExceededError,  # 54000: an index row too large for this value
]
DATABASE_DOWN = [
    asyncpg.ConnectionFailureError,  # 08006
    asyncpg.ConnectionDoesNotExistError,  # 08003
    asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.AdminShutdownError,  # 57P01
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.TooManyConnectionsError,  # 53300
    asyncpg.DiskFullError,  # 53100
    asyncpg.SerializationError,  # 40001
    asyncpg.DeadlockDetectedError,  # 40P01
    asyncpg.QueryCanceledError,  # 57014: a statement timeout
    asyncpg.UndefinedTableError,  # 42P01: a migration not applied is the deployment's fault
    asyncpg.InternalServerError,  # XX000
]


@pytest.mark.parametrize("error", RECORD_FAULTS)
def test_data_and_integrity_errors_blame_the_record(error: type[asyncpg.PostgresError]) -> None:
    assert is_record_fault(error("refused"))


@pytest.mark.parametrize("error", DATABASE_DOWN)
def test_connection_shutdown_resource_and_conflict_errors_blame_the_database(
    error: type[asyncpg.PostgresError],
) -> None:
    assert not is_record_fault(error("unavailable"))


def test_errors_from_outside_postgres_blame_the_database_unless_the_text_cannot_be_encoded() -> (
    None
):
    for error in (
        OSError("refused"),
        TimeoutError(),
        asyncpg.InterfaceError("closed"),
        # The driver's state for a connection the server broke mid-exchange (the sink's
        # writer died of it while PostgreSQL was being stopped).
        asyncpg.exceptions.InternalClientError("another operation is in progress"),
        asyncpg.exceptions.ProtocolError("unexpected message"),
    ):
        assert isinstance(error, DOWN)
        assert not is_record_fault(error)
    with pytest.raises(UnicodeEncodeError) as encoding:
        "\ud800".encode()
    assert is_record_fault(encoding.value)


def test_a_fault_is_described_with_its_sqlstate_and_detail() -> None:
    error = asyncpg.UntranslatableCharacterError("unsupported Unicode escape sequence")
    error.detail = "\\u0000 cannot be converted to text."
    assert describe_fault(error) == (
        "UntranslatableCharacterError (22P05): unsupported Unicode escape sequence "
        "DETAIL: \\u0000 cannot be converted to text."
    )
