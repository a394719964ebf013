//! The database the Rust handlers share with Django: one async sqlx pool, opened from the same
//! `DATABASES["default"]` Django uses (read from the live settings at start-up), so both sides
//! always talk to the same SQLite file or PostgreSQL database.
//!
//! SQLite runs in WAL mode with a busy timeout, so Django's threads and the Rust handlers can
//! write to one file; Django's Unicode-aware `LOWER()` is installed on every SQLite connection so
//! case-insensitive searches match what the legacy views find. It never runs migrations: the
//! schema is Django's.

mod query;

pub use query::{Query, Row, Scalar, Transaction, Value, placeholders};

use std::ffi::{CStr, c_int};
use std::str::FromStr;
use std::time::Duration;

use libsqlite3_sys as ffi;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

/// Connections each side keeps open; handlers are short, so a few are plenty.
const MAX_CONNECTIONS: u32 = 8;

/// What ficus needs of Django's `DATABASES["default"]`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct DatabaseSettings {
    /// `ENGINE`, as `django.db.backends.sqlite3`.
    pub engine: String,
    /// `NAME`: the SQLite file, or the PostgreSQL database.
    pub name: String,
    /// `USER`.
    pub user: String,
    /// `PASSWORD`.
    pub password: String,
    /// `HOST`.
    pub host: String,
    /// `PORT`.
    pub port: String,
    /// `OPTIONS["timeout"]` for SQLite (seconds to wait for a lock).
    pub timeout: Option<f64>,
    /// `OPTIONS["sslmode"]` for PostgreSQL.
    pub sslmode: Option<String>,
}

/// Why the shared database cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Django uses a database sqlx does not speak.
    #[error(
        "Django's database engine is {0}; the Rust handlers support SQLite and PostgreSQL only"
    )]
    UnsupportedEngine(String),
    /// A setting that cannot be followed (an in-memory SQLite database, a port that is no number).
    #[error("the database settings are not usable: {0}")]
    BadSettings(String),
    /// sqlx refused the connection options.
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// The pool handlers query through: [`Database::query`] writes one query for both databases;
/// matching on the variants gives sqlx's own API for what it does not cover.
#[derive(Clone, Debug)]
pub enum Database {
    /// Django's `django.db.backends.sqlite3`.
    Sqlite(SqlitePool),
    /// Django's `django.db.backends.postgresql`.
    Postgres(PgPool),
}

impl Database {
    /// Opens a pool lazily: nothing connects until the first query, so a database that is down at
    /// start-up makes handlers answer 500 (as Django would) instead of stopping the server.
    pub fn open(settings: &DatabaseSettings) -> Result<Self, DbError> {
        match settings.engine.as_str() {
            "django.db.backends.sqlite3" => Self::open_sqlite(settings),
            "django.db.backends.postgresql" | "django.db.backends.postgresql_psycopg2" => {
                Self::open_postgres(settings)
            }
            other => Err(DbError::UnsupportedEngine(other.to_owned())),
        }
    }

    fn open_sqlite(settings: &DatabaseSettings) -> Result<Self, DbError> {
        if settings.name.is_empty() || settings.name == ":memory:" {
            return Err(DbError::BadSettings(
                "an in-memory SQLite database cannot be shared with Django".into(),
            ));
        }
        let busy = Duration::from_secs_f64(settings.timeout.unwrap_or(5.0).clamp(0.0, 3600.0));
        let options = SqliteConnectOptions::new()
            .filename(&settings.name)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(busy)
            // Django enforces foreign keys on SQLite; so must the other writer.
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            // A connection to a local file does not go stale: pinging it before every use
            // would cost a second round trip to its worker thread per query.
            .test_before_acquire(false)
            .after_connect(|conn, _meta| Box::pin(install_python_lower(conn)))
            .connect_lazy_with(options);
        Ok(Database::Sqlite(pool))
    }

    fn open_postgres(settings: &DatabaseSettings) -> Result<Self, DbError> {
        let mut options = PgConnectOptions::new()
            .database(&settings.name)
            .application_name("ficus");
        if !settings.host.is_empty() {
            options = options.host(&settings.host);
        }
        if !settings.port.is_empty() {
            let port = settings.port.parse::<u16>().map_err(|_| {
                DbError::BadSettings(format!("PORT {:?} is not a port number", settings.port))
            })?;
            options = options.port(port);
        }
        if !settings.user.is_empty() {
            options = options.username(&settings.user);
        }
        if !settings.password.is_empty() {
            options = options.password(&settings.password);
        }
        if let Some(mode) = &settings.sslmode {
            let mode = sqlx::postgres::PgSslMode::from_str(mode)
                .map_err(|_| DbError::BadSettings(format!("sslmode {mode:?} is not known")))?;
            options = options.ssl_mode(mode);
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_lazy_with(options);
        Ok(Database::Postgres(pool))
    }

    /// `sqlite` or `postgresql`, as Django's `connection.vendor` says.
    pub fn vendor(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgresql",
        }
    }
}

/// The legacy project swaps SQLite's ASCII-only `LOWER()` for Python's `str.lower` (see
/// `articles/search.py`); Rust's `to_lowercase` applies the same Unicode case mapping.
async fn install_python_lower(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let raw = handle.as_raw_handle().as_ptr();
    // SAFETY: the locked handle guarantees no other thread uses the connection meanwhile; the
    // function name is a static C string and the callback has no user data to free.
    let rc = unsafe {
        ffi::sqlite3_create_function_v2(
            raw,
            c"LOWER".as_ptr(),
            1,
            ffi::SQLITE_UTF8 | ffi::SQLITE_DETERMINISTIC,
            std::ptr::null_mut(),
            Some(unicode_lower),
            None,
            None,
            None,
        )
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(sqlx::Error::Protocol(format!(
            "cannot install LOWER() on SQLite (code {rc})"
        )))
    }
}

unsafe extern "C" fn unicode_lower(
    ctx: *mut ffi::sqlite3_context,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: SQLite calls this with `argc` valid values and a live context; text pointers stay
    // valid until the function returns, and SQLITE_TRANSIENT makes SQLite copy the result.
    unsafe {
        if argc != 1 || argv.is_null() {
            ffi::sqlite3_result_null(ctx);
            return;
        }
        let value = *argv;
        // Like Django's Python function, only text is lowered; numbers and NULL pass unchanged.
        if ffi::sqlite3_value_type(value) != ffi::SQLITE_TEXT {
            ffi::sqlite3_result_value(ctx, value);
            return;
        }
        let text = ffi::sqlite3_value_text(value);
        if text.is_null() {
            ffi::sqlite3_result_null(ctx);
            return;
        }
        let lowered = CStr::from_ptr(text.cast()).to_string_lossy().to_lowercase();
        ffi::sqlite3_result_text(
            ctx,
            lowered.as_ptr().cast(),
            lowered.len() as c_int,
            ffi::SQLITE_TRANSIENT(),
        );
    }
}
