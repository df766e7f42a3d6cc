//! Reading client-supplied parameters, shared by the extractors.

/// A query parameter given more than once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Repeated(pub(crate) &'static str);

impl std::fmt::Display for Repeated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid request: `{}` is given more than once; allowed: at most once",
            self.0
        )
    }
}

/// The value of query parameter `name`, percent-decoded (invalid UTF-8
/// becomes U+FFFD and so fails any later syntax check). `Ok(None)` when
/// absent.
pub(crate) fn query_param(
    query: Option<&str>,
    name: &'static str,
) -> Result<Option<String>, Repeated> {
    let mut found = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key == name {
            if found.is_some() {
                return Err(Repeated(name));
            }
            found = Some(value.into_owned());
        }
    }
    Ok(found)
}

/// Longest part of a client's value repeated in an error message.
const MAX_ECHO: usize = 64;

/// At most 64 characters of a client's value, for an error message.
pub(crate) fn echo(value: &str) -> String {
    let mut echo: String = value.chars().take(MAX_ECHO).collect();
    if echo.len() < value.len() {
        echo.push('…');
    }
    echo
}
