//! The canonical authentication event, schema version 1.
//!
//! Field names and meanings follow `DESIGN.md` and line up with OCSF
//! Authentication (class 3002), so that any OCSF or ECS consumer can map an
//! authtrail event one to one.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Declares a closed vocabulary with a stable lower-case spelling, used in
/// the Parquet columns, the golden test files and the API alike.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable spelling stored in the event log.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the stable spelling back; `None` for anything else.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// What the principal tried to do.
    ///
    /// One attempt is one `login` (or one MFA action): where a source writes
    /// several records for one attempt, exactly one of them carries the
    /// attempt's action and the others say what they are
    /// (`credential_validation`, `probe`, `attempt_summary`), so that
    /// counting `login` failures counts attempts.
    Action {
        /// A login attempt (first factor, SSO, SSH, Windows logon…).
        Login => "login",
        /// A logout or session end.
        Logout => "logout",
        /// An MFA challenge was sent (push, SMS, e-mail code).
        MfaChallenge => "mfa_challenge",
        /// An MFA factor was checked (accepted or rejected).
        MfaVerify => "mfa_verify",
        /// A session was started or refreshed without a fresh login (an
        /// SSO into an app from an existing IdP session, a Kerberos
        /// service ticket).
        SessionStart => "session_start",
        /// A back end checked the credentials of an attempt that another
        /// record already counts as the `login`: a domain controller's
        /// NTLM or Kerberos check (Windows 4776, 4771) beside the
        /// workstation's 4625, an Okta AD or LDAP agent's delegated check,
        /// PAM's `authentication failure` beside sshd's `Failed password`.
        /// Count it where only the back end's records are collected.
        CredentialValidation => "credential_validation",
        /// A connection named an account but no credential was checked
        /// (sshd's `Invalid user U from IP`, `User U … not allowed`): a
        /// probe for accounts, worth a rule, but not a login attempt.
        Probe => "probe",
        /// A record summing up attempts that were already recorded one by
        /// one (sshd's `PAM 2 more authentication failures`, `maximum
        /// authentication attempts exceeded`, `Too many authentication
        /// failures`): never counted as attempts again.
        AttemptSummary => "attempt_summary",
        /// The account was locked.
        Lockout => "lockout",
        /// The account was unlocked.
        Unlock => "unlock",
        /// The password was changed.
        PasswordChange => "password_change",
        /// The password was reset.
        PasswordReset => "password_reset",
        /// A call to authtrail's own API (source `authtrail`): who read,
        /// queried or exported what, for auditors.
        ApiCall => "api_call",
        /// Anything else the source counts as authentication.
        Other => "other",
    }
}

vocabulary! {
    /// Whether the attempt worked.
    Outcome {
        /// The attempt succeeded.
        Success => "success",
        /// The attempt failed.
        Failure => "failure",
        /// The source did not say.
        Unknown => "unknown",
    }
}

vocabulary! {
    /// How the principal authenticated.
    Method {
        /// A password checked by the IdP itself.
        Password => "password",
        /// A password checked against a directory over LDAP.
        Ldap => "ldap",
        /// SAML single sign-on.
        Saml => "saml",
        /// OpenID Connect.
        Oidc => "oidc",
        /// OAuth 2.0 (other than OIDC).
        Oauth => "oauth",
        /// A time-based one-time password.
        Totp => "totp",
        /// A push notification to a phone.
        Push => "push",
        /// A code sent by SMS or voice call.
        Sms => "sms",
        /// WebAuthn / FIDO2 / U2F security keys and passkeys.
        Webauthn => "webauthn",
        /// An SSH public key.
        SshKey => "ssh_key",
        /// An API key or personal access token.
        ApiKey => "api_key",
        /// Kerberos, certificates, or anything else.
        Other => "other",
    }
}

vocabulary! {
    /// Why an attempt failed, normalised across sources.
    Reason {
        /// Wrong password or secret.
        InvalidCredentials => "invalid_credentials",
        /// No such user.
        UnknownUser => "unknown_user",
        /// The account is locked.
        AccountLocked => "account_locked",
        /// An MFA factor was wrong or timed out.
        MfaFailed => "mfa_failed",
        /// The user rejected an MFA push.
        MfaDenied => "mfa_denied",
        /// The user's e-mail domain is not allowed to log in.
        DomainNotAllowed => "domain_not_allowed",
        /// A replayed assertion or token.
        Replay => "replay",
        /// Expired password, certificate or token.
        ExpiredCredentials => "expired_credentials",
        /// The account is disabled, suspended or deprovisioned.
        DisabledUser => "disabled_user",
        /// The IdP or application is misconfigured.
        ConfigError => "config_error",
        /// Rate limited, throttled, blocked by policy or anything else.
        Other => "other",
    }
}

/// One authentication event in canonical form (schema version 1).
///
/// `ingested_at` is not here: the durable writer stamps it when it stores
/// the event. Empty strings are never stored; a missing value is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthEvent {
    /// The source's own id, else a deterministic hash of source and raw
    /// payload: the idempotency key.
    pub event_id: String,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// The adapter that produced it (`okta`, `sshd`…).
    pub source: String,
    /// Account, organisation or realm.
    pub tenant: Option<String>,
    /// Normalised login name: lower-case e-mail or username.
    pub user: Option<String>,
    /// The provider's stable id for the user.
    pub user_id: Option<String>,
    /// Domain of the user's e-mail address, if it has one.
    pub user_domain: Option<String>,
    /// What was attempted.
    pub action: Action,
    /// Whether it worked.
    pub outcome: Outcome,
    /// How the user authenticated.
    pub method: Option<Method>,
    /// Whether an MFA factor was part of this event.
    pub mfa: Option<bool>,
    /// Normalised failure reason.
    pub reason: Option<Reason>,
    /// The source's own words for the outcome.
    pub reason_detail: Option<String>,
    /// Client address.
    pub src_ip: Option<String>,
    /// Client host name or workstation.
    pub src_host: Option<String>,
    /// The system that did the authenticating.
    pub dst_host: Option<String>,
    /// ISO 3166 alpha-2 country of the client.
    pub country: Option<String>,
    /// City of the client.
    pub city: Option<String>,
    /// Latitude of the client.
    pub latitude: Option<f64>,
    /// Longitude of the client.
    pub longitude: Option<f64>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// Session id, where the source has one.
    pub session_id: Option<String>,
    /// The application or client being logged in to.
    pub app: Option<String>,
    /// The payload exactly as received: evidence.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub raw: String,
}

impl AuthEvent {
    /// A new event with every optional field empty.
    pub fn new(
        event_id: String,
        time: DateTime<Utc>,
        source: &str,
        action: Action,
        outcome: Outcome,
    ) -> Self {
        EventRef::new(Cow::Owned(event_id), time, source, action, outcome, "").into_owned()
    }

    /// Sets `user` to the normalised form of `login` (trimmed, lower-case)
    /// and derives `user_domain` from it when it is an e-mail address.
    pub fn set_user(&mut self, login: &str) {
        if let Some((user, domain)) = normalized_user(login) {
            self.user_domain = domain.map(Cow::into_owned);
            self.user = Some(user.into_owned());
        }
    }
}

/// An event whose text borrows from the record it was parsed from: what
/// adapters hand to an [`EventSink`]. Building Arrow columns straight from
/// it skips an owned [`AuthEvent`] and its dozen strings per event.
///
/// Fields mean what they mean on [`AuthEvent`].
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct EventRef<'a> {
    pub event_id: Cow<'a, str>,
    pub time: DateTime<Utc>,
    pub source: &'a str,
    pub tenant: Option<Cow<'a, str>>,
    pub user: Option<Cow<'a, str>>,
    pub user_id: Option<Cow<'a, str>>,
    pub user_domain: Option<Cow<'a, str>>,
    pub action: Action,
    pub outcome: Outcome,
    pub method: Option<Method>,
    pub mfa: Option<bool>,
    pub reason: Option<Reason>,
    pub reason_detail: Option<Cow<'a, str>>,
    pub src_ip: Option<Cow<'a, str>>,
    pub src_host: Option<Cow<'a, str>>,
    pub dst_host: Option<Cow<'a, str>>,
    pub country: Option<Cow<'a, str>>,
    pub city: Option<Cow<'a, str>>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub user_agent: Option<Cow<'a, str>>,
    pub session_id: Option<Cow<'a, str>>,
    pub app: Option<Cow<'a, str>>,
    pub raw: &'a str,
}

impl<'a> EventRef<'a> {
    /// A new event with every optional field empty.
    pub fn new(
        event_id: Cow<'a, str>,
        time: DateTime<Utc>,
        source: &'a str,
        action: Action,
        outcome: Outcome,
        raw: &'a str,
    ) -> Self {
        EventRef {
            event_id,
            time,
            source,
            tenant: None,
            user: None,
            user_id: None,
            user_domain: None,
            action,
            outcome,
            method: None,
            mfa: None,
            reason: None,
            reason_detail: None,
            src_ip: None,
            src_host: None,
            dst_host: None,
            country: None,
            city: None,
            latitude: None,
            longitude: None,
            user_agent: None,
            session_id: None,
            app: None,
            raw,
        }
    }

    /// Sets `user` and `user_domain` as [`AuthEvent::set_user`] does,
    /// borrowing `login` when it is lower-case already.
    pub fn set_user(&mut self, login: &'a str) {
        if let Some((user, domain)) = normalized_user(login) {
            self.user_domain = domain;
            self.user = Some(user);
        }
    }

    /// The owned event.
    pub fn into_owned(self) -> AuthEvent {
        let owned = |text: Option<Cow<'a, str>>| text.map(Cow::into_owned);
        AuthEvent {
            event_id: self.event_id.into_owned(),
            time: self.time,
            source: self.source.to_owned(),
            tenant: owned(self.tenant),
            user: owned(self.user),
            user_id: owned(self.user_id),
            user_domain: owned(self.user_domain),
            action: self.action,
            outcome: self.outcome,
            method: self.method,
            mfa: self.mfa,
            reason: self.reason,
            reason_detail: owned(self.reason_detail),
            src_ip: owned(self.src_ip),
            src_host: owned(self.src_host),
            dst_host: owned(self.dst_host),
            country: owned(self.country),
            city: owned(self.city),
            latitude: self.latitude,
            longitude: self.longitude,
            user_agent: owned(self.user_agent),
            session_id: owned(self.session_id),
            app: owned(self.app),
            raw: self.raw.to_owned(),
        }
    }
}

/// The normalised form of a login (trimmed, lower-case) and, when it is an
/// e-mail address, its domain; both borrow `login` where it is lower-case
/// already. `None` for a blank login.
fn normalized_user(login: &str) -> Option<(Cow<'_, str>, Option<Cow<'_, str>>)> {
    let login = login.trim();
    if login.is_empty() {
        return None;
    }
    if login.is_ascii() && !login.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some((Cow::Borrowed(login), domain_of(login).map(Cow::Borrowed)));
    }
    let user = login.to_lowercase();
    let domain = domain_of(&user).map(|domain| Cow::Owned(domain.to_owned()));
    Some((Cow::Owned(user), domain))
}

/// The domain of a lower-case login that is an e-mail address.
fn domain_of(user: &str) -> Option<&str> {
    user.rsplit_once('@')
        .map(|(_, domain)| domain)
        .filter(|domain| !domain.is_empty())
}

impl AuthEvent {
    /// The event as a borrowed view.
    pub fn to_ref(&self) -> EventRef<'_> {
        fn text(text: &Option<String>) -> Option<Cow<'_, str>> {
            text.as_deref().map(Cow::Borrowed)
        }
        EventRef {
            event_id: Cow::Borrowed(&self.event_id),
            time: self.time,
            source: &self.source,
            tenant: text(&self.tenant),
            user: text(&self.user),
            user_id: text(&self.user_id),
            user_domain: text(&self.user_domain),
            action: self.action,
            outcome: self.outcome,
            method: self.method,
            mfa: self.mfa,
            reason: self.reason,
            reason_detail: text(&self.reason_detail),
            src_ip: text(&self.src_ip),
            src_host: text(&self.src_host),
            dst_host: text(&self.dst_host),
            country: text(&self.country),
            city: text(&self.city),
            latitude: self.latitude,
            longitude: self.longitude,
            user_agent: text(&self.user_agent),
            session_id: text(&self.session_id),
            app: text(&self.app),
            raw: &self.raw,
        }
    }
}

/// Where adapters put the events they parse: a `Vec` of owned events, or
/// an Arrow batch builder that copies each field once, into its column.
pub trait EventSink {
    /// Takes a borrowed event.
    fn push(&mut self, event: EventRef<'_>);

    /// Takes an owned event (moved, where the sink keeps owned events).
    fn push_owned(&mut self, event: AuthEvent) {
        self.push(event.to_ref());
    }
}

impl EventSink for Vec<AuthEvent> {
    fn push(&mut self, event: EventRef<'_>) {
        Vec::push(self, event.into_owned());
    }

    fn push_owned(&mut self, event: AuthEvent) {
        Vec::push(self, event);
    }
}
