//! An `application/x-www-form-urlencoded` body read as Django reads `request.POST`, under
//! Django's limits.
//!
//! From Django 5.2's `HttpRequest.body` and `QueryDict.__init__`: a body longer than
//! `DATA_UPLOAD_MAX_MEMORY_SIZE` is `RequestDataTooBig`, more fields than
//! `DATA_UPLOAD_MAX_NUMBER_FIELDS` (counted as Python's `parse_qsl` counts them, one more than
//! the `&`s) is `TooManyFieldsSent`; both are a 400 in Django. Pairs keep their order and
//! repeated names keep every value (`getlist`), while `get` is the last one, as in a QueryDict.
//!
//! What it must not do: answer the request. The engine turns a [`LimitError`] into Django's 400.

/// Whether a request's Content-Type is `multipart/form-data`, as `HttpRequest._load_post_and_files`
/// tells (the media type only, any case, parameters aside).
pub fn is_multipart(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// Django's upload limits; None is "no limit", as the settings allow.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// `DATA_UPLOAD_MAX_MEMORY_SIZE`.
    pub max_memory_size: Option<u64>,
    /// `DATA_UPLOAD_MAX_NUMBER_FIELDS`.
    pub max_number_fields: Option<u64>,
}

/// A body over one of Django's limits, with the message of Django's exception.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// `RequestDataTooBig`.
    #[error("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")]
    TooBig,
    /// `TooManyFieldsSent`.
    #[error("The number of GET/POST parameters exceeded settings.DATA_UPLOAD_MAX_NUMBER_FIELDS.")]
    TooManyFields,
}

/// The fields of a form body, as `request.POST` holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormData {
    pairs: Vec<(String, String)>,
}

/// The fields of a body read some other way (a multipart body's), in their order.
impl FromIterator<(String, String)> for FormData {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Self {
            pairs: pairs.into_iter().collect(),
        }
    }
}

impl FormData {
    /// Parses `body` under `limits`.
    pub fn parse(body: &[u8], limits: Limits) -> Result<Self, LimitError> {
        if let Some(max) = limits.max_memory_size
            && body.len() as u64 > max
        {
            return Err(LimitError::TooBig);
        }
        if let Some(max) = limits.max_number_fields {
            let fields = if body.is_empty() {
                0
            } else {
                1 + body.iter().filter(|&&b| b == b'&').count() as u64
            };
            if fields > max {
                return Err(LimitError::TooManyFields);
            }
        }
        let pairs = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Ok(Self { pairs })
    }

    /// `POST.get(name)`: the last value under `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `POST.getlist(name)`.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every pair, in body order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_memory_size: Some(64),
        max_number_fields: Some(3),
    };

    #[test]
    fn fields_are_decoded_and_the_last_value_wins() {
        let form = FormData::parse(b"a=1&b=caf%C3%A9+au+lait&a=2", LIMITS);
        let form = form.unwrap_or_default();
        assert_eq!(form.get("a"), Some("2"));
        assert_eq!(form.get_all("a").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(form.get("b"), Some("café au lait"));
        assert_eq!(form.get("c"), None);
    }

    #[test]
    fn a_body_over_the_limits_is_refused_with_djangos_message() {
        assert_eq!(
            FormData::parse(&[b'a'; 65], LIMITS),
            Err(LimitError::TooBig)
        );
        // Python's parse_qsl counts separators, empty fields included.
        assert_eq!(
            FormData::parse(b"a=1&&&", LIMITS),
            Err(LimitError::TooManyFields)
        );
        assert_eq!(
            LimitError::TooManyFields.to_string(),
            "The number of GET/POST parameters exceeded settings.DATA_UPLOAD_MAX_NUMBER_FIELDS."
        );
        assert!(FormData::parse(b"a=1&b&c=", LIMITS).is_ok());
    }
}
