//! Helpers shared by the adapters: reading fields out of JSON by dotted
//! path, parsing timestamps, deterministic ids, and normalising free-text
//! reasons, methods, addresses and country names.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use authtrail_schemas::{Method, Reason};

use super::ParseError;
use super::memo::{memo, memoized};

/// Parses a record as a JSON object.
pub fn parse_object(record: &str) -> Result<Value, ParseError> {
    let value: Value = serde_json::from_str(record)
        .map_err(|err| ParseError::rejected(format!("not valid JSON: {err}")))?;
    if !value.is_object() {
        return Err(ParseError::rejected(format!(
            "expected a JSON object, found {}",
            json_kind(&value)
        )));
    }
    Ok(value)
}

/// A short name for a JSON value's type, for error messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The value at a dotted path (`client.geographicalContext.city`). Also
/// finds flattened keys (`"event.category": …`), as ECS documents and some
/// shippers write them.
pub fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = value;
    let mut rest = path;
    loop {
        let object = current.as_object()?;
        if let Some(found) = object.get(rest) {
            return Some(found);
        }
        let (head, tail) = rest.split_once('.')?;
        current = object.get(head)?;
        rest = tail;
    }
}

/// The text at a path: a non-empty string (trimmed), or a number or
/// boolean written out. `null`, `""` and `"-"` count as missing.
pub fn text(value: &Value, path: &str) -> Option<String> {
    at(value, path).and_then(as_text)
}

/// The text of a scalar value, as [`text`] defines it.
pub fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => {
            let s = s.trim();
            (!s.is_empty() && s != "-").then(|| s.to_owned())
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The first path that has text.
pub fn first_text(value: &Value, paths: &[&str]) -> Option<String> {
    paths.iter().find_map(|path| text(value, path))
}

/// A number at a path, also from a numeric string.
pub fn number(value: &Value, path: &str) -> Option<f64> {
    match at(value, path)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n: &f64| n.is_finite())
}

/// A boolean at a path, also from `"true"`/`"false"` strings.
pub fn boolean(value: &Value, path: &str) -> Option<bool> {
    match at(value, path)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Parses a timestamp: RFC 3339, `YYYY-MM-DD HH:MM:SS[.fff]` (UTC), or a
/// number of seconds, milliseconds or microseconds since the epoch (told
/// apart by magnitude).
pub fn parse_time_value(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                epoch_to_time(i)
            } else {
                n.as_f64().and_then(|f| {
                    if f.abs() < 1e11 {
                        DateTime::from_timestamp_micros((f * 1e6).round() as i64)
                    } else {
                        epoch_to_time(f.round() as i64)
                    }
                })
            }
        }
        Value::String(s) => parse_time_text(s),
        _ => None,
    }
}

/// Parses a textual timestamp, as [`parse_time_value`] describes.
pub fn parse_time_text(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f %z",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(Utc.from_utc_datetime(&t));
        }
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok().and_then(epoch_to_time);
    }
    None
}

fn epoch_to_time(n: i64) -> Option<DateTime<Utc>> {
    let magnitude = n.unsigned_abs();
    if magnitude < 100_000_000_000 {
        DateTime::from_timestamp(n, 0)
    } else if magnitude < 100_000_000_000_000 {
        DateTime::from_timestamp_millis(n)
    } else {
        DateTime::from_timestamp_micros(n)
    }
}

/// The time at the first of `paths` that holds one, or a rejection naming
/// the fields that were looked at.
pub fn required_time(value: &Value, paths: &[&str]) -> Result<DateTime<Utc>, ParseError> {
    for path in paths {
        if let Some(found) = at(value, path) {
            return parse_time_value(found).ok_or_else(|| {
                ParseError::rejected(format!("field `{path}` is not a timestamp: {found}"))
            });
        }
    }
    Err(ParseError::rejected(format!(
        "missing timestamp (looked for {})",
        paths
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// The id of a record that carries none of its own: SHA-256 of source and
/// raw payload, first 128 bits in hex. The same bytes always get the same
/// id, so a replay is recognised as a duplicate.
pub fn hashed_id(source: &str, raw: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(source.as_bytes());
    hasher.update([0u8]);
    hasher.update(raw.as_bytes());
    let digest = hasher.finalize();
    hex::encode(&digest[..16])
}

/// The source's own id if it has one, else [`hashed_id`].
pub fn id_or_hash(own: Option<String>, source: &str, raw: &str) -> String {
    own.unwrap_or_else(|| hashed_id(source, raw))
}

memo!(REASONS: Reason);
memo!(METHODS: Option<Method>);

/// Normalises a source's own words for a failure into a [`Reason`].
pub fn reason_from_text(detail: &str) -> Reason {
    memoized(&REASONS, detail, classify_reason)
}

fn classify_reason(detail: &str) -> Reason {
    let d = detail.to_ascii_lowercase().replace(['_', '-'], " ");
    let has = |words: &[&str]| words.iter().any(|w| d.contains(w));
    let mfa = has(&[
        "mfa",
        "2fa",
        "two factor",
        "twofa",
        "totp",
        "otp",
        "factor",
        "push",
        "verify",
        "sms code",
        "second factor",
        "authenticator",
    ]);
    if has(&[
        "domain not whitelisted",
        "domain not allowed",
        "domain is not allowed",
        "not whitelisted",
        "not allowlisted",
    ]) {
        Reason::DomainNotAllowed
    } else if has(&["replay"]) {
        Reason::Replay
    } else if has(&[
        "locked",
        "lockout",
        "temporarily disabled",
        "too many failed",
    ]) {
        Reason::AccountLocked
    } else if has(&[
        "username or password",
        "email or password",
        "user name or password",
        "login or password",
    ]) {
        Reason::InvalidCredentials
    } else if mfa && has(&["denied", "rejected", "deny", "reject"]) {
        Reason::MfaDenied
    } else if mfa {
        Reason::MfaFailed
    } else if has(&[
        "unknown user",
        "invalid user",
        "no such user",
        "user not found",
        "user does not exist",
        "invalid username",
        "invalid email",
        "user not exist",
        "user doesn't exist",
        "unknown principal",
        "not found",
    ]) {
        Reason::UnknownUser
    } else if has(&["expired"]) {
        Reason::ExpiredCredentials
    } else if has(&[
        "disabled",
        "deactivated",
        "suspended",
        "inactive",
        "blocked user",
    ]) {
        Reason::DisabledUser
    } else if has(&[
        "password",
        "credential",
        "wrong",
        "bad secret",
        "invalid secret",
        "authentication failure",
        "incorrect",
        "invalid login",
    ]) {
        Reason::InvalidCredentials
    } else if has(&[
        "config",
        "misconfigur",
        "certificate",
        "no connection",
        "connection error",
    ]) {
        Reason::ConfigError
    } else {
        Reason::Other
    }
}

/// Recognises common spellings of authentication methods.
pub fn method_from_text(text: &str) -> Option<Method> {
    memoized(&METHODS, text, classify_method)
}

fn classify_method(text: &str) -> Option<Method> {
    let t = text.to_ascii_lowercase();
    let has = |w: &str| t.contains(w);
    Some(
        if has("webauthn") || has("fido") || has("u2f") || has("passkey") || has("security key") {
            Method::Webauthn
        } else if has("push") {
            Method::Push
        } else if has("totp") || has("otp") || has("authenticator") || has("token") && has("soft") {
            Method::Totp
        } else if has("sms") || has("voice") || has("call") {
            Method::Sms
        } else if has("saml") {
            Method::Saml
        } else if has("oidc") || has("openid") {
            Method::Oidc
        } else if has("oauth") {
            Method::Oauth
        } else if has("ldap") || has("active directory") || has("active_directory") {
            Method::Ldap
        } else if has("publickey") || has("ssh key") || has("ssh_key") {
            Method::SshKey
        } else if has("api key") || has("api_key") || has("apikey") || has("access token") {
            Method::ApiKey
        } else if has("password") || has("pap") || has("ntlm") || has("database") {
            Method::Password
        } else {
            return None;
        },
    )
}

/// Cleans a client address: drops placeholders (`-`, `::1`-less empties)
/// and the IPv4-mapped IPv6 prefix Windows writes (`::ffff:10.0.0.5`).
pub fn clean_ip(ip: Option<String>) -> Option<String> {
    let ip = ip?;
    let clean = clean_ip_text(&ip)?;
    // Most addresses arrive clean: keep the allocation we have.
    Some(if clean.len() == ip.len() {
        ip
    } else {
        clean.to_owned()
    })
}

/// [`clean_ip`] of borrowed text: the address within it.
pub fn clean_ip_text(ip: &str) -> Option<&str> {
    let clean = ip.trim();
    let clean = clean.strip_prefix("::ffff:").unwrap_or(clean);
    if clean.is_empty() || clean == "-" || clean == "unknown" {
        return None;
    }
    Some(clean)
}

/// An ISO 3166 alpha-2 code from a code or a country's English name. A
/// name not in the table is kept as given, so nothing is lost.
pub fn country_code(country: Option<String>) -> Option<String> {
    let country = country?;
    if is_country_code(&country) {
        return Some(country);
    }
    country_code_text(&country).map(Cow::into_owned)
}

fn is_country_code(text: &str) -> bool {
    text.len() == 2 && text.bytes().all(|b| b.is_ascii_uppercase())
}

/// [`country_code`] of borrowed text, borrowing it where it is a code
/// already.
pub fn country_code_text(country: &str) -> Option<Cow<'_, str>> {
    let trimmed = country.trim();
    if is_country_code(trimmed) {
        return Some(Cow::Borrowed(trimmed));
    }
    if trimmed.len() == 2 && trimmed.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Some(Cow::Owned(trimmed.to_ascii_uppercase()));
    }
    let lower = trimmed.to_ascii_lowercase();
    COUNTRY_NAMES
        .iter()
        .find(|(name, _)| *name == lower)
        .map(|(_, code)| Cow::Borrowed(*code))
        .or_else(|| (!trimmed.is_empty()).then_some(Cow::Borrowed(trimmed)))
}

/// English names (as IdPs write them) of the countries most often seen.
const COUNTRY_NAMES: &[(&str, &str)] = &[
    ("united states", "US"),
    ("united states of america", "US"),
    ("usa", "US"),
    ("canada", "CA"),
    ("mexico", "MX"),
    ("brazil", "BR"),
    ("argentina", "AR"),
    ("chile", "CL"),
    ("colombia", "CO"),
    ("peru", "PE"),
    ("united kingdom", "GB"),
    ("great britain", "GB"),
    ("ireland", "IE"),
    ("france", "FR"),
    ("germany", "DE"),
    ("netherlands", "NL"),
    ("the netherlands", "NL"),
    ("belgium", "BE"),
    ("luxembourg", "LU"),
    ("switzerland", "CH"),
    ("austria", "AT"),
    ("italy", "IT"),
    ("spain", "ES"),
    ("portugal", "PT"),
    ("denmark", "DK"),
    ("norway", "NO"),
    ("sweden", "SE"),
    ("finland", "FI"),
    ("iceland", "IS"),
    ("poland", "PL"),
    ("czechia", "CZ"),
    ("czech republic", "CZ"),
    ("slovakia", "SK"),
    ("hungary", "HU"),
    ("romania", "RO"),
    ("bulgaria", "BG"),
    ("greece", "GR"),
    ("turkey", "TR"),
    ("türkiye", "TR"),
    ("ukraine", "UA"),
    ("russia", "RU"),
    ("russian federation", "RU"),
    ("belarus", "BY"),
    ("estonia", "EE"),
    ("latvia", "LV"),
    ("lithuania", "LT"),
    ("serbia", "RS"),
    ("croatia", "HR"),
    ("slovenia", "SI"),
    ("israel", "IL"),
    ("united arab emirates", "AE"),
    ("saudi arabia", "SA"),
    ("qatar", "QA"),
    ("egypt", "EG"),
    ("iran", "IR"),
    ("iraq", "IQ"),
    ("pakistan", "PK"),
    ("india", "IN"),
    ("bangladesh", "BD"),
    ("sri lanka", "LK"),
    ("china", "CN"),
    ("hong kong", "HK"),
    ("taiwan", "TW"),
    ("japan", "JP"),
    ("south korea", "KR"),
    ("korea, republic of", "KR"),
    ("north korea", "KP"),
    ("singapore", "SG"),
    ("malaysia", "MY"),
    ("indonesia", "ID"),
    ("philippines", "PH"),
    ("thailand", "TH"),
    ("vietnam", "VN"),
    ("viet nam", "VN"),
    ("australia", "AU"),
    ("new zealand", "NZ"),
    ("south africa", "ZA"),
    ("nigeria", "NG"),
    ("kenya", "KE"),
    ("morocco", "MA"),
    ("ghana", "GH"),
    ("ethiopia", "ET"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths_find_nested_and_flattened_keys() {
        let v = json!({"a": {"b": {"c": 1}}, "x.y": "flat", "m": {"n.o": true}});
        assert_eq!(at(&v, "a.b.c"), Some(&json!(1)));
        assert_eq!(text(&v, "x.y").as_deref(), Some("flat"));
        assert_eq!(boolean(&v, "m.n.o"), Some(true));
        assert_eq!(at(&v, "a.z"), None);
    }

    #[test]
    fn times_in_every_common_shape() {
        let expected = Utc.with_ymd_and_hms(2024, 3, 9, 14, 2, 11).unwrap();
        for v in [
            json!("2024-03-09T14:02:11Z"),
            json!("2024-03-09T15:02:11+01:00"),
            json!("2024-03-09 14:02:11"),
            json!(1709992931),
            json!(1709992931000_i64),
            json!(1709992931000000_i64),
            json!("1709992931000"),
        ] {
            assert_eq!(parse_time_value(&v), Some(expected), "{v}");
        }
        assert_eq!(parse_time_value(&json!("yesterday")), None);
    }

    #[test]
    fn reasons_from_free_text() {
        assert_eq!(
            reason_from_text("Domain not whitelisted"),
            Reason::DomainNotAllowed
        );
        assert_eq!(reason_from_text("Invalid TOTP token"), Reason::MfaFailed);
        assert_eq!(
            reason_from_text("User rejected Okta push verify"),
            Reason::MfaDenied
        );
        assert_eq!(
            reason_from_text("Wrong email or password."),
            Reason::InvalidCredentials
        );
        assert_eq!(
            reason_from_text("Invalid username or password"),
            Reason::InvalidCredentials
        );
        assert_eq!(reason_from_text("user_not_found"), Reason::UnknownUser);
        assert_eq!(reason_from_text("LOCKED_OUT"), Reason::AccountLocked);
        assert_eq!(reason_from_text("Replay attack"), Reason::Replay);
        assert_eq!(reason_from_text("something odd"), Reason::Other);
    }

    #[test]
    fn hashed_ids_are_deterministic_and_source_scoped() {
        assert_eq!(hashed_id("sshd", "x"), hashed_id("sshd", "x"));
        assert_ne!(hashed_id("sshd", "x"), hashed_id("generic", "x"));
        assert_eq!(hashed_id("sshd", "x").len(), 32);
    }

    #[test]
    fn addresses_and_countries() {
        assert_eq!(
            clean_ip(Some("::ffff:10.0.0.5".into())).as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(clean_ip(Some("-".into())), None);
        assert_eq!(country_code(Some("Germany".into())).as_deref(), Some("DE"));
        assert_eq!(country_code(Some("de".into())).as_deref(), Some("DE"));
        assert_eq!(
            country_code(Some("Atlantis".into())).as_deref(),
            Some("Atlantis")
        );
    }
}

/// A JSON string that borrows from the record when it has no escapes and
/// owns its text only when unescaping made it necessary.
///
/// serde borrows a `Cow<str>` only when it is a struct field of its own:
/// inside an `Option` it always allocates. This type borrows wherever it
/// sits, which spares typed adapters one allocation per string field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStr<'a>(std::borrow::Cow<'a, str>);

impl<'a> JsonStr<'a> {
    /// Text borrowed from the record.
    pub fn borrowed(text: &'a str) -> Self {
        JsonStr(std::borrow::Cow::Borrowed(text))
    }

    /// Text that had to be unescaped.
    pub fn owned(text: String) -> Self {
        JsonStr(std::borrow::Cow::Owned(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for JsonStr<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for JsonStr<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = JsonStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(JsonStr(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonStr(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(JsonStr(std::borrow::Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}
