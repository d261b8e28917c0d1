//! OCSF Authentication (class 3002) and Account Change (class 3001, lock
//! and unlock activities), as Amazon Security Lake and OCSF-native tools
//! write them.
//!
//! This is also the demo's wire format and the benchmark's, so a record is
//! read in one pass by a hand-written serde visitor: each field authtrail
//! uses is written in place into one flat [`Record`] (strings borrowed
//! from the record), and everything else is only checked to be valid
//! JSON. serde's derived structs did the same work with a field enum and
//! a move of every nested struct into its parent, and took about a
//! quarter more time per demo record, parsing and building its Arrow row
//! together (BENCHMARKS.md). The events go to the sink as borrowed views: into
//! Arrow columns, each field is copied once.
//!
//! # Which records are attempts
//!
//! An OCSF producer writes one Authentication record per record of its
//! source, so the source's rules decide. A Logon (activity 1) is a `login`,
//! unless its `metadata.event_code` is a code of a source that authtrail
//! knows better: Okta's codes are read as the Okta adapter reads them (an
//! app's `user.authentication.sso` is a `session_start`, an AD agent's
//! check a `credential_validation`). Kerberos activities on a KDC are not
//! logon attempts: a TGT (3) or pre-authentication (6) is the
//! `credential_validation` of a logon that the workstation's record counts,
//! a service ticket (4, 5) a `session_start`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use authtrail_schemas::{Action, EventRef, EventSink, Method, Outcome, Reason};

use super::memo::{memo, memoized};
use super::util;
use super::{Adapter, ParseError};

pub struct Ocsf;

/// A string field, borrowed from the record unless it had escapes.
type Text<'a> = util::JsonStr<'a>;

/// The fields of an OCSF record that authtrail reads, by their OCSF paths.
#[derive(Default)]
struct Record<'a> {
    class_uid: Option<u32>,
    activity_id: Option<u32>,
    activity_name: Option<Text<'a>>,
    time: Option<serde_json::Value>,
    status_id: Option<u32>,
    status_detail: Option<Text<'a>>,
    status_code: Option<Text<'a>>,
    /// `metadata.uid`, `metadata.event_code`, `metadata.tenant_uid`,
    /// `metadata.product.name`.
    metadata_uid: Option<Text<'a>>,
    event_code: Option<Text<'a>>,
    tenant_uid: Option<Text<'a>>,
    product_name: Option<Text<'a>>,
    /// `user.name`, `user.uid`, `user.email_addr`, `user.domain`.
    user_name: Option<Text<'a>>,
    user_uid: Option<Text<'a>>,
    user_email: Option<Text<'a>>,
    user_domain: Option<Text<'a>>,
    src: Endpoint<'a>,
    dst: Endpoint<'a>,
    auth_protocol_id: Option<u32>,
    auth_protocol: Option<Text<'a>>,
    is_mfa: Option<bool>,
    /// How many `auth_factors` there are, and the first one's
    /// `factor_type` that has any text.
    auth_factors: usize,
    factor_type: Option<Text<'a>>,
    /// `http_request.user_agent`, `session.uid`, `service.name`,
    /// `cloud.account.uid`.
    user_agent: Option<Text<'a>>,
    session_uid: Option<Text<'a>>,
    service_name: Option<Text<'a>>,
    account_uid: Option<Text<'a>>,
}

/// `src_endpoint` or `dst_endpoint`, with its `location`.
#[derive(Default)]
struct Endpoint<'a> {
    ip: Option<Text<'a>>,
    hostname: Option<Text<'a>>,
    svc_name: Option<Text<'a>>,
    country: Option<Text<'a>>,
    city: Option<Text<'a>>,
    lat: Option<f64>,
    long: Option<f64>,
    coordinates: Option<[f64; 2]>,
}

/// The JSON object a [`Fill`] is reading: which fields it may hold.
#[derive(Clone, Copy)]
enum Object {
    Record,
    Metadata,
    Product,
    User,
    SrcEndpoint,
    DstEndpoint,
    SrcLocation,
    DstLocation,
    /// `auth_factors`: an array of `AuthFactor` objects.
    AuthFactors,
    AuthFactor,
    HttpRequest,
    Session,
    Service,
    Cloud,
    Account,
}

/// Reads one JSON object (or, for [`Object::AuthFactors`], an array of
/// them; `null` as if it were absent) into the record's fields.
struct Fill<'r, 'a> {
    record: &'r mut Record<'a>,
    object: Object,
}

/// Sets a field once: a key that appears twice in one object makes the
/// record ambiguous (consumers would disagree on its value), so it is
/// refused, as serde's derived structs refuse it.
fn set_once<'de, M: MapAccess<'de>, T: de::Deserialize<'de>>(
    map: &mut M,
    field: &mut Option<T>,
    name: &'static str,
) -> Result<(), M::Error> {
    if field.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *field = map.next_value()?;
    Ok(())
}

/// Sets a text field once (see [`set_once`]). `null` or a string, read
/// with one look at the value's first byte where `Option<Text>` takes two.
fn set_text<'de: 'a, 'a, M: MapAccess<'de>>(
    map: &mut M,
    field: &mut Option<Text<'a>>,
    name: &'static str,
) -> Result<(), M::Error> {
    if field.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *field = map.next_value_seed(NullOrText)?;
    Ok(())
}

/// Reads `null` or a string.
struct NullOrText;

impl<'de> DeserializeSeed<'de> for NullOrText {
    type Value = Option<Text<'de>>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NullOrText {
    type Value = Option<Text<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Text::borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Text::owned(v.to_owned())))
    }
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for Fill<'_, 'a> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for Fill<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.object {
            Object::AuthFactors => f.write_str("an array of authentication factors"),
            _ => f.write_str("a JSON object"),
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        match self.object {
            Object::AuthFactors => deserializer.deserialize_seq(self),
            _ => deserializer.deserialize_map(self),
        }
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        // Reached only through `deserialize_seq`, so only for AuthFactors.
        let record = self.record;
        while let Some(()) = seq.next_element_seed(Fill {
            record: &mut *record,
            object: Object::AuthFactor,
        })? {
            record.auth_factors += 1;
        }
        Ok(())
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        let r = self.record;
        // Nested objects (and a factor's type) read into fields that a
        // second copy of them would merge into or overwrite: a repeated
        // key is refused here as `set_once` refuses it for a plain field.
        let mut nested_seen = 0u32;
        let mut factor_type_seen = false;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let key = key.as_str();
            macro_rules! set {
                ($field:expr, $name:literal) => {
                    set_once(&mut map, &mut $field, $name)?
                };
            }
            macro_rules! text {
                ($field:expr, $name:literal) => {
                    set_text(&mut map, &mut $field, $name)?
                };
            }
            macro_rules! nested {
                ($object:expr, $name:literal) => {{
                    let bit = 1u32 << ($object as u32);
                    if nested_seen & bit != 0 {
                        return Err(de::Error::duplicate_field($name));
                    }
                    nested_seen |= bit;
                    map.next_value_seed(Fill {
                        record: &mut *r,
                        object: $object,
                    })?
                }};
            }
            match (self.object, key) {
                (Object::Record, "class_uid") => set!(r.class_uid, "class_uid"),
                (Object::Record, "activity_id") => set!(r.activity_id, "activity_id"),
                (Object::Record, "activity_name") => text!(r.activity_name, "activity_name"),
                (Object::Record, "time") => set!(r.time, "time"),
                (Object::Record, "status_id") => set!(r.status_id, "status_id"),
                (Object::Record, "status_detail") => text!(r.status_detail, "status_detail"),
                (Object::Record, "status_code") => text!(r.status_code, "status_code"),
                (Object::Record, "auth_protocol_id") => {
                    set!(r.auth_protocol_id, "auth_protocol_id")
                }
                (Object::Record, "auth_protocol") => text!(r.auth_protocol, "auth_protocol"),
                (Object::Record, "is_mfa") => set!(r.is_mfa, "is_mfa"),
                (Object::Record, "metadata") => nested!(Object::Metadata, "metadata"),
                (Object::Record, "user") => nested!(Object::User, "user"),
                (Object::Record, "src_endpoint") => nested!(Object::SrcEndpoint, "src_endpoint"),
                (Object::Record, "dst_endpoint") => nested!(Object::DstEndpoint, "dst_endpoint"),
                (Object::Record, "http_request") => nested!(Object::HttpRequest, "http_request"),
                (Object::Record, "session") => nested!(Object::Session, "session"),
                (Object::Record, "service") => nested!(Object::Service, "service"),
                (Object::Record, "cloud") => nested!(Object::Cloud, "cloud"),
                (Object::Record, "auth_factors") => nested!(Object::AuthFactors, "auth_factors"),
                (Object::Metadata, "uid") => text!(r.metadata_uid, "uid"),
                (Object::Metadata, "event_code") => text!(r.event_code, "event_code"),
                (Object::Metadata, "tenant_uid") => text!(r.tenant_uid, "tenant_uid"),
                (Object::Metadata, "product") => nested!(Object::Product, "product"),
                (Object::Product, "name") => text!(r.product_name, "name"),
                (Object::User, "name") => text!(r.user_name, "name"),
                (Object::User, "uid") => text!(r.user_uid, "uid"),
                (Object::User, "email_addr") => text!(r.user_email, "email_addr"),
                (Object::User, "domain") => text!(r.user_domain, "domain"),
                (Object::SrcEndpoint, "ip") => text!(r.src.ip, "ip"),
                (Object::SrcEndpoint, "hostname") => text!(r.src.hostname, "hostname"),
                (Object::SrcEndpoint, "svc_name") => text!(r.src.svc_name, "svc_name"),
                (Object::SrcEndpoint, "location") => nested!(Object::SrcLocation, "location"),
                (Object::DstEndpoint, "ip") => text!(r.dst.ip, "ip"),
                (Object::DstEndpoint, "hostname") => text!(r.dst.hostname, "hostname"),
                (Object::DstEndpoint, "svc_name") => text!(r.dst.svc_name, "svc_name"),
                (Object::DstEndpoint, "location") => nested!(Object::DstLocation, "location"),
                (Object::SrcLocation, "country") => text!(r.src.country, "country"),
                (Object::SrcLocation, "city") => text!(r.src.city, "city"),
                (Object::SrcLocation, "lat") => set!(r.src.lat, "lat"),
                (Object::SrcLocation, "long") => set!(r.src.long, "long"),
                (Object::SrcLocation, "coordinates") => set!(r.src.coordinates, "coordinates"),
                (Object::DstLocation, "country") => text!(r.dst.country, "country"),
                (Object::DstLocation, "city") => text!(r.dst.city, "city"),
                (Object::DstLocation, "lat") => set!(r.dst.lat, "lat"),
                (Object::DstLocation, "long") => set!(r.dst.long, "long"),
                (Object::DstLocation, "coordinates") => set!(r.dst.coordinates, "coordinates"),
                (Object::AuthFactor, "factor_type") => {
                    // Only the first factor with any text is kept; the
                    // others are still checked to be strings.
                    if factor_type_seen {
                        return Err(de::Error::duplicate_field("factor_type"));
                    }
                    factor_type_seen = true;
                    let factor = map.next_value_seed(NullOrText)?;
                    if r.factor_type.as_ref().is_none_or(|t| t.trim().is_empty()) {
                        r.factor_type = factor;
                    }
                }
                (Object::HttpRequest, "user_agent") => text!(r.user_agent, "user_agent"),
                (Object::Session, "uid") => text!(r.session_uid, "uid"),
                (Object::Service, "name") => text!(r.service_name, "name"),
                (Object::Cloud, "account") => nested!(Object::Account, "account"),
                (Object::Account, "uid") => text!(r.account_uid, "uid"),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Reads a record into `record` (filled in place: a record is about a
/// kilobyte of fields, and returning it would copy them); the error is
/// serde_json's, with its line and column.
fn read_record<'a>(raw: &'a str, record: &mut Record<'a>) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    de::Deserializer::deserialize_map(
        &mut deserializer,
        Fill {
            record,
            object: Object::Record,
        },
    )?;
    deserializer.end()
}

/// The trimmed text of a field, if it has any.
fn text<'r>(field: &'r Option<Text<'_>>) -> Option<&'r str> {
    field
        .as_ref()
        .map(|t| t.as_str().trim())
        .filter(|s| !s.is_empty())
}

fn borrowed<'r>(field: &'r Option<Text<'_>>) -> Option<Cow<'r, str>> {
    text(field).map(Cow::Borrowed)
}

impl Adapter for Ocsf {
    fn name(&self) -> &'static str {
        "ocsf"
    }

    fn parse(&self, raw: &str, out: &mut dyn EventSink) -> Result<(), ParseError> {
        let mut record = Record::default();
        read_record(raw, &mut record).map_err(|err| {
            // A field of the wrong type stops the reading where it is:
            // the rest of the record may still not be JSON at all, which
            // is the more useful thing to say.
            let err = match err.classify() {
                serde_json::error::Category::Data => {
                    serde_json::from_str::<IgnoredAny>(raw).err().unwrap_or(err)
                }
                _ => err,
            };
            ParseError::rejected(if err.is_syntax() || err.is_eof() {
                format!("not valid JSON: {err}")
            } else {
                format!("not an OCSF event: {err}")
            })
        })?;
        out.push(event(&record, raw)?);
        Ok(())
    }
}

memo!(LOGIN_ACTIONS: Action);

/// What an Authentication event's code says it is: a login, or a step of
/// MFA. Okta's codes, which OCSF exporters keep, are read as the Okta
/// adapter reads them, so that an Okta log counts the same attempts either
/// way (an app's SSO is a `session_start`, an AD agent's check a
/// `credential_validation`).
fn login_action(code: &str) -> Action {
    if let Some(action) = super::okta::action_of(code) {
        return action;
    }
    let code = code.to_ascii_lowercase();
    if code.contains("mfa") || code.contains("factor") || code.contains("push") {
        if code.contains("send") || code.contains("challenge") {
            Action::MfaChallenge
        } else {
            Action::MfaVerify
        }
    } else {
        Action::Login
    }
}

fn event<'r>(r: &'r Record<'_>, raw: &'r str) -> Result<EventRef<'r>, ParseError> {
    let class = r.class_uid.ok_or_else(|| {
        ParseError::rejected(
            "not an OCSF event: missing `class_uid` (expected 3002 Authentication)",
        )
    })?;
    let activity = r.activity_id.unwrap_or(0);
    let code = r.event_code.as_deref().unwrap_or_default();
    let action = match (class, activity) {
        (3002, 2) => Action::Logout,
        // Kerberos on the KDC: a TGT (3) or pre-authentication (6) checks the
        // credentials of a logon another record counts; a service ticket (4,
        // 5) is a session of an earlier logon.
        (3002, 3 | 6) => Action::CredentialValidation,
        (3002, 4 | 5) => Action::SessionStart,
        (3002, _) => memoized(&LOGIN_ACTIONS, code, login_action),
        (3001, 9) => Action::Lockout,
        (3001, 12) => Action::Unlock,
        (3001, 3) => Action::PasswordChange,
        (3001, 4) => Action::PasswordReset,
        (3001, _) => {
            return Err(ParseError::NotAuthentication(format!(
                "ocsf account change activity {activity}"
            )));
        }
        (other, _) => return Err(ParseError::NotAuthentication(format!("ocsf class {other}"))),
    };
    let time = match &r.time {
        Some(value) => util::parse_time_value(value).ok_or_else(|| {
            ParseError::rejected(format!("field `time` is not a timestamp: {value}"))
        })?,
        None => {
            return Err(ParseError::rejected(
                "missing timestamp (looked for `time`)",
            ));
        }
    };
    let outcome = match r.status_id {
        Some(1) => Outcome::Success,
        Some(2) => Outcome::Failure,
        _ => Outcome::Unknown,
    };
    let id = match text(&r.metadata_uid) {
        Some(id) => Cow::Borrowed(id),
        None => Cow::Owned(util::hashed_id("ocsf", raw)),
    };
    let mut event = EventRef::new(id, time, "ocsf", action, outcome, raw);
    event.tenant = borrowed(&r.tenant_uid).or_else(|| borrowed(&r.account_uid));
    if let Some(login) = text(&r.user_email).or_else(|| text(&r.user_name)) {
        event.set_user(login);
        if event.user_domain.is_none() {
            event.user_domain = text(&r.user_domain).map(|d| Cow::Owned(d.to_lowercase()));
        }
    }
    event.user_id = borrowed(&r.user_uid);
    let factor = text(&r.factor_type);
    event.method = factor
        .and_then(util::method_from_text)
        .or(match r.auth_protocol_id {
            Some(1 | 3 | 7 | 8) => Some(Method::Password),
            Some(2) => Some(Method::Other),
            Some(4) => Some(Method::Oidc),
            Some(5) => Some(Method::Saml),
            Some(6) => Some(Method::Oauth),
            _ => r.auth_protocol.as_deref().and_then(util::method_from_text),
        });
    event.mfa = r.is_mfa.or_else(|| (r.auth_factors > 0).then_some(true));
    let detail = text(&r.status_detail).or_else(|| text(&r.status_code));
    if outcome == Outcome::Failure {
        event.reason = Some(match detail {
            Some(d) => util::reason_from_text(d),
            None if event.mfa == Some(true) => Reason::MfaFailed,
            None => Reason::Other,
        });
    } else if action == Action::Lockout {
        event.reason = Some(Reason::AccountLocked);
    }
    event.reason_detail = detail
        .or_else(|| text(&r.activity_name).filter(|_| outcome == Outcome::Failure))
        .map(Cow::Borrowed);
    let src = &r.src;
    event.src_ip = text(&src.ip)
        .and_then(util::clean_ip_text)
        .map(Cow::Borrowed);
    event.src_host = borrowed(&src.hostname);
    event.dst_host = borrowed(&r.dst.hostname).or_else(|| borrowed(&r.product_name));
    event.country = text(&src.country).and_then(util::country_code_text);
    event.city = borrowed(&src.city);
    // OCSF coordinates are [longitude, latitude], as in GeoJSON.
    event.latitude = src.lat.or(src.coordinates.map(|c| c[1]));
    event.longitude = src.long.or(src.coordinates.map(|c| c[0]));
    event.user_agent = borrowed(&r.user_agent);
    event.session_id = borrowed(&r.session_uid);
    event.app = borrowed(&r.service_name).or_else(|| borrowed(&r.dst.svc_name));
    Ok(event)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use authtrail_schemas::AuthEvent;

    use super::*;

    fn parse(line: &str) -> Result<AuthEvent, ParseError> {
        let mut out = Vec::new();
        Ocsf.parse(line, &mut out)?;
        assert_eq!(out.len(), 1);
        Ok(out.remove(0))
    }

    fn rejection(line: &str) -> String {
        match parse(line) {
            Err(ParseError::Rejected(reason)) => reason,
            other => panic!("{line} was not rejected: {other:?}"),
        }
    }

    const BASE: &str = r#""class_uid":3002,"activity_id":1,"time":1715674900000,"status_id":2"#;

    #[test]
    fn nested_fields_are_read_from_their_paths_and_unknown_ones_skipped() {
        let event = parse(&format!(
            r#"{{{BASE},"extra":{{"deep":[1,{{"user":{{"name":"not me"}}}}]}},
            "metadata":{{"uid":"e-1","product":{{"name":"Okta","vendor_name":"x"}},"tenant_uid":"acme"}},
            "user":{{"name":"Alice@Acme.example","uid":"u-1","type_id":1}},
            "src_endpoint":{{"ip":"198.51.100.7","location":{{"country":"DE","city":"Berlin","coordinates":[13.4,52.5]}}}},
            "dst_endpoint":{{"location":{{"city":"not the source"}},"svc_name":"krbtgt"}},
            "auth_factors":[{{"factor_type":" "}},{{"factor_type":"TOTP"}},{{"factor_type":"SMS"}}],
            "http_request":{{"user_agent":"curl/8 \"quoted\""}},"session":{{"uid":"s-1"}},
            "status_detail":"INVALID_CREDENTIALS"}}"#
        ))
        .unwrap();
        assert_eq!(event.event_id, "e-1");
        assert_eq!(event.user.as_deref(), Some("alice@acme.example"));
        assert_eq!(event.user_id.as_deref(), Some("u-1"));
        assert_eq!(event.tenant.as_deref(), Some("acme"));
        assert_eq!(event.dst_host.as_deref(), Some("Okta"));
        assert_eq!(event.app.as_deref(), Some("krbtgt"));
        assert_eq!(event.city.as_deref(), Some("Berlin"));
        assert_eq!((event.latitude, event.longitude), (Some(52.5), Some(13.4)));
        assert_eq!(event.method, Some(Method::Totp));
        assert_eq!(event.mfa, Some(true));
        assert_eq!(event.user_agent.as_deref(), Some("curl/8 \"quoted\""));
        assert_eq!(event.session_id.as_deref(), Some("s-1"));
        assert_eq!(event.reason, Some(Reason::InvalidCredentials));
    }

    #[test]
    fn null_objects_count_as_absent() {
        let event = parse(&format!(
            r#"{{{BASE},"user":null,"src_endpoint":null,"auth_factors":null,"metadata":{{"product":null}},"session":{{"uid":null}}}}"#
        ))
        .unwrap();
        assert_eq!(event.user, None);
        assert_eq!(event.session_id, None);
        assert_eq!(event.mfa, None);
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        let reason = rejection(&format!(r#"{{{BASE},"user":{{"name":"a","name":"b"}}}}"#));
        assert!(reason.contains("duplicate field `name`"), "{reason}");
        let reason = rejection(&format!(r#"{{{BASE},"status_id":1}}"#));
        assert!(reason.contains("duplicate field `status_id`"), "{reason}");
        let reason = rejection(&format!(
            r#"{{{BASE},"user":{{"name":"a"}},"user":{{"uid":"b"}}}}"#
        ));
        assert!(reason.contains("duplicate field `user`"), "{reason}");
        let reason = rejection(&format!(
            r#"{{{BASE},"auth_factors":[{{"factor_type":"SMS","factor_type":"TOTP"}}]}}"#
        ));
        assert!(reason.contains("duplicate field `factor_type`"), "{reason}");
    }

    #[test]
    fn wrong_types_and_broken_json_are_told_apart() {
        let reason = rejection(&format!(r#"{{{BASE},"user":{{"name":7}}}}"#));
        assert!(
            reason.starts_with("not an OCSF event: invalid type: integer `7`"),
            "{reason}"
        );
        // The wrong type comes first, but the record is not JSON at all.
        let reason = rejection(&format!(r#"{{{BASE},"user":["name":"a"]}}"#));
        assert!(reason.starts_with("not valid JSON: "), "{reason}");
        let reason = rejection(&format!(r#"{{{BASE},"is_mfa":true}} trailing"#));
        assert!(
            reason.starts_with("not valid JSON: trailing characters"),
            "{reason}"
        );
        let reason = rejection(&format!(
            r#"{{{BASE},"auth_factors":{{"factor_type":"TOTP"}}}}"#
        ));
        assert!(
            reason.contains("expected an array of authentication factors"),
            "{reason}"
        );
        let reason = rejection(r#"[1,2]"#);
        assert!(
            reason.starts_with("not an OCSF event: invalid type: sequence"),
            "{reason}"
        );
    }
}
