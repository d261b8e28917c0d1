//! The demo's SSH bastion: the sshd log of one internet-facing host, in
//! the order OpenSSH 9 with PAM writes it and rsyslog files it
//! (high-precision RFC 3339 stamps, identical consecutive messages folded
//! into `message repeated N times`).
//!
//! Engineers log in by key (now and then by password, with a typo first);
//! the internet knocks all day (`Invalid user`, a password or two); and the
//! injected attacks are SSH brute force on one account and password
//! spraying over many names. Each line is written with the number of events
//! the `sshd` adapter makes of it, so that the ground truth counts events
//! and failed login attempts exactly as the log must.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Attack, DemoConfig};

/// The bastion's host name, the `dst_host` of its events.
pub const HOST: &str = "bastion-1";

/// Names that scanners and sprayers try.
const PROBED: &[&str] = &[
    "admin",
    "test",
    "user",
    "oracle",
    "postgres",
    "ubuntu",
    "git",
    "ftpuser",
    "guest",
    "deploy",
    "jenkins",
    "hadoop",
    "pi",
    "support",
    "mysql",
    "www",
    "backup",
    "nagios",
    "minecraft",
    "steam",
    "dev",
    "tomcat",
    "ansible",
    "docker",
    "elastic",
    "teamspeak",
    "zabbix",
    "odoo",
    "vagrant",
    "service",
];

/// Address blocks the background scanners come from (never an attacker's).
const SCANNERS: &[&str] = &["80.94", "141.98", "193.32", "45.148", "92.255"];

/// Address blocks of the injected attacks, one address per attack.
const ATTACKERS: &[&str] = &["194.26.29", "218.92.0", "61.177.172", "179.43.180"];

/// One line of the log, with the events the adapter makes of it.
struct Line {
    time: DateTime<Utc>,
    pid: u32,
    message: String,
    events: u64,
    failed_logins: u64,
}

/// The bastion's log for a demo's days, with its attacks.
pub struct SshdDemo {
    text: Vec<u8>,
    attacks: Vec<Attack>,
    events: u64,
    failed_logins: u64,
}

/// Builds the lines of one connection, in order, from one process.
struct Connection<'a> {
    lines: &'a mut Vec<Line>,
    pid: u32,
    at: DateTime<Utc>,
    ip: String,
    port: u16,
}

impl Connection<'_> {
    fn say(&mut self, message: String, events: u64, failed_logins: u64) {
        self.lines.push(Line {
            time: self.at,
            pid: self.pid,
            message,
            events,
            failed_logins,
        });
    }

    fn wait(&mut self, millis: i64) {
        self.at += Duration::milliseconds(millis);
    }

    /// `tries` wrong passwords for `user` in one connection, as sshd and
    /// PAM log them: PAM's line for the first failure only, each `Failed
    /// password` (identical ones folded by rsyslog), and the summaries at
    /// the disconnect: sshd's own at its limit of six, PAM's always.
    fn wrong_passwords(&mut self, user: &str, invalid: bool, tries: u64) {
        let ip = self.ip.clone();
        let port = self.port;
        let who = if invalid {
            format!("invalid user {user}")
        } else {
            user.to_owned()
        };
        if invalid {
            self.say(format!("Invalid user {user} from {ip} port {port}"), 1, 0);
            self.say("pam_unix(sshd:auth): check pass; user unknown".into(), 0, 0);
            self.say(
                format!(
                    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}"
                ),
                1,
                0,
            );
        } else {
            self.say(
                format!(
                    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user={user}"
                ),
                1,
                0,
            );
        }
        // PAM's failure delay: about two seconds a try.
        self.wait(2_000 + i64::from(self.port % 500));
        let failed = format!("Failed password for {who} from {ip} port {port} ssh2");
        self.say(failed.clone(), 1, 1);
        if tries > 1 {
            self.wait((tries as i64 - 1) * 2_300);
            self.say(
                format!("message repeated {} times: [ {failed}]", tries - 1),
                tries - 1,
                tries - 1,
            );
        }
        if tries >= 6 {
            self.say(
                format!(
                    "error: maximum authentication attempts exceeded for {who} from {ip} port {port} ssh2 [preauth]"
                ),
                1,
                0,
            );
            let kind = if invalid { "invalid" } else { "authenticating" };
            self.say(
                format!(
                    "Disconnecting {kind} user {user} {ip} port {port}: Too many authentication failures [preauth]"
                ),
                1,
                0,
            );
        } else {
            let kind = if invalid { "invalid" } else { "authenticating" };
            self.say(
                format!("Connection closed by {kind} user {user} {ip} port {port} [preauth]"),
                0,
                0,
            );
        }
        if tries > 1 {
            let user_field = if invalid {
                String::new()
            } else {
                format!("  user={user}")
            };
            let (n, s) = (tries - 1, if tries > 2 { "s" } else { "" });
            self.say(
                format!(
                    "PAM {n} more authentication failure{s}; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}{user_field}"
                ),
                1,
                0,
            );
        }
        if tries > 3 {
            self.say(
                format!("PAM service(sshd) ignoring max retries; {tries} > 3"),
                0,
                0,
            );
        }
    }
}

impl SshdDemo {
    /// Generates the bastion's log for `config`'s days. Every eighth of the
    /// employees' `logins` (e-mail addresses) is an engineer with an account
    /// on the bastion, named by the part before the `@`.
    pub fn generate(config: &DemoConfig, logins: &[String]) -> Self {
        // Its own stream of randomness: the OCSF demo stays as it was.
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5353_4844);
        let engineers: Vec<String> = logins
            .iter()
            .step_by(8)
            .map(|login| login.split('@').next().unwrap_or(login).to_owned())
            .collect();
        let mut lines = Vec::new();
        let mut attacks = Vec::new();
        let mut pid = 1_000 + rng.random_range(0..5_000u32);
        let mut next_pid = |rng: &mut ChaCha8Rng| {
            pid += rng.random_range(1..40);
            pid
        };
        let port = |rng: &mut ChaCha8Rng| rng.random_range(32_768..60_999u16);
        let rounds = (config.days / 10).max(1);
        let mut attack_days = Vec::new();
        for _ in 0..rounds {
            for kind in ["ssh_brute_force", "ssh_password_spraying"] {
                attack_days.push((rng.random_range(0..config.days.max(1)), kind));
            }
        }
        for day in 0..config.days {
            let date: NaiveDate = config.start + Duration::days(i64::from(day));
            let midnight = Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default());
            let at = |rng: &mut ChaCha8Rng, from_s: i64, to_s: i64| {
                midnight
                    + Duration::seconds(rng.random_range(from_s..to_s))
                    + Duration::microseconds(rng.random_range(0..1_000_000))
            };
            // Engineers, from their offices and homes.
            for (index, engineer) in engineers.iter().enumerate() {
                if !rng.random_bool(0.6) {
                    continue;
                }
                let mut c = Connection {
                    lines: &mut lines,
                    pid: next_pid(&mut rng),
                    at: at(&mut rng, 6 * 3600, 20 * 3600),
                    ip: format!("198.51.{}.{}", 100 + index % 2, rng.random_range(2..250)),
                    port: port(&mut rng),
                };
                let (ip, p) = (c.ip.clone(), c.port);
                if rng.random_bool(0.05) {
                    c.say(
                        format!(
                            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user={engineer}"
                        ),
                        1,
                        0,
                    );
                    c.wait(2_100);
                    c.say(
                        format!("Failed password for {engineer} from {ip} port {p} ssh2"),
                        1,
                        1,
                    );
                    c.wait(4_000);
                    c.say(
                        format!("Accepted password for {engineer} from {ip} port {p} ssh2"),
                        1,
                        0,
                    );
                } else {
                    c.say(
                        format!(
                            "Accepted publickey for {engineer} from {ip} port {p} ssh2: ED25519 SHA256:{:043x}",
                            index * 7919 + 1
                        ),
                        1,
                        0,
                    );
                }
                c.say(
                    format!(
                        "pam_unix(sshd:session): session opened for user {engineer}(uid={}) by (uid=0)",
                        1000 + index
                    ),
                    0,
                    0,
                );
                c.wait(rng.random_range(60_000..4 * 3_600_000));
                c.say(
                    format!("pam_unix(sshd:session): session closed for user {engineer}"),
                    1,
                    0,
                );
            }
            // The internet's background knocking: a probe or a try or two.
            for _ in 0..rng.random_range(6..14) {
                let ip = format!(
                    "{}.{}.{}",
                    SCANNERS[rng.random_range(0..SCANNERS.len())],
                    rng.random_range(0..256),
                    rng.random_range(1..255)
                );
                let mut c = Connection {
                    lines: &mut lines,
                    pid: next_pid(&mut rng),
                    at: at(&mut rng, 0, 86_000),
                    ip,
                    port: port(&mut rng),
                };
                let name = PROBED[rng.random_range(0..PROBED.len())];
                match rng.random_range(0..4) {
                    0 => {
                        let (ip, p) = (c.ip.clone(), c.port);
                        c.say(format!("Invalid user {name} from {ip} port {p}"), 1, 0);
                        c.wait(300);
                        c.say(
                            format!(
                                "Connection closed by invalid user {name} {ip} port {p} [preauth]"
                            ),
                            0,
                            0,
                        );
                    }
                    1 => {
                        let (ip, p) = (c.ip.clone(), c.port);
                        c.say(format!("Invalid user {name} from {ip} port {p}"), 1, 0);
                        c.say(
                            format!("Failed none for invalid user {name} from {ip} port {p} ssh2"),
                            1,
                            1,
                        );
                        c.wait(200);
                        c.say(
                            format!(
                                "Connection closed by invalid user {name} {ip} port {p} [preauth]"
                            ),
                            0,
                            0,
                        );
                    }
                    2 => c.wrong_passwords(name, true, rng.random_range(1..3)),
                    _ => c.wrong_passwords("root", false, rng.random_range(1..3)),
                }
            }
            let todays: Vec<&'static str> = attack_days
                .iter()
                .filter(|(d, _)| *d == day)
                .map(|(_, k)| *k)
                .collect();
            for kind in todays {
                let number = attacks.len();
                let block = ATTACKERS[number % ATTACKERS.len()];
                let ip = format!("{block}.{}", 10 + number / ATTACKERS.len());
                let start = at(&mut rng, 0, 60_000);
                let before = lines.len();
                let mut clock = start;
                let (user, description) = if kind == "ssh_brute_force" {
                    let target = if rng.random_bool(0.5) || engineers.is_empty() {
                        "root".to_owned()
                    } else {
                        engineers[rng.random_range(0..engineers.len())].clone()
                    };
                    let connections = rng.random_range(8..20);
                    let mut tries = 0;
                    for _ in 0..connections {
                        let n = if rng.random_bool(0.7) {
                            6
                        } else {
                            rng.random_range(2..6)
                        };
                        tries += n;
                        let mut c = Connection {
                            lines: &mut lines,
                            pid: next_pid(&mut rng),
                            at: clock,
                            ip: ip.clone(),
                            port: port(&mut rng),
                        };
                        c.wrong_passwords(&target, false, n);
                        clock = c.at + Duration::milliseconds(rng.random_range(500..5_000));
                    }
                    (
                        Some(target.clone()),
                        format!(
                            "{tries} passwords tried for {target} over SSH in {connections} connections"
                        ),
                    )
                } else {
                    let names = rng.random_range(15..PROBED.len());
                    for name in &PROBED[..names] {
                        let mut c = Connection {
                            lines: &mut lines,
                            pid: next_pid(&mut rng),
                            at: clock,
                            ip: ip.clone(),
                            port: port(&mut rng),
                        };
                        c.wrong_passwords(name, true, 1);
                        clock = c.at + Duration::milliseconds(rng.random_range(1_000..20_000));
                    }
                    (
                        None,
                        format!("one password tried over SSH for {names} account names"),
                    )
                };
                let made = &lines[before..];
                attacks.push(Attack {
                    kind,
                    start,
                    end: made.iter().map(|l| l.time).max().unwrap_or(start),
                    user,
                    src_ip: Some(ip.clone()),
                    events: made.iter().map(|l| l.events).sum(),
                    failed_logins: made.iter().map(|l| l.failed_logins).sum(),
                    selector: format!("source = 'sshd' AND src_ip = '{ip}'"),
                    description,
                });
            }
        }
        // One process's lines keep their order: the sort is stable.
        lines.sort_by_key(|l| l.time);
        let mut text = Vec::with_capacity(lines.len() * 120);
        for line in &lines {
            text.extend_from_slice(
                format!(
                    "{} {HOST} sshd[{}]: {}\n",
                    line.time.format("%Y-%m-%dT%H:%M:%S%.6f+00:00"),
                    line.pid,
                    line.message
                )
                .as_bytes(),
            );
        }
        SshdDemo {
            text,
            events: lines.iter().map(|l| l.events).sum(),
            failed_logins: lines.iter().map(|l| l.failed_logins).sum(),
            attacks,
        }
    }

    /// The log, as syslog text.
    pub fn text(&self) -> &[u8] {
        &self.text
    }

    /// The injected attacks.
    pub fn attacks(&self) -> &[Attack] {
        &self.attacks
    }

    /// Events the `sshd` adapter makes of the log.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Failed login attempts in the log, attacks and background alike.
    pub fn failed_logins(&self) -> u64 {
        self.failed_logins
    }
}
