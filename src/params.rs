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
///
/// The same pairs as `form_urlencoded::parse`, without its work where there
/// is nothing to decode: a key or value without `%` or `+` is compared or
/// copied as it is (every long-poll reads four parameters this way).
pub(crate) fn query_param(
    query: Option<&str>,
    name: &'static str,
) -> Result<Option<String>, Repeated> {
    let mut found = None;
    for pair in query.unwrap_or_default().split('&') {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !matches(key, name) {
            continue;
        }
        if found.is_some() {
            return Err(Repeated(name));
        }
        found = Some(decode(value));
    }
    Ok(found)
}

/// Whether `key`, once decoded, is `name`.
fn matches(key: &str, name: &str) -> bool {
    if needs_decoding(key) {
        decode(key) == name
    } else {
        key == name
    }
}

fn needs_decoding(text: &str) -> bool {
    text.bytes().any(|b| b == b'%' || b == b'+')
}

/// `text` decoded as `application/x-www-form-urlencoded` (`+` is a space,
/// `%XX` a byte; invalid UTF-8 becomes U+FFFD).
fn decode(text: &str) -> String {
    if !needs_decoding(text) {
        return text.to_owned();
    }
    // As the value of a pair with an empty key: a `=` inside stays.
    let pair = format!("={text}");
    form_urlencoded::parse(pair.as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The same answers as `form_urlencoded::parse` for every case it
    /// decodes.
    #[test]
    fn as_form_urlencoded_reads_it() {
        let reference = |query: &str, name: &str| -> Result<Option<String>, ()> {
            let mut found = None;
            for (k, v) in form_urlencoded::parse(query.as_bytes()) {
                if k == name {
                    if found.is_some() {
                        return Err(());
                    }
                    found = Some(v.into_owned());
                }
            }
            Ok(found)
        };
        let queries = [
            "",
            "&&",
            "cursor=abc",
            "cursor",
            "cursor=",
            "cursor=a&cursor=b",
            "cur%73or=x",
            "cursor=a%20b+c",
            "cursor=%ff%fe",
            "cursor=a=b",
            "x=1&cursor=2&y",
            "cursor+=1",
            "+cursor=1",
            "cursor%3D=1",
            "=cursor",
        ];
        for q in queries {
            assert_eq!(
                query_param(Some(q), "cursor").map_err(drop),
                reference(q, "cursor"),
                "{q:?}"
            );
        }
    }
}
