//! Windows Security log logon events: 4624 (logon), 4625 (failed logon),
//! 4740 (account locked out), 4767 (account unlocked), 4771 (Kerberos
//! pre-authentication failed) and 4776 (NTLM credential validation), both
//! as NXLog writes them (flat JSON, `EventID`, event data at the top level)
//! and as Winlogbeat does (`winlog.event_id`, `winlog.event_data`).
//!
//! # Which records are attempts
//!
//! A failed domain logon is recorded twice: 4625 on the machine the user
//! logged on to, and 4776 (NTLM) or 4771 (Kerberos pre-authentication) on
//! the domain controller that checked the password. Both are kept, as two
//! hosts' records, but only 4624 and 4625 are `login` attempts; 4776 and
//! 4771 are `credential_validation`, so that failed logins per user count
//! each attempt once. Where only domain controllers' logs are collected,
//! count `credential_validation` instead. 4740 is the `lockout` the
//! failures caused, 4767 the `unlock`.

use serde_json::Value;

use authtrail_schemas::{Action, AuthEvent, Method, Outcome, Reason};

use super::ParseError;
use super::util::{self, at, first_text, text};

/// The two shapes, behind one accessor.
struct Shape<'a> {
    value: &'a Value,
    data: &'a Value,
    winlogbeat: bool,
}

impl<'a> Shape<'a> {
    fn new(value: &'a Value) -> Self {
        match at(value, "winlog.event_data") {
            Some(data) => Shape {
                value,
                data,
                winlogbeat: true,
            },
            None => Shape {
                value,
                data: value,
                winlogbeat: false,
            },
        }
    }

    fn field(&self, name: &str) -> Option<String> {
        text(self.data, name)
    }

    fn event_id(&self) -> Option<u32> {
        let id = if self.winlogbeat {
            first_text(self.value, &["winlog.event_id", "event.code"])
        } else {
            first_text(self.value, &["EventID", "EventId"])
        };
        id?.parse().ok()
    }

    fn computer(&self) -> Option<String> {
        if self.winlogbeat {
            first_text(self.value, &["winlog.computer_name", "host.name"])
        } else {
            first_text(self.value, &["Hostname", "Computer"])
        }
    }

    fn record_number(&self) -> Option<String> {
        if self.winlogbeat {
            text(self.value, "winlog.record_id")
        } else {
            first_text(self.value, &["RecordNumber", "EventRecordID"])
        }
    }
}

/// NTSTATUS codes of 4625 (`SubStatus`, else `Status`) and 4776 (`Status`).
fn ntstatus_reason(code: &str) -> Reason {
    match code.to_ascii_lowercase().as_str() {
        "0xc0000064" => Reason::UnknownUser,
        "0xc000006a" | "0xc000006d" => Reason::InvalidCredentials,
        "0xc0000234" => Reason::AccountLocked,
        "0xc0000072" | "0xc000006e" | "0xc000006f" | "0xc0000070" | "0xc000015b" | "0xc0000413" => {
            Reason::DisabledUser
        }
        "0xc0000071" | "0xc0000193" | "0xc0000224" | "0xc0000133" => Reason::ExpiredCredentials,
        _ => Reason::Other,
    }
}

/// Kerberos result codes of 4771 (`FailureCode`).
fn kerberos_reason(code: &str) -> Reason {
    match code.to_ascii_lowercase().as_str() {
        "0x18" => Reason::InvalidCredentials,
        "0x6" => Reason::UnknownUser,
        "0x12" => Reason::DisabledUser,
        "0x17" => Reason::ExpiredCredentials,
        "0x25" => Reason::ConfigError,
        _ => Reason::Other,
    }
}

/// Maps one record to its event.
pub(super) fn event(value: &Value, raw: &str) -> Result<AuthEvent, ParseError> {
    let shape = Shape::new(value);
    let id = shape.event_id().ok_or_else(|| {
        ParseError::rejected(
            "not a Windows event: missing `EventID` (NXLog) or `winlog.event_id` (Winlogbeat)",
        )
    })?;
    let (action, outcome) = match id {
        4624 => (Action::Login, Outcome::Success),
        4625 => (Action::Login, Outcome::Failure),
        4771 => (Action::CredentialValidation, Outcome::Failure),
        4776 => {
            let ok = shape.field("Status").is_none_or(|s| s == "0x0" || s == "0");
            (
                Action::CredentialValidation,
                if ok {
                    Outcome::Success
                } else {
                    Outcome::Failure
                },
            )
        }
        4740 => (Action::Lockout, Outcome::Success),
        4767 => (Action::Unlock, Outcome::Success),
        other => {
            return Err(ParseError::NotAuthentication(format!(
                "windows event {other}"
            )));
        }
    };
    let time_paths: &[&str] = if shape.winlogbeat {
        &["@timestamp", "event.created"]
    } else {
        &["EventTime", "TimeCreated", "@timestamp"]
    };
    let time = util::required_time(value, time_paths)?;
    let computer = shape.computer();
    let own_id = match (&computer, shape.record_number()) {
        (Some(c), Some(n)) => Some(format!("{c}/Security/{n}")),
        _ => None,
    };
    let mut event = AuthEvent::new(
        util::id_or_hash(own_id, "windows", raw),
        time,
        "windows",
        action,
        outcome,
    );
    let domain = shape.field("TargetDomainName");
    if let Some(user) = shape.field("TargetUserName") {
        event.set_user(&user);
    }
    event.tenant = domain.clone().filter(|_| id != 4740);
    event.user_id = shape
        .field("TargetUserSid")
        .or_else(|| shape.field("TargetSid"))
        .filter(|s| s != "S-1-0-0");
    let package = shape
        .field("AuthenticationPackageName")
        .or_else(|| shape.field("PackageName"))
        .unwrap_or_default();
    event.method = match id {
        4771 => Some(Method::Other),
        4776 => Some(Method::Password),
        4624 | 4625 if package.to_ascii_uppercase().contains("NTLM") => Some(Method::Password),
        4624 | 4625 if package.eq_ignore_ascii_case("Kerberos") => Some(Method::Other),
        4624 | 4625 if package.eq_ignore_ascii_case("Negotiate") => Some(Method::Password),
        _ => None,
    };
    if outcome == Outcome::Failure {
        event.reason = Some(match id {
            4771 => shape
                .field("Status")
                .or_else(|| shape.field("FailureCode"))
                .as_deref()
                .map_or(Reason::Other, kerberos_reason),
            _ => shape
                .field("SubStatus")
                .filter(|s| s != "0x0")
                .or_else(|| shape.field("Status"))
                .as_deref()
                .map_or(Reason::Other, ntstatus_reason),
        });
        event.reason_detail = [
            shape.field("SubStatus"),
            shape.field("Status"),
            shape.field("FailureCode"),
            shape.field("FailureReason"),
        ]
        .into_iter()
        .flatten()
        .find(|s| s != "0x0");
    } else if action == Action::Lockout {
        event.reason = Some(Reason::AccountLocked);
    }
    event.src_ip = util::clean_ip(shape.field("IpAddress"));
    // 4740 names the machine the lockout came from in TargetDomainName.
    event.src_host = if id == 4740 {
        domain
    } else {
        shape
            .field("WorkstationName")
            .or_else(|| shape.field("Workstation"))
    };
    event.dst_host = computer;
    event.session_id = shape.field("TargetLogonId");
    event.app = shape
        .field("LogonType")
        .map(|t| format!("windows logon type {t}"))
        .or_else(|| Some("windows".to_owned()));
    event.raw = raw.to_owned();
    Ok(event)
}
