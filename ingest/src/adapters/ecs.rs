//! Elastic Common Schema documents with `event.category: authentication`
//! (Filebeat, Elastic Agent, Logstash pipelines), nested or with flattened
//! dotted keys.
//!
//! # Which records are attempts
//!
//! ECS producers write one document per source record, so the source's
//! own rules apply, and the documents that are not attempts are recognised
//! by the fields those producers set: Filebeat's sshd documents for
//! `Invalid user` lines (`system.auth.ssh.event: Invalid`) are `probe`s;
//! Winlogbeat's domain-controller checks (`credential-validated`, 4776;
//! `kerberos-preauth-failed`, 4771; `kerberos-authentication-ticket-requested`,
//! 4768) are `credential_validation`s of the workstation's `logon-failed` or
//! `logged-in` attempt, and Kerberos service tickets (4769, 4770) are
//! `session_start`s. Every other authentication document is one `login` (or
//! the MFA, lock, password or logout action its `event.action` names).

use serde_json::Value;

use authtrail_schemas::{Action, AuthEvent, Method, Outcome, Reason};

use super::ParseError;
use super::util::{self, at, first_text, text};

/// The values of a keyword field that may be a string or an array.
fn keywords(value: &Value, path: &str) -> Vec<String> {
    match at(value, path) {
        Some(Value::Array(items)) => items.iter().filter_map(util::as_text).collect(),
        Some(other) => util::as_text(other).into_iter().collect(),
        None => Vec::new(),
    }
}

/// Maps one record to its event.
pub(super) fn event(value: &Value, raw: &str) -> Result<AuthEvent, ParseError> {
    let categories = keywords(value, "event.category");
    if categories.is_empty() {
        return Err(ParseError::rejected(
            "not an ECS event: missing `event.category` (expected \"authentication\")",
        ));
    }
    let types = keywords(value, "event.type");
    let event_action = text(value, "event.action")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let is_auth = categories.iter().any(|c| c == "authentication");
    let is_lock = categories.iter().any(|c| c == "iam")
        && (event_action.contains("lock") || event_action.contains("password"));
    if !is_auth && !is_lock {
        return Err(ParseError::NotAuthentication(format!(
            "ecs category {}",
            categories.join("+")
        )));
    }
    let has = |w: &str| event_action.contains(w);
    let code = text(value, "event.code").unwrap_or_default();
    let action = if text(value, "system.auth.ssh.event").as_deref() == Some("Invalid") {
        Action::Probe
    } else if matches!(code.as_str(), "4776" | "4771" | "4768")
        || has("credential-validated")
        || has("kerberos-preauth")
        || has("kerberos-authentication-ticket")
    {
        Action::CredentialValidation
    } else if matches!(code.as_str(), "4769" | "4770") || has("kerberos-service-ticket") {
        Action::SessionStart
    } else if has("unlock") {
        Action::Unlock
    } else if has("lock") {
        Action::Lockout
    } else if has("password") && (has("change") || has("update")) {
        Action::PasswordChange
    } else if has("password") && has("reset") {
        Action::PasswordReset
    } else if has("mfa") || has("2fa") || has("factor") || has("otp") || has("push") {
        if has("send") || has("challenge") || has("request") {
            Action::MfaChallenge
        } else {
            Action::MfaVerify
        }
    } else if has("logout") || has("logoff") || has("log-off") || types.iter().any(|t| t == "end") {
        Action::Logout
    } else {
        Action::Login
    };
    let outcome = match text(value, "event.outcome").as_deref() {
        Some("success") => Outcome::Success,
        Some("failure") => Outcome::Failure,
        _ => Outcome::Unknown,
    };
    let time = util::required_time(value, &["@timestamp", "event.created"])?;
    let id = text(value, "event.id");
    let mut event = AuthEvent::new(
        util::id_or_hash(id, "ecs", raw),
        time,
        "ecs",
        action,
        outcome,
    );
    event.tenant = first_text(
        value,
        &["organization.name", "organization.id", "cloud.account.id"],
    );
    if let Some(login) = first_text(value, &["user.email", "user.name"]) {
        event.set_user(&login);
    }
    if event.user_domain.is_none() {
        event.user_domain = text(value, "user.domain").map(|d| d.to_lowercase());
    }
    event.user_id = text(value, "user.id");
    event.method = text(value, "system.auth.ssh.method")
        .and_then(|m| util::method_from_text(&m))
        .or_else(|| util::method_from_text(&event_action))
        .or_else(|| {
            keywords(value, "event.provider")
                .iter()
                .find_map(|p| util::method_from_text(p))
        });
    if event.method.is_none() && text(value, "process.name").as_deref() == Some("sshd") {
        event.method = Some(Method::Password);
    }
    event.mfa = matches!(action, Action::MfaChallenge | Action::MfaVerify).then_some(true);
    let detail = first_text(value, &["event.reason", "error.message", "message"]);
    if outcome == Outcome::Failure {
        event.reason = Some(
            detail
                .as_deref()
                .map_or(Reason::Other, util::reason_from_text),
        );
    } else if action == Action::Lockout {
        event.reason = Some(Reason::AccountLocked);
    }
    event.reason_detail = detail
        .filter(|_| outcome == Outcome::Failure)
        .or_else(|| text(value, "event.reason"));
    event.src_ip = util::clean_ip(first_text(
        value,
        &["source.ip", "client.ip", "source.address"],
    ));
    event.src_host = first_text(
        value,
        &["source.domain", "source.hostname", "client.domain"],
    );
    event.dst_host = first_text(
        value,
        &[
            "host.hostname",
            "host.name",
            "destination.domain",
            "observer.hostname",
        ],
    );
    event.country = util::country_code(first_text(
        value,
        &["source.geo.country_iso_code", "client.geo.country_iso_code"],
    ));
    event.city = first_text(value, &["source.geo.city_name", "client.geo.city_name"]);
    event.latitude = util::number(value, "source.geo.location.lat");
    event.longitude = util::number(value, "source.geo.location.lon");
    event.user_agent = text(value, "user_agent.original");
    event.session_id = text(value, "session.id").or_else(|| text(value, "process.entity_id"));
    event.app = first_text(value, &["service.name", "url.domain", "event.dataset"]);
    event.raw = raw.to_owned();
    Ok(event)
}
