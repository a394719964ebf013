//! One query for both databases: `db.query(sql).bind(pk).fetch_optional::<Row>().await?`.
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

/// A query to run on the shared database; made by [`Database::query`].
#[must_use = "a query does nothing until one of its fetch or execute methods is awaited"]
pub struct Query<'db> {
    db: &'db Database,
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
            db: self,
            sql: sql.into(),
            values: Vec::new(),
        }
    }

    /// An aware datetime as Django's backend stores it: SQLite gets Django's text
    /// (`2024-01-01 12:00:00.000000`, which its own queries compare as text), PostgreSQL a
    /// `timestamp with time zone`.
    pub fn timestamp(&self, at: DateTime<Utc>) -> Value {
        match self {
            Database::Sqlite(_) => Value::Text(at.format("%Y-%m-%d %H:%M:%S%.6f").to_string()),
            Database::Postgres(_) => Value::Timestamp(at),
        }
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
        match self.db {
            Database::Sqlite(pool) => {
                bind_all!(sqlx::query_as(&self.sql), self.values)
                    .fetch_all(pool)
                    .await
            }
            Database::Postgres(pool) => {
                bind_all!(sqlx::query_as(&self.sql), self.values)
                    .fetch_all(pool)
                    .await
            }
        }
    }

    /// The first row, if there is one.
    pub async fn fetch_optional<T: Row + Send + Unpin>(self) -> Result<Option<T>, sqlx::Error> {
        match self.db {
            Database::Sqlite(pool) => {
                bind_all!(sqlx::query_as(&self.sql), self.values)
                    .fetch_optional(pool)
                    .await
            }
            Database::Postgres(pool) => {
                bind_all!(sqlx::query_as(&self.sql), self.values)
                    .fetch_optional(pool)
                    .await
            }
        }
    }

    /// The first column of the one row the query returns (`SELECT COUNT(*) ...`).
    pub async fn fetch_scalar<T: Scalar + Send + Unpin>(self) -> Result<T, sqlx::Error> {
        match self.db {
            Database::Sqlite(pool) => {
                bind_all!(sqlx::query_scalar(&self.sql), self.values)
                    .fetch_one(pool)
                    .await
            }
            Database::Postgres(pool) => {
                bind_all!(sqlx::query_scalar(&self.sql), self.values)
                    .fetch_one(pool)
                    .await
            }
        }
    }

    /// Runs a statement; the number of rows it changed.
    pub async fn execute(self) -> Result<u64, sqlx::Error> {
        match self.db {
            Database::Sqlite(pool) => Ok(bind_all!(sqlx::query(&self.sql), self.values)
                .execute(pool)
                .await?
                .rows_affected()),
            Database::Postgres(pool) => Ok(bind_all!(sqlx::query(&self.sql), self.values)
                .execute(pool)
                .await?
                .rows_affected()),
        }
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
