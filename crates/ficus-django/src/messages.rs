//! The encodings of `django.contrib.messages`, so a message added on one side is shown on the
//! other.
//!
//! From Django 5.2's `contrib/messages/storage/`: a message is the JSON list
//! `["__json_message", is_safe, level, text]` with `extra_tags` appended when it is not None;
//! the cookie storage signs the list (compressed, with the cookie keys, salt
//! `django.contrib.messages`, and a timestamp, since `SIGNING_BACKEND` is the timestamp signer)
//! in the `messages` cookie, ending it with `"__messagesnotfinished__"` when some messages did
//! not fit in its 2048 bytes; the session storage keeps the same JSON text under `_messages`.
//!
//! What it must not do: decide when messages are read or stored; that follows the request.

use serde_json::{Value, json};

use crate::signing::{Keys, Signer};

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `messages.INFO` is 20, `SUCCESS` 25, and so on.
    pub level: i64,
    /// The text (HTML when `safe`).
    pub text: String,
    /// `extra_tags`; `messages.success()` and the like give `""`.
    pub extra_tags: Option<String>,
    /// Whether the text was `SafeData` (shown without escaping).
    pub safe: bool,
}

const MARKER: &str = "__json_message";
/// The last element of a cookie list that did not hold every message.
const NOT_FINISHED: &str = "__messagesnotfinished__";
/// The cookie storage's `max_cookie_size`.
const MAX_COOKIE_SIZE: usize = 2048;

impl Message {
    fn to_json(&self) -> Value {
        let mut list = vec![
            json!(MARKER),
            json!(i64::from(self.safe)),
            json!(self.level),
            json!(self.text),
        ];
        if let Some(tags) = &self.extra_tags {
            list.push(json!(tags));
        }
        Value::Array(list)
    }

    fn from_json(value: &Value) -> Option<Self> {
        let list = value.as_array()?;
        if list.first()?.as_str()? != MARKER {
            return None;
        }
        Some(Self {
            safe: list.get(1)?.as_i64()? != 0,
            level: list.get(2)?.as_i64()?,
            text: list.get(3)?.as_str()?.to_owned(),
            extra_tags: match list.get(4) {
                Some(Value::String(tags)) => Some(tags.clone()),
                _ => None,
            },
        })
    }
}

/// What a messages cookie held.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CookieMessages {
    /// The messages, oldest first.
    pub messages: Vec<Message>,
    /// False when the cookie said more messages wait in the next storage (the session).
    pub all_retrieved: bool,
}

/// The `messages` cookie of `CookieStorage`.
#[derive(Debug, Clone)]
pub struct CookieCodec {
    signer: Signer,
}

impl CookieCodec {
    /// The codec for the project's keys (the cookie keys are derived from them).
    pub fn new(keys: &Keys) -> Self {
        Self {
            signer: Signer::new(keys.for_cookies(), "django.contrib.messages"),
        }
    }

    /// The messages of a cookie value; None for a value that is not Django's (Django then
    /// deletes the cookie).
    pub fn decode(&self, cookie: &str) -> Option<CookieMessages> {
        let value = self.signer.loads(cookie, None, 0).ok()?;
        let mut list = value.as_array()?.clone();
        let all_retrieved = list.last().and_then(Value::as_str) != Some(NOT_FINISHED);
        if !all_retrieved {
            list.pop();
        }
        let messages = list
            .iter()
            .map(Message::from_json)
            .collect::<Option<Vec<_>>>()?;
        Some(CookieMessages {
            messages,
            all_retrieved,
        })
    }

    /// The cookie value for `messages`, and the oldest ones that did not fit (which
    /// `FallbackStorage` puts in the session). None when there is nothing to store.
    pub fn encode(&self, messages: &[Message], now: u64) -> (Option<String>, Vec<Message>) {
        if messages.is_empty() {
            return (None, Vec::new());
        }
        let all = self.sign(messages, false, now);
        if all.len() <= MAX_COOKIE_SIZE {
            return (Some(all), Vec::new());
        }
        // FallbackStorage stores with remove_oldest=False: keep the oldest that fit.
        let mut keep = messages.len();
        while keep > 0 && self.sign(&messages[..keep], true, now).len() > MAX_COOKIE_SIZE {
            keep -= 1;
        }
        (
            Some(self.sign(&messages[..keep], true, now)),
            messages[keep..].to_vec(),
        )
    }

    fn sign(&self, messages: &[Message], unfinished: bool, now: u64) -> String {
        let mut list: Vec<Value> = messages.iter().map(Message::to_json).collect();
        if unfinished {
            list.push(json!(NOT_FINISHED));
        }
        self.signer.dumps(&Value::Array(list), true, now)
    }
}

/// The text `SessionStorage` keeps under `_messages`.
pub fn to_session(messages: &[Message]) -> String {
    crate::signing::python_json(&Value::Array(
        messages.iter().map(Message::to_json).collect(),
    ))
}

/// The messages of the session's `_messages`; a value that is not Django's is no messages.
pub fn from_session(stored: &Value) -> Vec<Message> {
    let Some(text) = stored.as_str() else {
        return Vec::new();
    };
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| {
            v.as_array()
                .map(|l| l.iter().filter_map(Message::from_json).collect())
        })
        .unwrap_or_default()
}

/// The session key of `SessionStorage`.
pub const SESSION_KEY: &str = "_messages";

/// A message as a template value: prints as its text (unescaped when Django marked it safe,
/// as the admin's messages with a link are), with `message`, `level`, `level_tag`, `tags` and
/// `extra_tags`.
#[derive(Debug)]
pub struct MessageValue(pub Message);

impl MessageValue {
    /// The template value of `message`.
    pub fn value(message: Message) -> minijinja::Value {
        minijinja::Value::from_object(Self(message))
    }

    fn level_tag(&self) -> &'static str {
        match self.0.level {
            10 => "debug",
            20 => "info",
            25 => "success",
            30 => "warning",
            40 => "error",
            _ => "",
        }
    }
}

impl minijinja::value::Object for MessageValue {
    // Plain: printed by `render`, as `str(message)`, not as a mapping.
    fn repr(self: &std::sync::Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn get_value(self: &std::sync::Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        use minijinja::Value;
        let message = &self.0;
        Some(match key.as_str()? {
            "message" => Value::from(message.text.clone()),
            "level" => Value::from(message.level),
            "level_tag" => Value::from(self.level_tag()),
            "extra_tags" => Value::from(message.extra_tags.clone().unwrap_or_default()),
            "tags" => {
                let extra = message.extra_tags.as_deref().unwrap_or("");
                let tags: Vec<&str> = [extra, self.level_tag()]
                    .into_iter()
                    .filter(|t| !t.is_empty())
                    .collect();
                Value::from(tags.join(" "))
            }
            _ => return None,
        })
    }

    fn render(self: &std::sync::Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn success(text: &str) -> Message {
        Message {
            level: 25,
            text: text.to_owned(),
            extra_tags: Some(String::new()),
            safe: false,
        }
    }

    // From Django 5.2: get_cookie_signer(salt="django.contrib.messages") with SECRET_KEY
    // "s3cr3t" signed [Message(25, "Hi")] at 1700000000 (extra_tags None).
    #[test]
    fn a_cookie_django_wrote_is_read() {
        let codec = CookieCodec::new(&Keys::new("s3cr3t", &[]));
        let cookie = "W1siX19qc29uX21lc3NhZ2UiLDAsMjUsIkhpIl1d:1r31eq:VEMpQkLO6YEHFXpPkDkh-ZLNk_8TzboBY2yl6LOn1EI";
        let read = codec.decode(cookie);
        let expected = Message {
            extra_tags: None,
            ..success("Hi")
        };
        assert_eq!(
            read,
            Some(CookieMessages {
                messages: vec![expected],
                all_retrieved: true
            })
        );
        assert_eq!(codec.decode("forged:1r31eq:xxxx"), None);
    }

    #[test]
    fn messages_that_do_not_fit_the_cookie_are_handed_on() {
        let codec = CookieCodec::new(&Keys::new("s3cr3t", &[]));
        // Random text does not compress, so a few of these overflow 2048 bytes.
        let noise = || crate::sessions::random_string(700, b"abcdefghijklmnopqrstuvwxyz");
        let many: Vec<Message> = (0..8).map(|_| success(&noise())).collect();
        let (cookie, rest) = codec.encode(&many, 0);
        let cookie = cookie.unwrap_or_default();
        assert!(cookie.len() <= MAX_COOKIE_SIZE);
        let read = codec.decode(&cookie);
        let read = read.unwrap_or_else(|| panic!("the cookie does not decode"));
        assert!(!read.all_retrieved);
        assert_eq!(read.messages.len() + rest.len(), 8);
        assert_eq!(read.messages[0], many[0]);
    }

    #[test]
    fn a_message_prints_escaped_unless_django_marked_it_safe() {
        let options = crate::templates::Options {
            time_zone: chrono_tz::UTC,
            use_tz: true,
        };
        let env = crate::templates::environment(&options);
        let render = |message: Message| {
            env.render_str(
                "{{ m }}|{{ m.tags }}",
                minijinja::context! { m => MessageValue::value(message) },
            )
            .unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(render(success("<b>a</b>")), "&lt;b&gt;a&lt;/b&gt;|success");
        let safe = Message {
            safe: true,
            ..success("<a href=\"/x/\">x</a>")
        };
        assert_eq!(render(safe), "<a href=\"/x/\">x</a>|success");
    }

    #[test]
    fn session_messages_round_trip() {
        let stored = to_session(&[success("Thanks, your comment was posted.")]);
        assert_eq!(
            stored,
            r#"[["__json_message",0,25,"Thanks, your comment was posted.",""]]"#
        );
        assert_eq!(
            from_session(&json!(stored)),
            vec![success("Thanks, your comment was posted.")]
        );
    }
}
