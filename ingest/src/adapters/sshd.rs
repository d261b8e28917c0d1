//! OpenSSH server log lines, in classic syslog (`Mar  9 14:02:11 host
//! sshd[123]: …`), high-precision RFC 3339 (rsyslog, journald short-iso) or
//! RFC 5424 framing. Classic syslog carries no year and no zone: the year
//! is supplied or inferred, and the time is taken as UTC.
//!
//! # Which lines are attempts
//!
//! sshd writes one `Accepted <method> for U from IP …` or `Failed <method>
//! for [invalid user ]U from IP …` line per credential a client offers
//! (`Failed none` included: a probe that offered none). Those, and only
//! those, are `login` events. The lines around them describe the same
//! attempts and are kept with an action that says so:
//!
//! | line | action |
//! |---|---|
//! | `Accepted …`, `Failed …` | `login` (success, failure) |
//! | `Invalid user U from IP`, `User U from IP not allowed because …` | `probe`: the account was named, nothing checked yet |
//! | `pam_unix(sshd:auth): authentication failure; … rhost=IP user=U` (and pam_sss, pam_ldap…) | `credential_validation`: PAM's check of the first failure of a connection |
//! | `PAM N more authentication failures`, `error: maximum authentication attempts exceeded for …`, `Disconnecting …: Too many authentication failures` | `attempt_summary`: a connection's attempts, summed up |
//! | `pam_unix(sshd:session): session closed for user U` | `logout` |
//!
//! `message repeated N times: [ <message>]` (rsyslog's folding of identical
//! consecutive messages) is N copies of its inner message, each with its
//! own deterministic id. Everything else sshd writes (connection, key
//! exchange and session housekeeping, `check pass; user unknown`) is counted
//! as skipped. Each line is parsed on its own.
//!
//! Byte-identical lines (the same second, process, port and message) are one
//! record to the log's idempotency: with classic second-precision stamps and
//! no folding, two identical failures within one second of one connection
//! count once. PAM's failure delay (two seconds by default) keeps that rare.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};

use authtrail_schemas::{Action, AuthEvent, EventSink, Method, Outcome, Reason};

use super::util;
use super::{Adapter, Framing, ParseError};

pub struct Sshd {
    year: Option<i32>,
    current_year: i32,
    now: DateTime<Utc>,
}

impl Sshd {
    pub fn new(year: Option<i32>, current_year: i32, now: DateTime<Utc>) -> Self {
        Sshd {
            year,
            current_year,
            now,
        }
    }

    /// A classic syslog date (`Mar  9 14:02:11`) in the supplied year, or in
    /// the current year unless that puts it more than a day in the future.
    fn classic_time(&self, month: &str, day: &str, clock: &str) -> Option<DateTime<Utc>> {
        let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as u32 + 1;
        let day: u32 = day.parse().ok()?;
        let clock = NaiveTime::parse_from_str(clock, "%H:%M:%S").ok()?;
        let at = |year| {
            NaiveDate::from_ymd_opt(year, month, day)
                .map(|d| Utc.from_utc_datetime(&d.and_time(clock)))
        };
        match self.year {
            Some(year) => at(year),
            None => {
                let this_year = at(self.current_year)?;
                if this_year > self.now + chrono::Duration::days(1) {
                    at(self.current_year - 1)
                } else {
                    Some(this_year)
                }
            }
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The parts of a syslog line authtrail needs.
struct Line<'a> {
    time: DateTime<Utc>,
    host: &'a str,
    program: &'a str,
    message: &'a str,
}

impl Sshd {
    fn split<'a>(&self, line: &'a str) -> Result<Line<'a>, ParseError> {
        let bad = || {
            ParseError::rejected(
                "not a syslog line: expected `Mon DD HH:MM:SS host program[pid]: message`, \
                 an RFC 3339 timestamp, or RFC 5424",
            )
        };
        let mut line = line.trim_start();
        // RFC 5424: "<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG"
        if line.starts_with('<') {
            let close = line.find('>').ok_or_else(bad)?;
            line = &line[close + 1..];
            if let Some(rest) = line.strip_prefix("1 ") {
                let mut parts = rest.splitn(7, ' ');
                let stamp = parts.next().ok_or_else(bad)?;
                let host = parts.next().ok_or_else(bad)?;
                let program = parts.next().ok_or_else(bad)?;
                let _pid = parts.next();
                let _msgid = parts.next();
                let structured = parts.next().ok_or_else(bad)?;
                let mut message = parts.next().unwrap_or_default();
                if structured != "-" {
                    // Structured data ends at the first "] " not inside a value.
                    message = rest.split_once("] ").map_or(message, |(_, m)| m);
                }
                let time = util::parse_time_text(stamp).ok_or_else(bad)?;
                return Ok(Line {
                    time,
                    host,
                    program,
                    message: message.trim_start_matches('\u{feff}'),
                });
            }
        }
        let mut words = line.splitn(2, ' ');
        let first = words.next().ok_or_else(bad)?;
        let (time, rest) = if first.len() >= 19 && first.as_bytes().get(4) == Some(&b'-') {
            (
                util::parse_time_text(first).ok_or_else(bad)?,
                words.next().ok_or_else(bad)?,
            )
        } else {
            let rest = words.next().ok_or_else(bad)?.trim_start();
            let (day, rest) = rest.split_once(' ').ok_or_else(bad)?;
            let (clock, rest) = rest.split_once(' ').ok_or_else(bad)?;
            (self.classic_time(first, day, clock).ok_or_else(bad)?, rest)
        };
        let (host, rest) = rest.split_once(' ').ok_or_else(bad)?;
        let (tag, message) = rest.split_once(": ").ok_or_else(bad)?;
        let program = tag.split('[').next().unwrap_or(tag);
        Ok(Line {
            time,
            host,
            program,
            message,
        })
    }
}

/// The word after `marker`, and what follows it.
fn after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    text.find(marker).map(|i| &text[i + marker.len()..])
}

fn word(text: &str) -> Option<&str> {
    text.split_whitespace().next()
}

/// `[invalid user ]<user> from <ip> …`: whether sshd called the user
/// invalid, the user, and the address.
fn user_from(text: &str) -> Option<(bool, &str, Option<&str>)> {
    let (invalid, text) = match text.strip_prefix("invalid user ") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (user, rest) = text.rsplit_once(" from ")?;
    Some((invalid, user, word(rest)))
}

/// `key=value` from a PAM message (`rhost=203.0.113.5  user=root`).
fn pam_field<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .split_whitespace()
        .find_map(|part| part.strip_prefix(key)?.strip_prefix('='))
        .filter(|v| !v.is_empty())
}

/// What one sshd message says, before it becomes an event.
struct Attempt<'a> {
    action: Action,
    outcome: Outcome,
    method: Option<Method>,
    reason: Option<Reason>,
    user: Option<&'a str>,
    ip: Option<&'a str>,
}

/// The most copies one `message repeated N times` line may stand for. rsyslog
/// flushes a repeat at the next different message or after its interval, so
/// a real count stays far below this; a larger one is a forged or corrupt
/// line, refused whole (a dead letter) rather than turned into millions of
/// events.
pub const MAX_REPEATS: u64 = 100_000;

/// `message repeated N times: [ <message>]` (rsyslog's and syslog-ng's
/// reduction of identical consecutive messages): N and the inner message.
fn repeated(message: &str) -> Option<Result<(u64, &str), ParseError>> {
    let rest = message.trim().strip_prefix("message repeated ")?;
    let parsed = (|| {
        let (count, rest) = rest.split_once(" times: [")?;
        let inner = rest.strip_suffix(']')?;
        Some((count.parse::<u64>().ok()?, inner.trim()))
    })();
    Some(match parsed {
        Some((count, _)) if count == 0 || count > MAX_REPEATS => Err(ParseError::rejected(
            format!("`message repeated {count} times`: expected 1 to {MAX_REPEATS} repeats"),
        )),
        Some((_, inner)) if repeated(inner).is_some() => Err(ParseError::rejected(
            "`message repeated` inside `message repeated`",
        )),
        Some(found) => Ok(found),
        None => Err(ParseError::rejected(
            "malformed `message repeated N times: [ message]` line",
        )),
    })
}

/// `unknown_user` for a user sshd called invalid, else `otherwise`.
fn unknown_user_or(invalid: bool, otherwise: Reason) -> Reason {
    if invalid {
        Reason::UnknownUser
    } else {
        otherwise
    }
}

/// The method of `Accepted <method>` and `Failed <method>`.
fn method_of(method: &str) -> Option<Method> {
    match method {
        "publickey" | "hostbased" => Some(Method::SshKey),
        "password" | "keyboard-interactive/pam" | "keyboard-interactive" => Some(Method::Password),
        "gssapi-with-mic" | "gssapi-keyex" => Some(Method::Other),
        // `Failed none`: a probe that offered no credential at all.
        _ => None,
    }
}

/// The PAM module that wrote an `authentication failure` line decides what
/// was checked: a directory (sss, ldap, winbind) or the local password file.
fn pam_method(message: &str) -> Method {
    if ["pam_sss(", "pam_ldap(", "pam_winbind(", "pam_krb5("]
        .iter()
        .any(|module| message.starts_with(module))
    {
        Method::Ldap
    } else {
        Method::Password
    }
}

/// Recognises the sshd messages about authentication. `None` for messages
/// that are not (connection and session housekeeping).
fn classify(message: &str) -> Option<Attempt<'_>> {
    let message = message.trim();
    let record = |action, outcome, method, reason, user, ip| Attempt {
        action,
        outcome,
        method,
        reason,
        user,
        ip,
    };
    // The attempts: one `Accepted` or `Failed` line per credential offered.
    if let Some(rest) = message.strip_prefix("Accepted ") {
        let (method, rest) = rest.split_once(" for ")?;
        let (user, rest) = rest.split_once(" from ")?;
        return Some(record(
            Action::Login,
            Outcome::Success,
            method_of(method),
            None,
            Some(user),
            word(rest),
        ));
    }
    if let Some(rest) = message.strip_prefix("Failed ") {
        let (method, rest) = rest.split_once(" for ")?;
        let (invalid, user, ip) = user_from(rest)?;
        let reason = unknown_user_or(invalid, Reason::InvalidCredentials);
        return Some(record(
            Action::Login,
            Outcome::Failure,
            method_of(method),
            Some(reason),
            Some(user),
            ip,
        ));
    }
    // Probes: the account was named, no credential was checked yet.
    if let Some(rest) = message.strip_prefix("Invalid user ") {
        let (user, rest) = rest.rsplit_once(" from ")?;
        return Some(record(
            Action::Probe,
            Outcome::Failure,
            None,
            Some(Reason::UnknownUser),
            Some(user),
            word(rest),
        ));
    }
    if let Some(rest) = message.strip_prefix("User ")
        && let Some((user, rest)) = rest.split_once(" from ")
        && rest.contains("not allowed because")
    {
        return Some(record(
            Action::Probe,
            Outcome::Failure,
            None,
            Some(Reason::DisabledUser),
            Some(user),
            word(rest),
        ));
    }
    // PAM's check of the first failed password of a connection: the same
    // attempt as the `Failed password` line beside it.
    if message.contains("authentication failure;") && !message.starts_with("PAM ") {
        let reason = if message.contains("user unknown") {
            Reason::UnknownUser
        } else {
            Reason::InvalidCredentials
        };
        return Some(record(
            Action::CredentialValidation,
            Outcome::Failure,
            Some(pam_method(message)),
            Some(reason),
            pam_field(message, "user"),
            pam_field(message, "rhost"),
        ));
    }
    // Summaries, at the end of a connection, of attempts already logged.
    if message.starts_with("PAM ") && message.contains("more authentication failure") {
        return Some(record(
            Action::AttemptSummary,
            Outcome::Failure,
            Some(Method::Password),
            Some(Reason::InvalidCredentials),
            pam_field(message, "user"),
            pam_field(message, "rhost"),
        ));
    }
    if let Some(rest) = after(message, "maximum authentication attempts exceeded for ") {
        let (invalid, user, ip) = user_from(rest)?;
        let reason = unknown_user_or(invalid, Reason::Other);
        return Some(record(
            Action::AttemptSummary,
            Outcome::Failure,
            None,
            Some(reason),
            Some(user),
            ip,
        ));
    }
    if let Some(rest) = message.strip_prefix("Disconnecting")
        && message.contains("Too many authentication failures")
    {
        // `Disconnecting {authenticating|invalid} user U IP port P: Too many
        // authentication failures [preauth]`; older releases say only
        // `Disconnecting: Too many authentication failures for U [preauth]`.
        let (invalid, user, ip) = match rest.split_once(" user ") {
            Some((kind, rest)) if !kind.contains(':') => {
                let kind = kind.trim();
                let mut words = rest.split_whitespace();
                (kind == "invalid", words.next(), words.next())
            }
            _ => (
                false,
                after(rest, "failures for ").and_then(word),
                None::<&str>,
            ),
        };
        let reason = unknown_user_or(invalid, Reason::Other);
        return Some(record(
            Action::AttemptSummary,
            Outcome::Failure,
            None,
            Some(reason),
            user,
            ip.filter(|ip| ip.parse::<std::net::IpAddr>().is_ok()),
        ));
    }
    if let Some(rest) = after(message, "session closed for user ") {
        return Some(record(
            Action::Logout,
            Outcome::Success,
            None,
            None,
            word(rest).map(|u| u.split('(').next().unwrap_or(u)),
            None,
        ));
    }
    None
}

impl Adapter for Sshd {
    fn name(&self) -> &'static str {
        "sshd"
    }

    fn framing(&self) -> Framing {
        Framing::Text
    }

    fn parse(&self, record: &str, out: &mut dyn EventSink) -> Result<(), ParseError> {
        let line = self.split(record)?;
        if line.program != "sshd" && !line.program.starts_with("sshd-") {
            return Err(ParseError::NotAuthentication(format!(
                "syslog program {}",
                line.program
            )));
        }
        let (copies, message) = match repeated(line.message) {
            Some(found) => found?,
            None => (1, line.message),
        };
        let attempt = classify(message).ok_or_else(|| {
            ParseError::NotAuthentication("sshd message not about authentication".into())
        })?;
        // A folded line stands for `copies` messages: the first keeps the
        // line's own id, each further copy the id of (line, copy number), so
        // that replaying the line stores nothing twice.
        let id_of = |copy: u64| match copy {
            1 => util::hashed_id("sshd", record),
            _ => util::hashed_id("sshd", &format!("{record}\u{0}{copy}")),
        };
        let mut event = AuthEvent::new(
            String::new(),
            line.time,
            "sshd",
            attempt.action,
            attempt.outcome,
        );
        if let Some(user) = attempt.user {
            event.set_user(user);
        }
        event.method = attempt.method;
        event.reason = attempt.reason;
        if attempt.outcome == Outcome::Failure {
            event.reason_detail = Some(message.trim().to_owned());
        }
        event.src_ip = util::clean_ip(attempt.ip.map(str::to_owned));
        event.dst_host = Some(line.host.to_owned());
        event.app = Some("sshd".to_owned());
        event.raw = record.to_owned();
        for copy in 1..copies {
            let mut again = event.clone();
            again.event_id = id_of(copy);
            out.push_owned(again);
        }
        event.event_id = id_of(copies);
        out.push_owned(event);
        Ok(())
    }
}
