//! One query for both databases: `db.query(sql).bind(pk).fetch_optional::<Row>().await?`, on the
//! pool or inside a transaction (`db.begin()`, Django's `transaction.atomic()`).
//!
//! The SQL is written once with `$1, $2, ...` placeholders (SQLite and PostgreSQL both read
//! them); the values are held until the query runs, then bound for whichever pool is open. A row
//! type derives `sqlx::FromRow`, which covers both databases. It adds no SQL of its own.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use super::Database;

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL (`None` of an `Option`).
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Text.
    Text(String),
    /// A blob.
    Bytes(Vec<u8>),
    /// An aware datetime, as Django stores it with `USE_TZ`.
    Timestamp(DateTime<Utc>),
}

macro_rules! value_from {
    ($($t:ty => $variant:ident),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(v.into())
            }
        })*
    };
}

value_from!(
    bool => Bool, i64 => Int, i32 => Int, f64 => Float, String => Text, &str => Text,
    Vec<u8> => Bytes, DateTime<Utc> => Timestamp,
);

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A query to run on the shared database; made by [`Database::query`] or
/// [`Transaction::query`].
#[must_use = "a query does nothing until one of its fetch or execute methods is awaited"]
pub struct Query<'db> {
    target: Target<'db>,
    /// Borrowed when written as a literal: the SQL of a hot route is not copied per request.
    sql: Cow<'static, str>,
    values: Vec<Value>,
}

/// What a row type needs: to be read from a row of either database.
pub trait Row: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> {}
impl<T> Row for T where T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> {}

/// What a single-column result needs: to decode from either database.
pub trait Scalar:
    for<'r> sqlx::Decode<'r, sqlx::Sqlite>
    + sqlx::Type<sqlx::Sqlite>
    + for<'r> sqlx::Decode<'r, sqlx::Postgres>
    + sqlx::Type<sqlx::Postgres>
{
}
impl<T> Scalar for T where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
{
}

/// Runs a query built by `$make` (`sqlx::query_as`, `sqlx::query_scalar`) with `$fetch`, on the
/// pool or the transaction's connection.
macro_rules! run {
    ($query:ident, $make:path, $fetch:ident) => {
        run!($query, $make, $fetch, |found| found)
    };
    ($query:ident, $make:path, $fetch:ident, $then:expr) => {
        match $query.target {
            Target::Pool(Database::Sqlite(pool)) => bind_all!($make(&$query.sql), $query.values)
                .$fetch(pool)
                .await
                .map($then),
            Target::Pool(Database::Postgres(pool)) => bind_all!($make(&$query.sql), $query.values)
                .$fetch(pool)
                .await
                .map($then),
            Target::Transaction(tx) => match &tx.connection {
                TransactionConnection::Sqlite(connection) => {
                    let mut connection = connection.lock().await;
                    bind_all!($make(&$query.sql), $query.values)
                        .$fetch(&mut **connection)
                        .await
                        .map($then)
                }
                TransactionConnection::Postgres(connection) => {
                    let mut connection = connection.lock().await;
                    bind_all!($make(&$query.sql), $query.values)
                        .$fetch(&mut **connection)
                        .await
                        .map($then)
                }
            },
        }
    };
}

/// Django's SQLite text for a datetime, or PostgreSQL's own type.
fn timestamp_for(sqlite: bool, at: DateTime<Utc>) -> Value {
    if sqlite {
        Value::Text(at.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
    } else {
        Value::Timestamp(at)
    }
}

/// Where a query runs.
enum Target<'db> {
    Pool(&'db Database),
    Transaction(&'db Transaction),
}

/// `transaction.atomic()`: statements on one connection that are committed together, or not at
/// all when it is dropped without [`commit`](Transaction::commit) (an `?` on the way out). On
/// SQLite it begins `IMMEDIATE`, as the legacy project's Django does, so two writers queue for
/// the lock instead of failing when one upgrades from reading.
pub struct Transaction {
    connection: TransactionConnection,
}

enum TransactionConnection {
    Sqlite(tokio::sync::Mutex<sqlx::Transaction<'static, sqlx::Sqlite>>),
    Postgres(tokio::sync::Mutex<sqlx::Transaction<'static, sqlx::Postgres>>),
}

impl Transaction {
    /// A query inside the transaction.
    pub fn query(&self, sql: impl Into<Cow<'static, str>>) -> Query<'_> {
        Query {
            target: Target::Transaction(self),
            sql: sql.into(),
            values: Vec::new(),
        }
    }

    /// Makes every statement of the transaction stick.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self.connection {
            TransactionConnection::Sqlite(tx) => tx.into_inner().commit().await,
            TransactionConnection::Postgres(tx) => tx.into_inner().commit().await,
        }
    }

    /// [`Database::timestamp`], for the transaction's database.
    pub fn timestamp(&self, at: DateTime<Utc>) -> Value {
        timestamp_for(
            matches!(self.connection, TransactionConnection::Sqlite(_)),
            at,
        )
    }
}

/// Binds the held values to a sqlx query of any shape (`query`, `query_as`, `query_scalar`).
macro_rules! bind_all {
    ($query:expr, $values:expr) => {{
        let mut query = $query;
        for value in $values {
            query = match value {
                Value::Null => query.bind(None::<i64>),
                Value::Bool(v) => query.bind(v),
                Value::Int(v) => query.bind(v),
                Value::Float(v) => query.bind(v),
                Value::Text(v) => query.bind(v),
                Value::Bytes(v) => query.bind(v),
                Value::Timestamp(v) => query.bind(v),
            };
        }
        query
    }};
}

impl Database {
    /// A query in `$1, $2, ...` placeholders, for either database.
    pub fn query(&self, sql: impl Into<Cow<'static, str>>) -> Query<'_> {
        Query {
            target: Target::Pool(self),
            sql: sql.into(),
            values: Vec::new(),
        }
    }

    /// An aware datetime as Django's backend stores it: SQLite gets Django's text
    /// (`2024-01-01 12:00:00.000000`, which its own queries compare as text), PostgreSQL a
    /// `timestamp with time zone`.
    pub fn timestamp(&self, at: DateTime<Utc>) -> Value {
        timestamp_for(matches!(self, Database::Sqlite(_)), at)
    }
}

impl Query<'_> {
    /// Binds the next placeholder.
    pub fn bind(mut self, value: impl Into<Value>) -> Self {
        self.values.push(value.into());
        self
    }

    /// Every row.
    pub async fn fetch_all<T: Row + Send + Unpin>(self) -> Result<Vec<T>, sqlx::Error> {
        run!(self, sqlx::query_as, fetch_all)
    }

    /// The first row, if there is one.
    pub async fn fetch_optional<T: Row + Send + Unpin>(self) -> Result<Option<T>, sqlx::Error> {
        run!(self, sqlx::query_as, fetch_optional)
    }

    /// The first column of the one row the query returns (`SELECT COUNT(*) ...`).
    pub async fn fetch_scalar<T: Scalar + Send + Unpin>(self) -> Result<T, sqlx::Error> {
        run!(self, sqlx::query_scalar, fetch_one)
    }

    /// Runs a statement; the number of rows it changed.
    pub async fn execute(self) -> Result<u64, sqlx::Error> {
        run!(self, sqlx::query, execute, |done| done.rows_affected())
    }
}

impl Database {
    /// Begins a transaction (Django's `transaction.atomic()`).
    pub async fn begin(&self) -> Result<Transaction, sqlx::Error> {
        Ok(match self {
            Database::Sqlite(pool) => Transaction {
                connection: TransactionConnection::Sqlite(tokio::sync::Mutex::new(
                    pool.begin_with("BEGIN IMMEDIATE").await?,
                )),
            },
            Database::Postgres(pool) => Transaction {
                connection: TransactionConnection::Postgres(tokio::sync::Mutex::new(
                    pool.begin().await?,
                )),
            },
        })
    }
}

/// `$1, $2, ...` from `first` on, `count` of them: the placeholders of an `IN (...)` list.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_from_the_first() {
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
        assert_eq!(placeholders(1, 0), "");
    }
}
