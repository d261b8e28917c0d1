//! Harness audit trail events (NG audit API and audit streaming): `LOGIN`,
//! `LOGIN2FA` and `UNSUCCESSFUL_LOGIN`, with `auditEventData.loginType`
//! (USERNAME_PASSWORD, LDAP, SAML, OAUTH, TWOFA…) and `failureReason`.
//!
//! # Which records are attempts
//!
//! Harness writes one audit record per sign-in: `LOGIN` for a success
//! without two-factor, `LOGIN2FA` instead of it for one with two-factor (an
//! `mfa_verify` success that is also the sign-in), and `UNSUCCESSFUL_LOGIN`
//! for each failure (a `login` failure, or an `mfa_verify` failure when the
//! two-factor code was wrong). No record of Harness repeats another.

use serde_json::Value;

use authtrail_schemas::{Action, AuthEvent, Method, Outcome, Reason};

use super::ParseError;
use super::util::{self, first_text, text};

/// Maps one record to its event.
pub(super) fn event(value: &Value, raw: &str) -> Result<AuthEvent, ParseError> {
    let kind = text(value, "action").ok_or_else(|| {
        ParseError::rejected(
            "not a Harness audit event: missing `action` (expected LOGIN, UNSUCCESSFUL_LOGIN, …)",
        )
    })?;
    let (action, outcome) = match kind.as_str() {
        "LOGIN" => (Action::Login, Outcome::Success),
        "LOGIN2FA" => (Action::MfaVerify, Outcome::Success),
        "UNSUCCESSFUL_LOGIN" => (Action::Login, Outcome::Failure),
        "LOGOUT" => (Action::Logout, Outcome::Success),
        other => return Err(ParseError::NotAuthentication(format!("harness {other}"))),
    };
    let time = util::required_time(value, &["timestamp", "auditEventTime", "createdAt"])?;
    let id = first_text(value, &["auditId", "insertId", "id"]);
    let mut event = AuthEvent::new(
        util::id_or_hash(id, "harness", raw),
        time,
        "harness",
        action,
        outcome,
    );
    event.tenant = first_text(
        value,
        &["resourceScope.accountIdentifier", "accountIdentifier"],
    );
    if let Some(login) = first_text(
        value,
        &[
            "authenticationInfo.principal.email",
            "authenticationInfo.principal.identifier",
            "authenticationInfo.labels.userEmail",
            "resource.identifier",
        ],
    ) {
        event.set_user(&login);
    }
    event.user_id = first_text(
        value,
        &[
            "authenticationInfo.labels.userId",
            "authenticationInfo.principal.uniqueId",
        ],
    );
    let login_type = first_text(
        value,
        &[
            "auditEventData.loginType",
            "auditEventData.authenticationMechanism",
        ],
    )
    .unwrap_or_default();
    event.method = match login_type.to_ascii_uppercase().as_str() {
        "USERNAME_PASSWORD" | "PASSWORD" => Some(Method::Password),
        "LDAP" => Some(Method::Ldap),
        "SAML" => Some(Method::Saml),
        "OAUTH" => Some(Method::Oauth),
        "OIDC" | "OPENID_CONNECT" => Some(Method::Oidc),
        "TWOFA" | "TWO_FACTOR" => Some(Method::Totp),
        "" => None,
        _ => Some(Method::Other),
    };
    event.mfa = (kind == "LOGIN2FA" || event.method == Some(Method::Totp)).then_some(true);
    if event.mfa == Some(true) && action == Action::Login && outcome == Outcome::Failure {
        event.action = Action::MfaVerify;
    }
    let detail = text(value, "auditEventData.failureReason");
    if outcome == Outcome::Failure {
        event.reason = Some(
            detail
                .as_deref()
                .map_or(Reason::Other, util::reason_from_text),
        );
    }
    event.reason_detail = detail;
    event.src_ip = util::clean_ip(first_text(
        value,
        &["requestMetadata.clientIP", "requestMetadata.clientIp"],
    ));
    event.user_agent = text(value, "requestMetadata.userAgent");
    event.app = Some("harness".to_owned());
    event.raw = raw.to_owned();
    Ok(event)
}
