//! Keycloak user events (`EventRepresentation`, as the admin REST API and
//! JSON event listeners emit them): LOGIN, LOGIN_ERROR, LOGOUT, the
//! identity-provider and client logins, brute-force lockouts and credential
//! updates, with Keycloak's error codes normalised.
//!
//! # Which records are attempts
//!
//! Keycloak writes one `LOGIN_ERROR` per failed step of a login flow and one
//! `LOGIN` when the flow completes, so each is one attempt; a failed OTP
//! step is the `mfa_verify` of that attempt. A login brokered through
//! another identity provider ends in a `LOGIN` (with `identity_provider` in
//! its details); the broker's own successful `IDENTITY_PROVIDER_LOGIN` beside
//! it is a `credential_validation`, while a broker failure
//! (`IDENTITY_PROVIDER_LOGIN_ERROR`) is followed by nothing else and is the
//! attempt. Token exchanges
//! and refreshes are `session_start`; the brute-force detector's
//! `USER_DISABLED_BY_*_LOCKOUT` is the `lockout`, and the attempts after it
//! are `LOGIN_ERROR`s with `user_temporarily_disabled`.

use serde_json::Value;

use authtrail_schemas::{Action, AuthEvent, Method, Outcome, Reason};

use super::ParseError;
use super::util::{self, first_text, text};

fn classify(kind: &str) -> Option<(Action, Outcome)> {
    use Action::*;
    use Outcome::*;
    Some(match kind {
        "LOGIN" | "CLIENT_LOGIN" => (Login, Success),
        "IDENTITY_PROVIDER_LOGIN" => (CredentialValidation, Success),
        "LOGIN_ERROR" | "IDENTITY_PROVIDER_LOGIN_ERROR" | "CLIENT_LOGIN_ERROR" => (Login, Failure),
        "LOGOUT" => (Logout, Success),
        "LOGOUT_ERROR" => (Logout, Failure),
        "REFRESH_TOKEN" | "CODE_TO_TOKEN" | "IDENTITY_PROVIDER_FIRST_LOGIN" => {
            (SessionStart, Success)
        }
        "REFRESH_TOKEN_ERROR" | "CODE_TO_TOKEN_ERROR" => (SessionStart, Failure),
        "USER_DISABLED_BY_TEMPORARY_LOCKOUT" | "USER_DISABLED_BY_PERMANENT_LOCKOUT" => {
            (Lockout, Success)
        }
        "UPDATE_PASSWORD" | "UPDATE_CREDENTIAL" => (PasswordChange, Success),
        "UPDATE_PASSWORD_ERROR" | "UPDATE_CREDENTIAL_ERROR" => (PasswordChange, Failure),
        "RESET_PASSWORD" => (PasswordReset, Success),
        "RESET_PASSWORD_ERROR" => (PasswordReset, Failure),
        "UPDATE_TOTP" => (Other, Success),
        _ => return None,
    })
}

/// Keycloak's `Errors` constants, normalised.
fn reason_of(error: &str) -> Reason {
    match error {
        "invalid_user_credentials" | "invalid_client_credentials" | "password_missing" => {
            Reason::InvalidCredentials
        }
        "user_not_found" | "username_missing" => Reason::UnknownUser,
        "user_temporarily_disabled" => Reason::AccountLocked,
        "user_disabled" => Reason::DisabledUser,
        "invalid_totp" => Reason::MfaFailed,
        "expired_code" | "expired_password" | "expired_token" => Reason::ExpiredCredentials,
        "invalid_code" | "code_already_used" | "invalid_token" | "stale_code" => Reason::Replay,
        "client_not_found"
        | "client_disabled"
        | "invalid_redirect_uri"
        | "identity_provider_error"
        | "invalid_saml_response" => Reason::ConfigError,
        other => util::reason_from_text(other),
    }
}

/// Maps one record to its event.
pub(super) fn event(value: &Value, raw: &str) -> Result<AuthEvent, ParseError> {
    let kind = text(value, "type").ok_or_else(|| {
        ParseError::rejected(
            "not a Keycloak event: missing `type` (expected LOGIN, LOGIN_ERROR, …)",
        )
    })?;
    let (action, outcome) =
        classify(&kind).ok_or_else(|| ParseError::NotAuthentication(format!("keycloak {kind}")))?;
    let time = util::required_time(value, &["time"])?;
    let id = text(value, "id");
    let mut event = AuthEvent::new(
        util::id_or_hash(id, "keycloak", raw),
        time,
        "keycloak",
        action,
        outcome,
    );
    event.tenant = first_text(value, &["realmName", "realmId"]);
    if let Some(login) = first_text(value, &["details.username", "details.email"]) {
        event.set_user(&login);
    }
    event.user_id = text(value, "userId");
    let credential = text(value, "details.credential_type").unwrap_or_default();
    event.method = if credential == "otp" || kind == "UPDATE_TOTP" {
        Some(Method::Totp)
    } else if credential == "webauthn" || credential == "webauthn-passwordless" {
        Some(Method::Webauthn)
    } else if kind.starts_with("IDENTITY_PROVIDER")
        || text(value, "details.identity_provider").is_some()
    {
        text(value, "details.identity_provider")
            .and_then(|idp| util::method_from_text(&idp))
            .or(Some(Method::Oidc))
    } else if kind.starts_with("CLIENT_LOGIN") {
        Some(Method::ApiKey)
    } else if matches!(action, Action::PasswordChange | Action::PasswordReset) {
        Some(Method::Password)
    } else {
        match text(value, "details.auth_method").as_deref() {
            Some("saml") => Some(Method::Saml),
            Some("openid-connect") if action == Action::Login => Some(Method::Password),
            Some("openid-connect") => Some(Method::Oidc),
            _ => None,
        }
    };
    event.mfa = (credential == "otp" || credential == "webauthn").then_some(true);
    if event.mfa == Some(true) && action == Action::Login {
        event.action = Action::MfaVerify;
    }
    let error = text(value, "error");
    if outcome == Outcome::Failure {
        event.reason = Some(match error.as_deref() {
            Some("invalid_user_credentials") if credential == "otp" => Reason::MfaFailed,
            Some(e) => reason_of(e),
            None => Reason::Other,
        });
    } else if action == Action::Lockout {
        event.reason = Some(Reason::AccountLocked);
    }
    event.reason_detail = error;
    event.src_ip = util::clean_ip(text(value, "ipAddress"));
    event.session_id = text(value, "sessionId");
    event.app = text(value, "clientId");
    event.raw = raw.to_owned();
    Ok(event)
}
