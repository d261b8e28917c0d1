//! OCSF Authentication (class 3002) and Account Change (class 3001, lock
//! and unlock activities), as Amazon Security Lake and OCSF-native tools
//! write them.
//!
//! This is also the demo's wire format, so it is parsed with typed structs
//! (borrowing from the record) rather than a generic JSON tree, and its
//! events go to the sink as borrowed views: into Arrow columns, each
//! field is copied once.

use std::borrow::Cow;

use serde::Deserialize;

use authtrail_schemas::{Action, EventRef, EventSink, Method, Outcome, Reason};

use super::memo::{memo, memoized};
use super::util;
use super::{Adapter, ParseError};

pub struct Ocsf;

#[derive(Deserialize)]
struct Record<'a> {
    class_uid: Option<u32>,
    activity_id: Option<u32>,
    #[serde(borrow)]
    activity_name: Option<Text<'a>>,
    time: Option<serde_json::Value>,
    status_id: Option<u32>,
    #[serde(borrow)]
    status_detail: Option<Text<'a>>,
    #[serde(borrow)]
    status_code: Option<Text<'a>>,
    #[serde(default, borrow)]
    metadata: Metadata<'a>,
    #[serde(default, borrow)]
    user: User<'a>,
    #[serde(default, borrow)]
    src_endpoint: Endpoint<'a>,
    #[serde(default, borrow)]
    dst_endpoint: Endpoint<'a>,
    auth_protocol_id: Option<u32>,
    #[serde(borrow)]
    auth_protocol: Option<Text<'a>>,
    is_mfa: Option<bool>,
    #[serde(default, borrow)]
    auth_factors: Vec<AuthFactor<'a>>,
    #[serde(default, borrow)]
    http_request: HttpRequest<'a>,
    #[serde(default, borrow)]
    session: Uid<'a>,
    #[serde(default, borrow)]
    service: Named<'a>,
    #[serde(default, borrow)]
    cloud: Cloud<'a>,
}

/// A string field, borrowed from the record unless it had escapes.
type Text<'a> = util::JsonStr<'a>;

#[derive(Deserialize, Default)]
struct Metadata<'a> {
    #[serde(borrow)]
    uid: Option<Text<'a>>,
    #[serde(borrow)]
    event_code: Option<Text<'a>>,
    #[serde(borrow)]
    tenant_uid: Option<Text<'a>>,
    #[serde(default, borrow)]
    product: Named<'a>,
}

#[derive(Deserialize, Default)]
struct User<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
    #[serde(borrow)]
    uid: Option<Text<'a>>,
    #[serde(borrow)]
    email_addr: Option<Text<'a>>,
    #[serde(borrow)]
    domain: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct Endpoint<'a> {
    #[serde(borrow)]
    ip: Option<Text<'a>>,
    #[serde(borrow)]
    hostname: Option<Text<'a>>,
    #[serde(borrow)]
    svc_name: Option<Text<'a>>,
    #[serde(default, borrow)]
    location: Location<'a>,
}

#[derive(Deserialize, Default)]
struct Location<'a> {
    #[serde(borrow)]
    country: Option<Text<'a>>,
    #[serde(borrow)]
    city: Option<Text<'a>>,
    lat: Option<f64>,
    long: Option<f64>,
    coordinates: Option<[f64; 2]>,
}

#[derive(Deserialize, Default)]
struct AuthFactor<'a> {
    #[serde(borrow)]
    factor_type: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct HttpRequest<'a> {
    #[serde(borrow)]
    user_agent: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct Uid<'a> {
    #[serde(borrow)]
    uid: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct Named<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct Cloud<'a> {
    #[serde(default, borrow)]
    account: Uid<'a>,
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
        let record: Record = serde_json::from_str(raw).map_err(|err| {
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
/// MFA (Okta's codes, which OCSF exporters keep, name the factor).
fn login_action(code: &str) -> Action {
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
    let code = r.metadata.event_code.as_deref().unwrap_or_default();
    let action = match (class, activity) {
        (3002, 2) => Action::Logout,
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
    let id = match text(&r.metadata.uid) {
        Some(id) => Cow::Borrowed(id),
        None => Cow::Owned(util::hashed_id("ocsf", raw)),
    };
    let mut event = EventRef::new(id, time, "ocsf", action, outcome, raw);
    event.tenant = borrowed(&r.metadata.tenant_uid).or_else(|| borrowed(&r.cloud.account.uid));
    if let Some(login) = text(&r.user.email_addr).or_else(|| text(&r.user.name)) {
        event.set_user(login);
        if event.user_domain.is_none() {
            event.user_domain = text(&r.user.domain).map(|d| Cow::Owned(d.to_lowercase()));
        }
    }
    event.user_id = borrowed(&r.user.uid);
    let factor = r.auth_factors.iter().find_map(|f| text(&f.factor_type));
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
    event.mfa = r
        .is_mfa
        .or_else(|| (!r.auth_factors.is_empty()).then_some(true));
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
    let src = &r.src_endpoint;
    event.src_ip = text(&src.ip)
        .and_then(util::clean_ip_text)
        .map(Cow::Borrowed);
    event.src_host = borrowed(&src.hostname);
    event.dst_host =
        borrowed(&r.dst_endpoint.hostname).or_else(|| borrowed(&r.metadata.product.name));
    event.country = text(&src.location.country).and_then(util::country_code_text);
    event.city = borrowed(&src.location.city);
    // OCSF coordinates are [longitude, latitude], as in GeoJSON.
    event.latitude = src.location.lat.or(src.location.coordinates.map(|c| c[1]));
    event.longitude = src.location.long.or(src.location.coordinates.map(|c| c[0]));
    event.user_agent = borrowed(&r.http_request.user_agent);
    event.session_id = borrowed(&r.session.uid);
    event.app = borrowed(&r.service.name).or_else(|| borrowed(&r.dst_endpoint.svc_name));
    Ok(event)
}
