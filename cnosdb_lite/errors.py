"""CnosDB's errors as its HTTP API reports them, and one constructor per error the engine raises.

CnosDB builds an error body from the innermost error that carries a code (`ErrorCoder` derive): a 2-digit
module (`01` query, `02` tskv, `03` meta, `04` http, `05` coordinator) and a 4-digit variant, plus that
error's `Display` text.  Every error here is one CnosDB v2.4.3 raises in the same situation; the functions
keep the codes and message templates in one place so tests and the HTTP server see exactly one spelling.
"""

from __future__ import annotations

UNPROCESSABLE = 422
BAD_REQUEST = 400


class CnosDBError(Exception):
    """An error as CnosDB's HTTP API reports it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"CnosDBError({self.status}, {self.code!r}, {self.message!r})"


def _debug_str(text: str) -> str:
    """Rust's `{:?}` of a String (the meta errors print names that way)."""
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    out = out.replace("\t", "\\t").replace("\r", "\\r")
    return '"' + out + '"'


# -- http (04) -------------------------------------------------------------------------------------------

def parse_line_protocol(detail: str) -> CnosDBError:
    """`Error::ParseLineProtocol` (040004) wrapping a line-protocol parser error."""
    return CnosDBError(UNPROCESSABLE, "040004", f"Error parsing message: {detail}")


# -- meta (03) -------------------------------------------------------------------------------------------

def tenant_not_found(tenant: str) -> CnosDBError:
    return CnosDBError(UNPROCESSABLE, "030010", f"The tenant {tenant} not found")


def database_not_found(database: str) -> CnosDBError:
    return CnosDBError(UNPROCESSABLE, "030017", f"Database not found: {_debug_str(database)}")


def database_already_exists(database: str) -> CnosDBError:
    return CnosDBError(UNPROCESSABLE, "030018", f"Database {_debug_str(database)} already exists")


def table_not_found(table: str) -> CnosDBError:
    """`MetaError::TableNotFound`; queries name the table `tenant.db.table`."""
    return CnosDBError(UNPROCESSABLE, "030019", f"Table not found: {_debug_str(table)}")


def table_already_exists(table: str) -> CnosDBError:
    return CnosDBError(UNPROCESSABLE, "030020", f"Table {table} already exists.")


def not_support(msg: str) -> CnosDBError:
    """`MetaError::NotSupport`; a write older than the TTL fails with msg `create expired bucket`."""
    return CnosDBError(UNPROCESSABLE, "030034", f"Operation not support: {msg}")


# -- tskv (02) and coordinator (05) ----------------------------------------------------------------------

def column_type(column: str, found: str, expected: str) -> CnosDBError:
    """`TskvError::Schema(ColumnTypeError)`: a write disagrees with the stored column's kind or type."""
    return CnosDBError(UNPROCESSABLE, "020004",
                       f"DataSchemaError: Column '{column}' type error, found {found} expected {expected}")


def coordinator_common(msg: str) -> CnosDBError:
    """`CoordinatorError::CommonError` (timestamp overflow, in-request column conflicts)."""
    return CnosDBError(UNPROCESSABLE, "050014", msg)


# -- query (01) ------------------------------------------------------------------------------------------

def sql_parser(msg: str) -> CnosDBError:
    """`QueryError::Parser`: sqlparser's `ParserError` text."""
    return CnosDBError(UNPROCESSABLE, "010009", f"sql parser error: {msg}")


def multi_statement(num: int, sql: str) -> CnosDBError:
    return CnosDBError(UNPROCESSABLE, "010013", f"Multi-statement not allow, found num:{num}, sql:{sql}")


def semantic(msg: str, code: str = "010003") -> CnosDBError:
    return CnosDBError(UNPROCESSABLE, code, f"Semantic error: {msg}")


def not_implemented(msg: str) -> CnosDBError:
    return CnosDBError(UNPROCESSABLE, "010005", f"This feature is not implemented: {msg}")


def datafusion(msg: str) -> CnosDBError:
    """`QueryError::Datafusion`: planning and execution errors of the query engine."""
    msg = msg.removeprefix("DataFusion error: ")
    return CnosDBError(UNPROCESSABLE, "010001", f"Datafusion: {msg}")


def auth_tenant_not_found(tenant: str) -> CnosDBError:
    """`QueryError::Auth` for a request naming a tenant that does not exist (SQL requests)."""
    return CnosDBError(UNPROCESSABLE, "010016", f"Auth error: The tenant {tenant} not found")


def show_series_where_contains_field(column: str) -> CnosDBError:
    """`QueryError::ShowSeriesWhereContainsField`: SHOW SERIES / SHOW TAG VALUES filter on a field."""
    return CnosDBError(UNPROCESSABLE, "010046",
                       f"Semantic error: SHOW SERIES does not support where clause contains field {column}")
