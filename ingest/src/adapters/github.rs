//! GitHub audit log (organisation and enterprise, from the REST API or
//! audit-log streaming): `user.login`, `user.failed_login`, the two-factor
//! events, password changes and SAML SSO responses.
//!
//! # Which records are attempts
//!
//! `user.login` and `user.failed_login` are one `login` per sign-in;
//! `org.sso_response` and `business.sso_response` are the SAML sign-in to an
//! organisation or enterprise, a second attempt against another identity
//! provider. `user.sign_in_from_unrecognized_device` (and `…_and_location`)
//! is written beside the `user.login` of the same sign-in, to flag the
//! device: it is kept as `other`, not counted again. Two-factor records are
//! one `mfa_verify` per check, `user.two_factor_requested` the challenge.

use serde_json::Value;

use authtrail_schemas::{Action, AuthEvent, Method, Outcome, Reason};

use super::ParseError;
use super::util::{self, first_text, text};

fn classify(kind: &str) -> Option<(Action, Outcome, Option<Reason>, Option<Method>)> {
    use Action::*;
    use Outcome::*;
    Some(match kind {
        "user.login" => (Login, Success, None, Some(Method::Password)),
        "user.failed_login" => (
            Login,
            Failure,
            Some(Reason::InvalidCredentials),
            Some(Method::Password),
        ),
        "user.sign_in_from_unrecognized_device"
        | "user.sign_in_from_unrecognized_device_and_location" => (Other, Success, None, None),
        "user.logout" => (Logout, Success, None, None),
        "user.two_factor_requested" => (MfaChallenge, Success, None, None),
        "user.two_factor_challenge_success" => (MfaVerify, Success, None, None),
        "user.two_factor_challenge_failure" => (MfaVerify, Failure, Some(Reason::MfaFailed), None),
        "user.change_password" => (PasswordChange, Success, None, Some(Method::Password)),
        "user.forgot_password" => (PasswordReset, Success, None, Some(Method::Password)),
        "org.sso_response" | "business.sso_response" => (Login, Unknown, None, Some(Method::Saml)),
        _ => return None,
    })
}

/// Maps one record to its event.
pub(super) fn event(value: &Value, raw: &str) -> Result<AuthEvent, ParseError> {
    let kind = text(value, "action").ok_or_else(|| {
        ParseError::rejected(
            "not a GitHub audit-log event: missing `action` (expected e.g. user.login)",
        )
    })?;
    let (action, mut outcome, reason, method) =
        classify(&kind).ok_or_else(|| ParseError::NotAuthentication(format!("github {kind}")))?;
    let time = util::required_time(value, &["@timestamp", "created_at", "timestamp"])?;
    let id = first_text(value, &["_document_id", "document_id"]);
    if kind.ends_with("sso_response") {
        outcome = match text(value, "saml_status")
            .or_else(|| text(value, "outcome"))
            .as_deref()
        {
            Some(s) if s.eq_ignore_ascii_case("success") => Outcome::Success,
            Some(s) if s.eq_ignore_ascii_case("failure") => Outcome::Failure,
            _ => outcome,
        };
    }
    let mut event = AuthEvent::new(
        util::id_or_hash(id, "github", raw),
        time,
        "github",
        action,
        outcome,
    );
    event.tenant = first_text(value, &["business", "org"]);
    if let Some(login) = first_text(value, &["user", "actor"]) {
        event.set_user(&login);
    }
    event.user_id = first_text(value, &["user_id", "actor_id"]);
    event.method = method;
    event.mfa = kind.starts_with("user.two_factor").then_some(true);
    if outcome == Outcome::Failure {
        event.reason = reason.or(Some(Reason::Other));
        event.reason_detail = Some(kind.clone());
    }
    event.src_ip = util::clean_ip(text(value, "actor_ip"));
    event.country = util::country_code(text(value, "actor_location.country_code"));
    event.user_agent = text(value, "user_agent");
    event.dst_host = Some("github.com".to_owned());
    event.app = Some("github".to_owned());
    event.raw = raw.to_owned();
    Ok(event)
}
