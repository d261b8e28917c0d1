//! Auth0 tenant logs, by event type code, bare (as the Management API's
//! `/api/v2/logs` returns them) or in the log-stream envelope
//! (`{"log_id": …, "data": {…}}`).
//!
//! # Which records are attempts
//!
//! Auth0 writes one record per login attempt: `s` (success), `f`, `fp`
//! (wrong password), `fu` (unknown user), `fc`/`fco` (connection or origin
//! error) and `pwd_leak` (refused for a breached password) are the `login`
//! events. The blocks its attack protection raises are not attempts but
//! their consequence: `limit_wc` (an address blocked for one account),
//! `limit_sul` (a user blocked) and `limit_mu` (an address blocked across
//! accounts, with no user) are `lockout` events; the attempts that caused
//! them are counted once, as the `f*` records before them. Guardian MFA
//! records are one `mfa_verify` per factor check, `gd_send_*` the
//! challenges.

use serde_json::Value;

use authtrail_schemas::{Action, AuthEvent, Method, Outcome, Reason};

use super::ParseError;
use super::util::{self, at, first_text, text};

/// What an Auth0 type code means: action, outcome, reason, method hint.
fn classify(code: &str) -> Option<(Action, Outcome, Option<Reason>, Option<Method>)> {
    use Action::*;
    use Outcome::*;
    Some(match code {
        "s" => (Login, Success, None, None),
        "f" => (Login, Failure, None, None),
        "fp" => (
            Login,
            Failure,
            Some(Reason::InvalidCredentials),
            Some(Method::Password),
        ),
        "fu" => (Login, Failure, Some(Reason::UnknownUser), None),
        "fc" | "fco" => (Login, Failure, Some(Reason::ConfigError), None),
        "limit_wc" => (Lockout, Success, Some(Reason::AccountLocked), None),
        "limit_sul" => (Lockout, Success, Some(Reason::AccountLocked), None),
        "limit_mu" => (Lockout, Success, Some(Reason::Other), None),
        "ublkdu" => (Unlock, Success, None, None),
        "pwd_leak" => (
            Login,
            Failure,
            Some(Reason::InvalidCredentials),
            Some(Method::Password),
        ),
        "ssa" => (SessionStart, Success, None, None),
        "fsa" => (SessionStart, Failure, None, None),
        "slo" => (Logout, Success, None, None),
        "flo" => (Logout, Failure, None, None),
        "scp" | "scpn" => (PasswordChange, Success, None, Some(Method::Password)),
        "fcp" | "fcpn" => (PasswordChange, Failure, None, Some(Method::Password)),
        "scpr" => (PasswordReset, Success, None, Some(Method::Password)),
        "fcpr" => (PasswordReset, Failure, None, Some(Method::Password)),
        "gd_auth_succeed" => (MfaVerify, Success, None, None),
        "gd_auth_failed" => (MfaVerify, Failure, Some(Reason::MfaFailed), None),
        "gd_auth_rejected" => (
            MfaVerify,
            Failure,
            Some(Reason::MfaDenied),
            Some(Method::Push),
        ),
        "gd_otp_rate_limit_exceed" => (
            MfaVerify,
            Failure,
            Some(Reason::MfaFailed),
            Some(Method::Totp),
        ),
        "gd_recovery_failed" => (MfaVerify, Failure, Some(Reason::MfaFailed), None),
        "gd_recovery_succeed" => (MfaVerify, Success, None, None),
        "gd_send_pn" => (MfaChallenge, Success, None, Some(Method::Push)),
        "gd_send_sms" | "gd_send_voice" => (MfaChallenge, Success, None, Some(Method::Sms)),
        "gd_send_email" => (MfaChallenge, Success, None, Some(Method::Other)),
        "gd_send_pn_failure" | "gd_send_sms_failure" => {
            (MfaChallenge, Failure, Some(Reason::ConfigError), None)
        }
        _ => return None,
    })
}

/// Maps one record, bare or in the log-stream envelope, to its event.
pub(super) fn event(value: &Value, raw: &str) -> Result<AuthEvent, ParseError> {
    let log = match at(value, "data") {
        Some(data) if data.is_object() && text(value, "type").is_none() => data,
        _ => value,
    };
    log_event(log, text(value, "log_id"), raw)
}

fn log_event(log: &Value, envelope_id: Option<String>, raw: &str) -> Result<AuthEvent, ParseError> {
    let code = text(log, "type").ok_or_else(|| {
        ParseError::rejected(
            "not an Auth0 log event: missing `type` (expected e.g. \"s\", \"f\", \"gd_send_pn\")",
        )
    })?;
    let (action, outcome, reason, method_hint) = classify(&code)
        .ok_or_else(|| ParseError::NotAuthentication(format!("auth0 type {code}")))?;
    let time = util::required_time(log, &["date"])?;
    let id = text(log, "log_id")
        .or(envelope_id)
        .or_else(|| text(log, "_id"));
    let mut event = AuthEvent::new(
        util::id_or_hash(id, "auth0", raw),
        time,
        "auth0",
        action,
        outcome,
    );
    event.tenant = first_text(log, &["tenant_name", "hostname"]);
    event.dst_host = text(log, "hostname");
    if let Some(login) = first_text(log, &["user_name", "details.prompts.0.user_name"]) {
        event.set_user(&login);
    }
    event.user_id = text(log, "user_id");
    let strategy = text(log, "strategy").unwrap_or_default();
    let strategy_type = text(log, "strategy_type").unwrap_or_default();
    event.method = method_hint.or(match (strategy_type.as_str(), strategy.as_str()) {
        (_, "samlp" | "adfs") => Some(Method::Saml),
        (_, "ad" | "ldap") => Some(Method::Ldap),
        (_, "oidc" | "waad" | "okta" | "google-apps") => Some(Method::Oidc),
        (_, "sms") => Some(Method::Sms),
        (_, "email") => Some(Method::Other),
        ("database", _) | (_, "auth0") => Some(Method::Password),
        ("social", _) => Some(Method::Oauth),
        _ => None,
    });
    event.mfa = (code.starts_with("gd_")
        || text(log, "details.authentication.methods").is_some_and(|m| m.contains("mfa")))
    .then_some(true);
    let description = text(log, "description");
    if outcome == Outcome::Failure {
        event.reason = reason
            .or_else(|| description.as_deref().map(util::reason_from_text))
            .or(Some(Reason::Other));
    } else if action == Action::Lockout {
        event.reason = reason;
    }
    event.reason_detail =
        description.filter(|_| outcome == Outcome::Failure || event.reason.is_some());
    event.src_ip = util::clean_ip(text(log, "ip"));
    event.country = util::country_code(first_text(
        log,
        &["location_info.country_code", "location_info.country_name"],
    ));
    event.city = text(log, "location_info.city_name");
    event.latitude = util::number(log, "location_info.latitude");
    event.longitude = util::number(log, "location_info.longitude");
    event.user_agent = text(log, "user_agent");
    event.session_id = first_text(log, &["session_connection", "details.session_id"]);
    event.app = first_text(log, &["client_name", "client_id"]);
    event.raw = raw.to_owned();
    Ok(event)
}
