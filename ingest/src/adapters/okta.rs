//! Okta System Log: bare `LogEvent` objects (as the `/api/v1/logs` API and
//! log streaming return them) and the event-hook envelope
//! (`{"eventType": "com.okta.event_hook", "data": {"events": [...]}}`).
//!
//! # Which records are attempts
//!
//! One sign-in to Okta writes `user.session.start` (success or failure, with
//! `LOCKED_OUT` once the account is locked): that is the `login`. Beside it,
//! a delegated or federated check (`user.authentication.auth_via_AD_agent`,
//! `…_LDAP_agent`, `…_IDP`, `…_social`, `…_inbound_SAML`,
//! `…_inbound_delauth`) is the back end's `credential_validation` of the
//! same attempt; `user.authentication.sso` is an app opened from the session
//! (`session_start`), and `user.account.lock` the `lockout` the failures
//! caused. RADIUS and rich-client sign-ins open no Okta session, so
//! `…_auth_via_radius` and `…_auth_via_richclient` are attempts of their
//! own. MFA records (`…_auth_via_mfa`, `user.authentication.verify`, push
//! denials) are one `mfa_verify` per factor check; sent challenges are
//! `mfa_challenge`.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use authtrail_schemas::{Action, AuthEvent, EventSink, Method, Outcome, Reason};

use super::util::{self, at, first_text, text};
use super::{Adapter, ParseError};

pub struct Okta;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    source: Option<String>,
    #[serde(borrow)]
    data: EnvelopeData<'a>,
}

#[derive(Deserialize)]
struct EnvelopeData<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

impl Adapter for Okta {
    fn name(&self) -> &'static str {
        "okta"
    }

    fn parse(&self, record: &str, out: &mut dyn EventSink) -> Result<(), ParseError> {
        let value = util::parse_object(record)?;
        if text(&value, "eventType").as_deref() == Some("com.okta.event_hook") {
            let envelope: Envelope = serde_json::from_str(record).map_err(|err| {
                ParseError::rejected(format!(
                    "Okta event-hook envelope without data.events: {err}"
                ))
            })?;
            let tenant = envelope.source.as_deref().and_then(host_of_url);
            // All of an envelope's events, or none.
            let mut events = Vec::with_capacity(envelope.data.events.len());
            let mut skipped = Vec::new();
            for (index, event) in envelope.data.events.iter().enumerate() {
                let inner: Value = serde_json::from_str(event.get())
                    .map_err(|err| ParseError::rejected(format!("data.events[{index}]: {err}")))?;
                match log_event(&inner, event.get(), tenant.clone()) {
                    Ok(parsed) => events.push(parsed),
                    Err(ParseError::NotAuthentication(kind)) => skipped.push(kind),
                    Err(ParseError::Rejected(reason)) => {
                        return Err(ParseError::rejected(format!(
                            "data.events[{index}]: {reason}"
                        )));
                    }
                }
            }
            if events.is_empty() && !skipped.is_empty() {
                return Err(ParseError::NotAuthentication(skipped.join(", ")));
            }
            for event in events {
                out.push_owned(event);
            }
            return Ok(());
        }
        out.push_owned(log_event(&value, record, None)?);
        Ok(())
    }
}

fn host_of_url(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split(['/', ':']).next()?;
    (!host.is_empty()).then(|| host.to_owned())
}

/// Maps an Okta `eventType` to an action, or `None` for events that are
/// not about authentication.
pub(super) fn action_of(event_type: &str) -> Option<Action> {
    Some(match event_type {
        "user.session.start"
        | "user.authentication.authenticate"
        | "user.authentication.auth_via_radius"
        | "user.authentication.auth_via_richclient"
        | "user.authentication.auth" => Action::Login,
        "user.authentication.auth_via_IDP"
        | "user.authentication.auth_via_social"
        | "user.authentication.auth_via_AD_agent"
        | "user.authentication.auth_via_LDAP_agent"
        | "user.authentication.auth_via_inbound_SAML"
        | "user.authentication.auth_via_inbound_delauth" => Action::CredentialValidation,
        "user.authentication.sso" => Action::SessionStart,
        "user.session.end" | "user.session.clear" => Action::Logout,
        "user.authentication.auth_via_mfa"
        | "user.authentication.verify"
        | "user.mfa.okta_verify.deny_push"
        | "user.mfa.okta_verify.deny_push_upgrade_needed"
        | "user.mfa.attempt_bypass" => Action::MfaVerify,
        "system.push.send_factor_verify_push"
        | "system.sms.send_factor_verify_message"
        | "system.voice.send_mfa_challenge_call"
        | "system.email.mfa_challenge.sent_message"
        | "user.mfa.factor.challenge" => Action::MfaChallenge,
        "user.session.access_admin_app" | "user.session.impersonation.grant" => {
            Action::SessionStart
        }
        "user.account.lock" | "user.account.lock.limit" => Action::Lockout,
        "user.account.unlock" | "user.account.unlock_by_admin" | "user.account.unlock_token" => {
            Action::Unlock
        }
        "user.account.update_password" => Action::PasswordChange,
        "user.account.reset_password" | "user.credential.forgot_password" => Action::PasswordReset,
        _ => return None,
    })
}

fn log_event(value: &Value, raw: &str, tenant: Option<String>) -> Result<AuthEvent, ParseError> {
    let event_type = text(value, "eventType")
        .ok_or_else(|| ParseError::rejected("not an Okta LogEvent: missing `eventType`"))?;
    let action = action_of(&event_type)
        .ok_or_else(|| ParseError::NotAuthentication(format!("okta {event_type}")))?;
    let time = util::required_time(value, &["published"])?;
    let result = text(value, "outcome.result").unwrap_or_default();
    let mut outcome = match result.as_str() {
        "SUCCESS" | "ALLOW" => Outcome::Success,
        "FAILURE" | "DENY" => Outcome::Failure,
        _ => Outcome::Unknown,
    };
    if event_type == "user.mfa.okta_verify.deny_push" {
        outcome = Outcome::Failure;
    }
    let id = text(value, "uuid");
    let mut event = AuthEvent::new(
        util::id_or_hash(id, "okta", raw),
        time,
        "okta",
        action,
        outcome,
    );
    event.tenant = tenant;
    // Lock and unlock events concern their target user; an admin's unlock
    // has the admin as actor.
    let subject = match action {
        Action::Lockout | Action::Unlock => {
            target_user(value).unwrap_or(value.get("actor").unwrap_or(&Value::Null))
        }
        _ => value.get("actor").unwrap_or(&Value::Null),
    };
    if let Some(login) = text(subject, "alternateId").filter(|l| l != "unknown") {
        event.set_user(&login);
    }
    event.user_id = text(subject, "id").filter(|id| id != "unknown");

    let factor = first_text(
        value,
        &[
            "debugContext.debugData.factor",
            "debugContext.debugData.factorType",
        ],
    );
    let credential = text(value, "authenticationContext.credentialType").unwrap_or_default();
    let provider = text(value, "authenticationContext.authenticationProvider").unwrap_or_default();
    event.method = match (factor.as_deref(), credential.as_str(), provider.as_str()) {
        (Some(f), _, _) => util::method_from_text(f),
        _ if event_type.starts_with("system.push") || event_type.contains("deny_push") => {
            Some(Method::Push)
        }
        _ if event_type.starts_with("system.sms") || event_type.starts_with("system.voice") => {
            Some(Method::Sms)
        }
        (None, "PASSWORD", "ACTIVE_DIRECTORY" | "LDAP") => Some(Method::Ldap),
        (None, "PASSWORD", _) => Some(Method::Password),
        (None, "OTP", _) => Some(Method::Totp),
        (None, "SMS", _) => Some(Method::Sms),
        (None, "ASSERTION", _) => Some(Method::Saml),
        (None, "JWT" | "OAUTH2", _) => Some(Method::Oidc),
        _ if event_type == "user.authentication.auth_via_IDP" => Some(Method::Saml),
        _ if event_type == "user.authentication.auth_via_social" => Some(Method::Oidc),
        _ if event_type.contains("LDAP") || event_type.contains("AD_agent") => Some(Method::Ldap),
        _ => None,
    };
    let is_mfa =
        matches!(action, Action::MfaVerify | Action::MfaChallenge) || provider == "FACTOR_PROVIDER";
    event.mfa = is_mfa.then_some(true);

    let detail = text(value, "outcome.reason");
    if outcome == Outcome::Failure {
        event.reason = Some(match detail.as_deref() {
            _ if event_type.contains("deny_push") => Reason::MfaDenied,
            Some("VERIFICATION_ERROR") if text(value, "actor.id").as_deref() == Some("unknown") => {
                Reason::UnknownUser
            }
            Some("VERIFICATION_ERROR" | "INVALID_CREDENTIALS") if is_mfa => Reason::MfaFailed,
            Some(d) => util::reason_from_text(d),
            None if is_mfa => Reason::MfaFailed,
            None => Reason::Other,
        });
    } else if action == Action::Lockout {
        event.reason = Some(Reason::AccountLocked);
    }
    event.reason_detail =
        detail.or_else(|| text(value, "displayMessage").filter(|_| outcome == Outcome::Failure));
    event.src_ip = util::clean_ip(text(value, "client.ipAddress"));
    event.country = util::country_code(text(value, "client.geographicalContext.country"));
    event.city = text(value, "client.geographicalContext.city");
    event.latitude = util::number(value, "client.geographicalContext.geolocation.lat");
    event.longitude = util::number(value, "client.geographicalContext.geolocation.lon");
    event.user_agent = text(value, "client.userAgent.rawUserAgent");
    event.session_id =
        text(value, "authenticationContext.externalSessionId").filter(|s| s != "unknown");
    event.app = app_of(value);
    event.raw = raw.to_owned();
    Ok(event)
}

/// The first target of type `User`.
fn target_user(value: &Value) -> Option<&Value> {
    at(value, "target")?
        .as_array()?
        .iter()
        .find(|t| text(t, "type").as_deref() == Some("User"))
}

/// The application signed in to: the first `AppInstance` target.
fn app_of(value: &Value) -> Option<String> {
    at(value, "target")?
        .as_array()?
        .iter()
        .find(|t| text(t, "type").as_deref() == Some("AppInstance"))
        .and_then(|t| first_text(t, &["displayName", "alternateId"]))
}
