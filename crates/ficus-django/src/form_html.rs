//! A form's HTML as Django 5.2's default form templates render it (`{{ form.as_p }}`), so a
//! ported page shows its form, its values and its errors byte for byte as Django does.
//!
//! It follows `django/forms/templates/django/forms/p.html`, `errors/list/ul.html`,
//! `widgets/input.html`, `widgets/textarea.html` and `BoundField.build_widget_attrs` (the
//! `required`, `aria-invalid`, `aria-describedby` and `id` attributes), including the
//! whitespace those templates leave, and the renderer's final `strip()`.
//!
//! What it must not do: validate. The handler decides the errors (with Django's messages) and
//! passes them in.

use crate::templates::escape;

/// An HTML attribute of a widget: `required` has no value, `maxlength="150"` has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    /// Written as the bare name.
    Flag,
    /// Written as `name="value"`, escaped.
    Value(String),
}

/// What a field is drawn as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Widget {
    /// `<input type="...">`; a password input never shows its value (`render_value=False`).
    Input(&'static str),
    /// `<textarea>`, whose attributes start with `cols="40" rows="10"` unless the form's own
    /// attributes replace them.
    Textarea,
}

/// One field of a bound or unbound form.
#[derive(Debug, Clone)]
pub struct Field {
    /// The field's name (`username`); its id is `id_<name>`.
    pub name: String,
    /// The label (`Username`), written with the `:` suffix.
    pub label: String,
    /// How it is drawn.
    pub widget: Widget,
    /// The widget's own attributes, in the order the form declares them.
    pub attrs: Vec<(String, Attr)>,
    /// Whether the field is required (adds `required`).
    pub required: bool,
    /// The submitted or initial value; None draws no value.
    pub value: Option<String>,
    /// The field's errors, in Django's words.
    pub errors: Vec<String>,
    /// `help_text`, written as HTML (Django marks it safe).
    pub help_text: Option<String>,
}

impl Field {
    /// A required field drawn with `widget` and no attributes yet.
    pub fn new(name: &str, label: &str, widget: Widget) -> Self {
        Self {
            name: name.to_owned(),
            label: label.to_owned(),
            widget,
            attrs: Vec::new(),
            required: true,
            value: None,
            errors: Vec::new(),
            help_text: None,
        }
    }

    /// Adds a widget attribute.
    pub fn attr(mut self, name: &str, value: Attr) -> Self {
        self.attrs.push((name.to_owned(), value));
        self
    }

    fn id(&self) -> String {
        format!("id_{}", self.name)
    }

    fn widget_html(&self) -> String {
        let mut attrs = self.attrs.clone();
        if self.widget == Widget::Textarea {
            // Textarea's defaults come first; the form's attributes update them in place.
            let mut merged: Vec<(String, Attr)> = [("cols", "40"), ("rows", "10")]
                .into_iter()
                .map(|(name, default)| {
                    let value = attrs
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone());
                    (
                        name.to_owned(),
                        value.unwrap_or(Attr::Value(default.to_owned())),
                    )
                })
                .collect();
            merged.extend(
                attrs
                    .into_iter()
                    .filter(|(n, _)| n != "cols" && n != "rows"),
            );
            attrs = merged;
        }
        if self.required {
            attrs.push(("required".into(), Attr::Flag));
        }
        if !self.errors.is_empty() {
            attrs.push(("aria-invalid".into(), Attr::Value("true".into())));
        }
        let mut described = Vec::new();
        if self.help_text.is_some() {
            described.push(format!("{}_helptext", self.id()));
        }
        if !self.errors.is_empty() {
            described.push(format!("{}_error", self.id()));
        }
        if !described.is_empty() && !attrs.iter().any(|(n, _)| n == "aria-describedby") {
            attrs.push(("aria-describedby".into(), Attr::Value(described.join(" "))));
        }
        if !attrs.iter().any(|(n, _)| n == "id") {
            attrs.push(("id".into(), Attr::Value(self.id())));
        }
        let attrs: String = attrs
            .iter()
            .map(|(name, value)| match value {
                Attr::Flag => format!(" {name}"),
                Attr::Value(v) => format!(" {name}=\"{}\"", escape(v)),
            })
            .collect();
        let name = escape(&self.name);
        match self.widget {
            Widget::Input(kind) => {
                let value = match (&self.value, kind) {
                    (_, "password") | (None, _) => String::new(),
                    (Some(v), _) => format!(" value=\"{}\"", escape(v)),
                };
                format!("<input type=\"{kind}\" name=\"{name}\"{value}{attrs}>")
            }
            Widget::Textarea => {
                let value = self.value.as_deref().map(escape).unwrap_or_default();
                format!("<textarea name=\"{name}\"{attrs}>\n{value}</textarea>")
            }
        }
    }
}

/// `errors/list/ul.html`.
fn error_list(errors: &[String], class: &str, field_id: Option<&str>) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let id = field_id
        .map(|id| format!(" id=\"{id}_error\""))
        .unwrap_or_default();
    let items: String = errors
        .iter()
        .map(|e| format!("<li>{}</li>", escape(e)))
        .collect();
    format!("<ul class=\"{class}\"{id}>{items}</ul>")
}

/// A form: its errors that belong to no field, and its visible fields.
#[derive(Debug, Clone, Default)]
pub struct Form {
    /// `non_field_errors()`, e.g. a failed login.
    pub non_field_errors: Vec<String>,
    /// The visible fields, in order.
    pub fields: Vec<Field>,
}

impl Form {
    /// The form as a ported template reads it: `{{ form.as_p }}`, marked safe as Django marks it.
    pub fn template_value(&self) -> minijinja::Value {
        minijinja::context! { as_p => minijinja::Value::from_safe_string(self.as_p()) }
    }

    /// `{{ form.as_p }}`.
    pub fn as_p(&self) -> String {
        let mut out = error_list(&self.non_field_errors, "errorlist nonfield", None);
        // The `{% if errors and not fields %}` block (hidden fields only) and its line end.
        out.push_str("\n\n");
        let count = self.fields.len();
        for (i, field) in self.fields.iter().enumerate() {
            out.push_str("\n  ");
            out.push_str(&error_list(&field.errors, "errorlist", Some(&field.id())));
            out.push_str("\n  <p>\n    ");
            out.push_str(&format!(
                "<label for=\"{}\">{}:</label>",
                field.id(),
                escape(&field.label)
            ));
            out.push_str("\n    ");
            out.push_str(&field.widget_html());
            out.push_str("\n    ");
            if let Some(help) = &field.help_text {
                out.push_str(&format!(
                    "\n      <span class=\"helptext\" id=\"{}_helptext\">{help}</span>\n    ",
                    field.id()
                ));
            }
            out.push_str("\n    ");
            if i + 1 == count {
                // `{% for field in hidden_fields %}` inside `{% if forloop.last %}`.
                out.push_str("\n      \n    ");
            }
            out.push_str("\n  </p>\n");
        }
        out.trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(username: Option<&str>, password_errors: &[&str], non_field: &[&str]) -> Form {
        let mut username_field = Field::new("username", "Username", Widget::Input("text"))
            .attr("autofocus", Attr::Flag)
            .attr("autocapitalize", Attr::Value("none".into()))
            .attr("autocomplete", Attr::Value("username".into()))
            .attr("maxlength", Attr::Value("150".into()));
        username_field.value = username.map(str::to_owned);
        let mut password = Field::new("password", "Password", Widget::Input("password"))
            .attr("autocomplete", Attr::Value("current-password".into()));
        password.errors = password_errors.iter().map(|e| (*e).to_owned()).collect();
        Form {
            non_field_errors: non_field.iter().map(|e| (*e).to_owned()).collect(),
            fields: vec![username_field, password],
        }
    }

    // Expectations from Django 5.2: AuthenticationForm().as_p(), bound and unbound.
    #[test]
    fn an_unbound_login_form_is_djangos() {
        assert_eq!(
            login(None, &[], &[]).as_p(),
            "<p>\n    <label for=\"id_username\">Username:</label>\n    <input type=\"text\" name=\"username\" autofocus autocapitalize=\"none\" autocomplete=\"username\" maxlength=\"150\" required id=\"id_username\">\n    \n    \n  </p>\n\n  \n  <p>\n    <label for=\"id_password\">Password:</label>\n    <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required id=\"id_password\">\n    \n    \n      \n    \n  </p>"
        );
    }

    #[test]
    fn errors_are_drawn_where_django_draws_them() {
        let html = login(
            Some("a\"na"),
            &["This field is required."],
            &["Please enter a correct username and password."],
        )
        .as_p();
        assert!(html.starts_with("<ul class=\"errorlist nonfield\"><li>Please enter a correct username and password.</li></ul>\n\n\n  \n  <p>"), "{html}");
        assert!(html.contains("value=\"a&quot;na\""), "{html}");
        assert!(html.contains("  <ul class=\"errorlist\" id=\"id_password_error\"><li>This field is required.</li></ul>\n  <p>"), "{html}");
        assert!(html.contains("required aria-invalid=\"true\" aria-describedby=\"id_password_error\" id=\"id_password\">"), "{html}");
    }

    // Django 5.2: CommentForm's body, Textarea(attrs={"rows": 4}), bound to "a<b".
    #[test]
    fn a_textarea_keeps_djangos_default_columns() {
        let mut body =
            Field::new("body", "Comment", Widget::Textarea).attr("rows", Attr::Value("4".into()));
        body.value = Some("a<b".into());
        assert_eq!(
            body.widget_html(),
            "<textarea name=\"body\" cols=\"40\" rows=\"4\" required id=\"id_body\">\na&lt;b</textarea>"
        );
    }
}
