//! Checking a password against the hash Django stored, and the session-auth hash that ties a
//! login to the password it was made with.
//!
//! The hashing itself is the `djangohashers` crate's (PBKDF2-SHA256 and -SHA1, Argon2, bcrypt
//! and bcrypt-SHA256, scrypt: every hasher Django 5.2 lists by default). What is Django's here
//! is the policy around it, from `contrib/auth/hashers.py` and `base_user.py`: only the hashers
//! named in `PASSWORD_HASHERS` verify, and an unusable password (`!...`) never does.
//!
//! What it must not do: hash new passwords (Django re-hashes on its own next login when the
//! preferred hasher or its iterations changed), or decide which settings to refuse: it only
//! says which hasher paths it knows.

use crate::signing::{Keys, salted_hmac_sha256};

/// The algorithm prefix of each hasher class this module can verify.
const HASHERS: &[(&str, &str)] = &[
    (
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "pbkdf2_sha256",
    ),
    (
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "pbkdf2_sha1",
    ),
    ("django.contrib.auth.hashers.Argon2PasswordHasher", "argon2"),
    (
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "bcrypt_sha256",
    ),
    ("django.contrib.auth.hashers.BCryptPasswordHasher", "bcrypt"),
    ("django.contrib.auth.hashers.ScryptPasswordHasher", "scrypt"),
];

/// The password hashers of `PASSWORD_HASHERS` that may verify a login.
#[derive(Debug, Clone)]
pub struct Hashers {
    algorithms: Vec<&'static str>,
}

/// A `PASSWORD_HASHERS` entry this module cannot verify.
#[derive(Debug, thiserror::Error)]
#[error(
    "PASSWORD_HASHERS lists {0}, which ficus cannot verify (it verifies PBKDF2, PBKDF2-SHA1, Argon2, bcrypt, bcrypt-SHA256 and scrypt)"
)]
pub struct UnknownHasher(pub String);

impl Hashers {
    /// The hashers of the setting, in its order; an entry this module does not know is refused
    /// (a login through Rust would otherwise fail for the users it hashed).
    pub fn from_setting(paths: &[String]) -> Result<Self, UnknownHasher> {
        let algorithms = paths
            .iter()
            .map(|path| {
                HASHERS
                    .iter()
                    .find(|(class, _)| class == path)
                    .map(|(_, algorithm)| *algorithm)
                    .ok_or_else(|| UnknownHasher(path.clone()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { algorithms })
    }

    /// `check_password(password, encoded)`: whether `password` is the one `encoded` was made
    /// from, by a hasher the settings allow. Slow by design (PBKDF2 runs a million rounds): call
    /// it off the async threads.
    pub fn check(&self, password: &str, encoded: &str) -> bool {
        if encoded.starts_with('!') {
            return false;
        }
        let Some(algorithm) = encoded.split('$').next() else {
            return false;
        };
        if !self.algorithms.contains(&algorithm) {
            return false;
        }
        // djangohashers unwraps a PBKDF2 round count of zero; a stored hash is data, not code.
        if algorithm.starts_with("pbkdf2")
            && encoded
                .split('$')
                .nth(1)
                .and_then(|n| n.parse::<u32>().ok())
                < Some(1)
        {
            return false;
        }
        std::panic::catch_unwind(|| djangohashers::check_password(password, encoded))
            .is_ok_and(|verdict| verdict.unwrap_or(false))
    }

    /// The hash a user without that name is checked against, so an unknown user name costs as
    /// long as a wrong password (Django's `UserModel().set_password(password)` in
    /// `ModelBackend.authenticate`).
    pub fn waste_time(&self, password: &str) {
        const DUMMY: &str =
            "pbkdf2_sha256$1000000$ficusdummysalt$1fpJLqo6fG+J/DcUFDpgDG37gFFVXELLet5uh1aYoDk=";
        let _ = djangohashers::check_password(password, DUMMY);
    }
}

/// `AbstractBaseUser.get_session_auth_hash()` for a stored password hash and a secret key.
pub fn session_auth_hash(password_hash: &str, secret: &[u8]) -> String {
    let mac = salted_hmac_sha256(
        "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash",
        password_hash.as_bytes(),
        secret,
    );
    mac.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a session's `_auth_user_hash` says of the user's current password hash.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionHash {
    /// Made with `SECRET_KEY` from this password: the login stands.
    Current,
    /// Made with one of `SECRET_KEY_FALLBACKS`: the login stands, and Django cycles the session
    /// key and stores the current hash.
    Fallback,
    /// Missing, or made from another password: Django flushes the session.
    Stale,
}

/// Checks a session's stored hash as `django.contrib.auth.get_user` does.
pub fn check_session_hash(stored: Option<&str>, password_hash: &str, keys: &Keys) -> SessionHash {
    use subtle::ConstantTimeEq;
    let Some(stored) = stored.filter(|s| !s.is_empty()) else {
        return SessionHash::Stale;
    };
    let same = |key: &[u8]| -> bool {
        bool::from(
            session_auth_hash(password_hash, key)
                .as_bytes()
                .ct_eq(stored.as_bytes()),
        )
    };
    if same(&keys.current) {
        SessionHash::Current
    } else if keys.fallbacks.iter().any(|k| same(k)) {
        SessionHash::Fallback
    } else {
        SessionHash::Stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_hashers() -> Hashers {
        let paths: Vec<String> = HASHERS.iter().map(|(p, _)| (*p).to_owned()).collect();
        Hashers::from_setting(&paths).unwrap_or_else(|e| panic!("{e}"))
    }

    // From Django 5.2: make_password("a-long-passphrase", salt="ficussalt1234567") with
    // PBKDF2PasswordHasher (1,000,000 iterations).
    const ANA: &str =
        "pbkdf2_sha256$1000000$ficussalt1234567$LwT+6A+Vp8JqugRrUSuk3DrspkGVqJZ97WycFmHBOVA=";

    #[test]
    fn a_django_pbkdf2_hash_verifies_its_password_only() {
        let hashers = default_hashers();
        assert!(hashers.check("a-long-passphrase", ANA));
        assert!(!hashers.check("a-long-passphrasf", ANA));
        assert!(!hashers.check("", ANA));
    }

    #[test]
    fn unusable_and_unlisted_hashes_never_verify() {
        let only_argon =
            Hashers::from_setting(&["django.contrib.auth.hashers.Argon2PasswordHasher".to_owned()])
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(!only_argon.check("a-long-passphrase", ANA));
        assert!(!default_hashers().check("a-long-passphrase", &format!("!{ANA}")));
        assert!(!default_hashers().check("x", "pbkdf2_sha256$0$salt$hash"));
        assert!(!default_hashers().check("x", "nonsense"));
    }

    #[test]
    fn a_hasher_ficus_does_not_know_is_refused_by_name() {
        let err = Hashers::from_setting(&["myproject.hashers.Custom".to_owned()])
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("myproject.hashers.Custom")));
    }

    // From Django 5.2: User(password=ANA).get_session_auth_hash() with SECRET_KEY="s3cr3t".
    #[test]
    fn the_session_auth_hash_is_djangos() {
        assert_eq!(
            session_auth_hash(ANA, b"s3cr3t"),
            "43b73f6c883bcdaeea1eee41f8900ab701c3f126bfd7e65118f1b806b678d088"
        );
        let keys = Keys::new("new", &["s3cr3t".to_owned()]);
        let made_with_old = session_auth_hash(ANA, b"s3cr3t");
        assert_eq!(
            check_session_hash(Some(&made_with_old), ANA, &keys),
            SessionHash::Fallback
        );
        assert_eq!(
            check_session_hash(Some(&session_auth_hash(ANA, b"new")), ANA, &keys),
            SessionHash::Current
        );
        assert_eq!(
            check_session_hash(Some(&made_with_old), "other", &keys),
            SessionHash::Stale
        );
        assert_eq!(check_session_hash(None, ANA, &keys), SessionHash::Stale);
    }
}
