//! The database the Rust handlers share with Django: one async sqlx pool, opened from the same
//! `DATABASES["default"]` Django uses (read from the live settings at start-up), so both sides
//! always talk to the same SQLite file or PostgreSQL database.
//!
//! SQLite runs in WAL mode with a busy timeout, so Django's threads and the Rust handlers can
//! write to one file; Django's Unicode-aware `LOWER()` is installed on every SQLite connection so
//! case-insensitive searches match what the legacy views find. It never runs migrations: the
//! schema is Django's. Both sides must run the same SQLite library (the system one Python's
//! `sqlite3` loads), or their locks do not see each other: `open` refuses a second one.

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
    /// The SQLite library version Python's `sqlite3` module runs, when Django's engine is
    /// SQLite: it must be the library ficus runs too (see [`DbError::TwoSqlites`]).
    #[serde(default)]
    pub python_sqlite: Option<String>,
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
    /// Python's `sqlite3` module and ficus run two different SQLite libraries in one process.
    /// Each keeps its own table of open files, and POSIX locks are per process, so neither sees
    /// the other's locks: both could write the file at once, and one can truncate the WAL
    /// index the other has mapped (the process dies of SIGBUS). SQLite's "How To Corrupt An
    /// SQLite Database File", section 2.2.1.
    #[error(
        "Django's sqlite3 module runs SQLite {python} and ficus runs SQLite {ficus}: two SQLite \
         libraries in one process do not see each other's locks, so the Rust handlers must not \
         open Django's SQLite file (build ficus against the libsqlite3 this Python's sqlite3 \
         module loads)"
    )]
    TwoSqlites {
        /// `sqlite3.sqlite_version` in Python.
        python: String,
        /// `sqlite3_libversion()` in ficus.
        ficus: String,
    },
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
        if let Some(python) = &settings.python_sqlite {
            let ficus = sqlite_version();
            if *python != ficus {
                return Err(DbError::TwoSqlites {
                    python: python.clone(),
                    ficus,
                });
            }
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

/// The version of the SQLite library ficus's connections run (the one it is linked to).
pub fn sqlite_version() -> String {
    // SAFETY: sqlite3_libversion returns a pointer to a static NUL-terminated string.
    unsafe { CStr::from_ptr(ffi::sqlite3_libversion()) }
        .to_string_lossy()
        .into_owned()
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

#[cfg(test)]
mod tests {
    use super::*;
    use pyo3::prelude::*;

    fn sqlite_settings(python_sqlite: Option<String>) -> DatabaseSettings {
        DatabaseSettings {
            engine: "django.db.backends.sqlite3".into(),
            name: "db.sqlite3".into(),
            python_sqlite,
            ..Default::default()
        }
    }

    #[test]
    fn a_python_running_another_sqlite_is_refused_before_anything_connects() {
        let err = Database::open(&sqlite_settings(Some("3.0.1".into())))
            .expect_err("another SQLite in Python must be refused");
        assert!(matches!(err, DbError::TwoSqlites { .. }), "{err:?}");
        let shown = err.to_string();
        assert!(shown.contains("SQLite 3.0.1"), "{shown}");
        assert!(shown.contains(&sqlite_version()), "{shown}");
    }

    #[tokio::test]
    async fn the_sqlite_python_runs_is_accepted() {
        assert!(Database::open(&sqlite_settings(Some(sqlite_version()))).is_ok());
    }

    /// The build links the shared libsqlite3 Python's `_sqlite3` loads, not a copy of its own:
    /// the function `_sqlite3` resolves is the very one ficus calls.
    #[test]
    fn python_and_ficus_run_one_sqlite_library() {
        Python::initialize();
        let (version, address) = Python::attach(|py| -> PyResult<(String, usize)> {
            let module = py.import("_sqlite3")?;
            let ctypes = py.import("ctypes")?;
            let file: String = module.getattr("__file__")?.extract()?;
            let function = ctypes
                .getattr("CDLL")?
                .call1((file,))?
                .getattr("sqlite3_libversion")?;
            let address = ctypes
                .getattr("cast")?
                .call1((function, ctypes.getattr("c_void_p")?))?
                .getattr("value")?
                .extract()?;
            Ok((module.getattr("sqlite_version")?.extract()?, address))
        })
        .expect("Python's _sqlite3 and ctypes");
        assert_eq!(version, sqlite_version());
        assert_eq!(
            address,
            ffi::sqlite3_libversion as *const () as usize,
            "Python's sqlite3 module calls another SQLite library than ficus"
        );
    }

    /// What Django's threads and the Rust handlers do in `serve`: write one WAL-mode file from
    /// both SQLite users of the process at once, connections opening and closing as they go.
    /// With two SQLite libraries this fails within a second (SQLITE_IOERR_SHORT_READ: one
    /// truncated the WAL index the other had mapped), or the process dies of SIGBUS.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn python_and_ficus_writing_one_sqlite_file_at_once_lose_no_row() {
        const ROWS: usize = 1500;
        let dir = tempfile::tempdir().expect("a scratch directory");
        let name = dir.path().join("db.sqlite3").display().to_string();
        Python::initialize();
        let writer = Python::attach(|py| -> PyResult<Py<PyAny>> {
            let code = c"
import sqlite3

def connect(name):
    connection = sqlite3.connect(name, timeout=20, isolation_level=None)
    connection.execute('PRAGMA journal_mode=WAL')
    connection.execute('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, side TEXT)')
    return connection

def write(name, rows):
    connection = connect(name)
    for i in range(rows):
        connection.execute('BEGIN IMMEDIATE')
        connection.execute(\"INSERT INTO t (side) VALUES ('python')\")
        connection.execute('COMMIT')
        if i % 50 == 49:
            connection.close()
            connection = connect(name)
    connection.close()
";
            let module = pyo3::types::PyModule::from_code(py, code, c"writer.py", c"writer")?;
            module
                .getattr("connect")?
                .call1((&name,))?
                .call_method0("close")?;
            Ok(module.getattr("write")?.unbind())
        })
        .expect("the table, made by Python");
        let python = {
            let name = name.clone();
            std::thread::spawn(move || {
                Python::attach(|py| writer.bind(py).call1((name, ROWS)).map(drop))
            })
        };
        let settings = DatabaseSettings {
            name,
            timeout: Some(20.0),
            ..sqlite_settings(Some(sqlite_version()))
        };
        for _ in 0..ROWS / 50 {
            let db = Database::open(&settings).expect("settings");
            for _ in 0..50 {
                db.query("INSERT INTO t (side) VALUES ('rust')")
                    .execute()
                    .await
                    .expect("a write beside Python's");
            }
            if let Database::Sqlite(pool) = &db {
                pool.close().await;
            }
        }
        python
            .join()
            .expect("the Python thread")
            .expect("Python's writes");
        let db = Database::open(&settings).expect("settings");
        let Database::Sqlite(pool) = &db else {
            unreachable!()
        };
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(pool)
            .await
            .expect("the check");
        assert_eq!(check, "ok");
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(pool)
            .await
            .expect("the count");
        assert_eq!(rows, 2 * ROWS as i64);
    }
}
