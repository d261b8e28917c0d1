//! A generator of realistic login traffic for one organisation, with
//! injected attacks and a ground-truth list of them.
//!
//! Users work from five offices in four time zones, log in on work days
//! (some on weekends), mistype passwords now and then, answer MFA by push,
//! TOTP or security key, and sign in to a handful of SaaS apps. Attacks are
//! woven in: brute force, password spraying, credential stuffing, MFA push
//! fatigue, impossible travel, and logins from domains that are not allowed.
//!
//! Output is OCSF Authentication (class 3002) NDJSON, sorted by time, the
//! same bytes for the same seed and start date. Read it as an [`std::io::Read`]
//! ([`DemoReader`]) to write a file or to feed the ingest pipeline. Beside
//! it, [`sshd::SshdDemo`] writes the log of an internet-facing SSH bastion
//! in real OpenSSH order, with its own attacks.
//!
//! The ground truth counts what each attack did the way the log must count
//! it: `failed_logins` is the number of failed login attempts (one per
//! password tried, never one per record about it), and `selector` is a SQL
//! condition over `events` that picks exactly the attack's events.

pub mod sshd;

use std::io::Read;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Number of employees.
    pub users: usize,
    /// Number of days.
    pub days: u32,
    /// First day (UTC).
    pub start: NaiveDate,
    /// Seed of the random generator.
    pub seed: u64,
}

/// One injected attack, as written to the ground-truth file.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Attack {
    /// brute_force, password_spraying, credential_stuffing, mfa_fatigue,
    /// impossible_travel or domain_not_allowed.
    pub kind: &'static str,
    /// First event of the attack.
    pub start: DateTime<Utc>,
    /// Last event of the attack.
    pub end: DateTime<Utc>,
    /// The targeted (or travelling) user, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The attacking address, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<String>,
    /// How many events the attack added.
    pub events: u64,
    /// How many of them are failed login attempts (`action = 'login' AND
    /// outcome = 'failure'`).
    pub failed_logins: u64,
    /// A SQL condition over `events` that holds for exactly the attack's
    /// events.
    pub selector: String,
    /// What happened, in words.
    pub description: String,
}

struct Office {
    city: &'static str,
    country: &'static str,
    lat: f64,
    lon: f64,
    utc_offset_minutes: i64,
    nat_prefix: &'static str,
}

const OFFICES: &[Office] = &[
    Office {
        city: "New York",
        country: "US",
        lat: 40.71,
        lon: -74.01,
        utc_offset_minutes: -300,
        nat_prefix: "198.51.100",
    },
    Office {
        city: "San Francisco",
        country: "US",
        lat: 37.77,
        lon: -122.42,
        utc_offset_minutes: -480,
        nat_prefix: "198.51.101",
    },
    Office {
        city: "London",
        country: "GB",
        lat: 51.51,
        lon: -0.13,
        utc_offset_minutes: 0,
        nat_prefix: "203.0.113",
    },
    Office {
        city: "Berlin",
        country: "DE",
        lat: 52.52,
        lon: 13.40,
        utc_offset_minutes: 60,
        nat_prefix: "203.0.114",
    },
    Office {
        city: "Bengaluru",
        country: "IN",
        lat: 12.97,
        lon: 77.59,
        utc_offset_minutes: 330,
        nat_prefix: "192.0.2",
    },
];

/// Far-away places for attackers and impossible travel.
const ELSEWHERE: &[(&str, &str, f64, f64, &str)] = &[
    ("Moscow", "RU", 55.76, 37.62, "185.220.101"),
    ("Lagos", "NG", 6.52, 3.38, "102.89.34"),
    ("São Paulo", "BR", -23.55, -46.63, "177.67.80"),
    ("Shenzhen", "CN", 22.54, 114.06, "116.31.116"),
    ("Jakarta", "ID", -6.21, 106.85, "36.66.209"),
    ("Bucharest", "RO", 44.43, 26.10, "89.36.75"),
];

const APPS: &[(&str, u32)] = &[
    ("Slack", 5),
    ("Google Workspace", 5),
    ("Salesforce", 6),
    ("GitHub", 4),
    ("Jira", 4),
    ("AWS Console", 5),
    ("Workday", 5),
    ("Zoom", 4),
    ("Confluence", 4),
    ("Datadog", 4),
];

const FIRST: &[&str] = &[
    "james",
    "mary",
    "robert",
    "patricia",
    "john",
    "jennifer",
    "michael",
    "linda",
    "david",
    "elizabeth",
    "william",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "priya",
    "arjun",
    "oliver",
    "amelia",
    "lukas",
    "lena",
    "aisha",
    "wei",
    "yuki",
    "mateo",
    "sofia",
    "noah",
    "emma",
    "liam",
    "chloe",
    "ravi",
    "ananya",
    "felix",
    "hannah",
    "omar",
    "fatima",
    "ivan",
];

const LAST: &[&str] = &[
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "patel",
    "sharma",
    "muller",
    "schmidt",
    "schneider",
    "fischer",
    "taylor",
    "wilson",
    "evans",
    "thomas",
    "kim",
    "lee",
    "nguyen",
    "chen",
    "wang",
    "singh",
    "kumar",
    "lopez",
    "gonzalez",
    "clark",
    "lewis",
    "walker",
];

const DOMAIN: &str = "acme.example";

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
];

#[derive(Clone, Copy, PartialEq)]
enum Factor {
    Push,
    Totp,
    Webauthn,
}

struct User {
    login: String,
    uid: String,
    office: usize,
    factor: Factor,
    remote_ip: String,
    agent: usize,
    apps: Vec<usize>,
    weekend_worker: bool,
    typo_rate: f64,
}

/// One OCSF 3002 record in the making.
#[derive(Serialize)]
struct Ocsf<'a> {
    class_uid: u32,
    category_uid: u32,
    activity_id: u32,
    type_uid: u32,
    time: i64,
    severity_id: u32,
    status_id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_detail: Option<&'a str>,
    metadata: Metadata<'a>,
    user: OcsfUser<'a>,
    src_endpoint: Endpoint<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_protocol: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_protocol_id: Option<u32>,
    is_mfa: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    auth_factors: Vec<FactorType<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<Named<'a>>,
    http_request: UserAgent<'a>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    uid: String,
    version: &'a str,
    product: Named<'a>,
    event_code: &'a str,
}

#[derive(Serialize)]
struct Named<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct OcsfUser<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
}

#[derive(Serialize)]
struct Endpoint<'a> {
    ip: &'a str,
    location: Location<'a>,
}

#[derive(Serialize)]
struct Location<'a> {
    city: &'a str,
    country: &'a str,
    coordinates: [f64; 2],
}

#[derive(Serialize)]
struct FactorType<'a> {
    factor_type: &'a str,
}

#[derive(Serialize)]
struct UserAgent<'a> {
    user_agent: &'a str,
}

/// An event before it is written out.
struct Planned {
    time: DateTime<Utc>,
    user: String,
    uid: Option<String>,
    ip: String,
    city: &'static str,
    country: &'static str,
    lat: f64,
    lon: f64,
    kind: Kind,
    success: bool,
    detail: Option<&'static str>,
    app: Option<&'static str>,
    agent: usize,
    /// The number of the attack that made it, part of its id.
    attack: Option<usize>,
}

#[derive(Clone, Copy)]
enum Kind {
    /// A sign-in to the IdP (`user.session.start`): by password, or
    /// federated by SAML.
    Login {
        saml: bool,
    },
    Mfa(Factor),
    PushSent,
    Sso {
        saml: bool,
    },
    Logout,
}

impl DemoConfig {
    /// The default demo: 500 users over the 30 days before today.
    pub fn new(users: usize, days: u32, seed: u64, start: Option<NaiveDate>) -> Self {
        let start =
            start.unwrap_or_else(|| Utc::now().date_naive() - Duration::days(i64::from(days)));
        DemoConfig {
            users,
            days,
            start,
            seed,
        }
    }
}

/// Streams the demo as OCSF NDJSON, one day at a time.
pub struct DemoReader {
    config: DemoConfig,
    rng: ChaCha8Rng,
    users: Vec<User>,
    day: u32,
    buffer: Vec<u8>,
    position: usize,
    sequence: u64,
    attacks: Vec<Attack>,
    attack_days: Vec<(u32, &'static str)>,
    events: u64,
    /// Events planned on one day that happen after its UTC midnight (an
    /// evening in San Francisco), written with the next day.
    carry: Vec<Planned>,
    /// The start of every event id. Seed and start date are part of it: a
    /// demo of other days is other events, never a replay of these.
    id_prefix: String,
}

impl DemoReader {
    /// A reader over the demo `config` describes.
    pub fn new(config: DemoConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut taken = std::collections::HashSet::new();
        let users = (0..config.users.max(1))
            .map(|i| {
                let first = FIRST[rng.random_range(0..FIRST.len())];
                let last = LAST[rng.random_range(0..LAST.len())];
                let office = rng.random_range(0..OFFICES.len());
                let factor = match rng.random_range(0..10) {
                    0..=6 => Factor::Push,
                    7..=8 => Factor::Totp,
                    _ => Factor::Webauthn,
                };
                let app_count = rng.random_range(3..7);
                let mut apps: Vec<usize> = (0..APPS.len()).collect();
                for j in 0..app_count {
                    let k = rng.random_range(j..apps.len());
                    apps.swap(j, k);
                }
                apps.truncate(app_count);
                // Two employees never share a login: a name already taken
                // gets the employee's number.
                let mut login = format!("{first}.{last}@{DOMAIN}");
                if !taken.insert(login.clone()) {
                    login = format!("{first}.{last}{i}@{DOMAIN}");
                    taken.insert(login.clone());
                }
                User {
                    login,
                    uid: format!("00u{:017x}", rng.random::<u64>() >> 4),
                    office,
                    factor,
                    remote_ip: format!(
                        "{}.{}.{}.{}",
                        [73, 86, 91, 49, 24][office],
                        rng.random_range(1..255),
                        rng.random_range(1..255),
                        rng.random_range(1..255)
                    ),
                    agent: rng.random_range(0..USER_AGENTS.len()),
                    apps,
                    weekend_worker: rng.random_bool(0.15),
                    typo_rate: rng.random_range(0.01..0.06),
                }
            })
            .collect::<Vec<_>>();
        // Spread the attacks over the window, a few of each kind.
        let kinds = [
            "brute_force",
            "password_spraying",
            "credential_stuffing",
            "mfa_fatigue",
            "impossible_travel",
            "domain_not_allowed",
        ];
        let rounds = (config.days / 10).max(1);
        let mut attack_days = Vec::new();
        for _ in 0..rounds {
            for kind in kinds {
                attack_days.push((rng.random_range(0..config.days.max(1)), kind));
            }
        }
        DemoReader {
            id_prefix: format!("demo-{:x}-{}", config.seed, config.start.format("%Y%m%d")),
            config,
            rng,
            users,
            day: 0,
            buffer: Vec::new(),
            position: 0,
            sequence: 0,
            attacks: Vec::new(),
            attack_days,
            events: 0,
            carry: Vec::new(),
        }
    }

    /// Every employee's login (e-mail address).
    pub fn logins(&self) -> Vec<String> {
        self.users.iter().map(|u| u.login.clone()).collect()
    }

    /// The attacks injected so far (all of them once the reader is drained).
    pub fn attacks(&self) -> &[Attack] {
        &self.attacks
    }

    /// Events written so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    fn generate_day(&mut self) {
        let date = self.config.start + Duration::days(i64::from(self.day));
        let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
        let midnight = Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default());
        let mut planned = std::mem::take(&mut self.carry);
        for index in 0..self.users.len() {
            let works = if weekend {
                self.users[index].weekend_worker && self.rng.random_bool(0.3)
            } else {
                self.rng.random_bool(0.93)
            };
            if works {
                self.user_day(index, midnight, &mut planned);
            }
        }
        let todays: Vec<&'static str> = self
            .attack_days
            .iter()
            .filter(|(d, _)| *d == self.day)
            .map(|(_, k)| *k)
            .collect();
        for kind in todays {
            self.attack(kind, midnight, &mut planned);
        }
        planned.sort_by_key(|p| p.time);
        let last_day = self.day + 1 >= self.config.days;
        let split = if last_day {
            planned.len()
        } else {
            planned.partition_point(|p| p.time < midnight + Duration::days(1))
        };
        self.carry = planned.split_off(split);
        self.buffer.clear();
        self.position = 0;
        for event in &planned {
            self.write(event);
        }
    }

    fn user_day(&mut self, index: usize, midnight: DateTime<Utc>, planned: &mut Vec<Planned>) {
        let rng = &mut self.rng;
        let user = &self.users[index];
        let office = &OFFICES[user.office];
        let remote = rng.random_bool(0.3);
        let ip = if remote {
            user.remote_ip.clone()
        } else {
            format!("{}.{}", office.nat_prefix, rng.random_range(2..250))
        };
        // Start between 07:30 and 10:00 local time.
        let local_start = rng.random_range(450..600) - office.utc_offset_minutes;
        let mut at =
            midnight + Duration::minutes(local_start) + Duration::seconds(rng.random_range(0..60));
        let base = |time, kind, success, detail, app| Planned {
            time,
            user: user.login.clone(),
            uid: Some(user.uid.clone()),
            ip: ip.clone(),
            city: office.city,
            country: office.country,
            lat: office.lat,
            lon: office.lon,
            kind,
            success,
            detail,
            app,
            agent: user.agent,
            attack: None,
        };
        if rng.random_bool(user.typo_rate) {
            planned.push(base(
                at,
                Kind::Login { saml: false },
                false,
                Some("INVALID_CREDENTIALS"),
                None,
            ));
            at += Duration::seconds(rng.random_range(4..30));
        }
        planned.push(base(at, Kind::Login { saml: false }, true, None, None));
        at += Duration::seconds(rng.random_range(3..20));
        if user.factor == Factor::Push {
            planned.push(base(at, Kind::PushSent, true, None, None));
            at += Duration::seconds(rng.random_range(2..15));
        }
        if rng.random_bool(0.02) {
            let detail = if user.factor == Factor::Push {
                "MFA push denied by user"
            } else {
                "Invalid MFA passcode"
            };
            planned.push(base(at, Kind::Mfa(user.factor), false, Some(detail), None));
            at += Duration::seconds(rng.random_range(5..40));
        }
        planned.push(base(at, Kind::Mfa(user.factor), true, None, None));
        let sessions = rng.random_range(2..9);
        for _ in 0..sessions {
            at += Duration::seconds(rng.random_range(60..5400));
            let app = user.apps[rng.random_range(0..user.apps.len())];
            let saml = APPS[app].1.is_multiple_of(2);
            planned.push(base(at, Kind::Sso { saml }, true, None, Some(APPS[app].0)));
        }
        if rng.random_bool(0.4) {
            at += Duration::seconds(rng.random_range(600..7200));
            planned.push(base(at, Kind::Logout, true, None, None));
        }
    }

    fn attack(&mut self, kind: &'static str, midnight: DateTime<Utc>, planned: &mut Vec<Planned>) {
        let rng = &mut self.rng;
        // Early enough that the longest attack ends the same day.
        let start = midnight + Duration::seconds(rng.random_range(0..56_000));
        let (city, country, lat, lon, prefix) = ELSEWHERE[rng.random_range(0..ELSEWHERE.len())];
        let attacker_ip = format!("{prefix}.{}", rng.random_range(2..250));
        let victim = rng.random_range(0..self.users.len());
        let victim_login = self.users[victim].login.clone();
        let foreign = |time, user: String, ip: String, kind, success, detail| Planned {
            time,
            user,
            uid: None,
            ip,
            city,
            country,
            lat,
            lon,
            kind,
            success,
            detail,
            app: None,
            agent: 3,
            attack: Some(self.attacks.len()),
        };
        let before = planned.len();
        let mut end = start;
        let description;
        let mut user = None;
        let mut ip = Some(attacker_ip.clone());
        match kind {
            "brute_force" => {
                let tries = rng.random_range(40..80);
                for i in 0..tries {
                    end = start + Duration::seconds(i * rng.random_range(3..12));
                    planned.push(foreign(
                        end,
                        victim_login.clone(),
                        attacker_ip.clone(),
                        Kind::Login { saml: false },
                        false,
                        Some("INVALID_CREDENTIALS"),
                    ));
                }
                user = Some(victim_login.clone());
                description = format!(
                    "{tries} failed password attempts on one account from one address within minutes"
                );
            }
            "password_spraying" => {
                let targets = self.users.len().min(rng.random_range(150..300));
                for (i, target) in self.users.iter().take(targets).enumerate() {
                    end = start + Duration::seconds(i as i64 * 8);
                    planned.push(foreign(
                        end,
                        target.login.clone(),
                        attacker_ip.clone(),
                        Kind::Login { saml: false },
                        false,
                        Some("INVALID_CREDENTIALS"),
                    ));
                }
                description =
                    format!("one password tried against {targets} accounts from one address");
            }
            "credential_stuffing" => {
                let attempts = rng.random_range(1500..3000);
                for i in 0..attempts {
                    let (_, _, _, _, p) = ELSEWHERE[rng.random_range(0..ELSEWHERE.len())];
                    let bot = format!("{p}.{}", rng.random_range(2..250));
                    end = start + Duration::milliseconds(i * rng.random_range(200..1500));
                    let roll = rng.random_range(0..100);
                    let (login, success, detail) = if roll < 65 {
                        (
                            format!(
                                "{}{}@{}",
                                FIRST[rng.random_range(0..FIRST.len())],
                                rng.random_range(1..9999),
                                ["gmail.com", "yahoo.com", DOMAIN][rng.random_range(0..3)]
                            ),
                            false,
                            Some("User not found"),
                        )
                    } else if roll < 99 {
                        (
                            self.users[rng.random_range(0..self.users.len())]
                                .login
                                .clone(),
                            false,
                            Some("INVALID_CREDENTIALS"),
                        )
                    } else {
                        (
                            self.users[rng.random_range(0..self.users.len())]
                                .login
                                .clone(),
                            true,
                            None,
                        )
                    };
                    planned.push(foreign(
                        end,
                        login,
                        bot,
                        Kind::Login { saml: false },
                        success,
                        detail,
                    ));
                }
                ip = None;
                description = format!(
                    "{attempts} logins with leaked credentials from a botnet, mostly unknown users, a few successes"
                );
            }
            "mfa_fatigue" => {
                let pushes = rng.random_range(12..30);
                let mut at = start;
                planned.push(foreign(
                    at,
                    victim_login.clone(),
                    attacker_ip.clone(),
                    Kind::Login { saml: false },
                    true,
                    None,
                ));
                // Every push is denied but the last, which the worn-down user accepts.
                for push in 0..=pushes {
                    at += Duration::seconds(rng.random_range(20..90));
                    planned.push(foreign(
                        at,
                        victim_login.clone(),
                        attacker_ip.clone(),
                        Kind::PushSent,
                        true,
                        None,
                    ));
                    at += Duration::seconds(rng.random_range(5..30));
                    let accepted = push == pushes;
                    planned.push(foreign(
                        at,
                        victim_login.clone(),
                        attacker_ip.clone(),
                        Kind::Mfa(Factor::Push),
                        accepted,
                        (!accepted).then_some("MFA push denied by user"),
                    ));
                }
                end = at;
                user = Some(victim_login.clone());
                description = format!("{pushes} push notifications denied, then one accepted");
            }
            "impossible_travel" => {
                let home = &OFFICES[self.users[victim].office];
                let home_ip = format!("{}.{}", home.nat_prefix, rng.random_range(2..250));
                let mut first = foreign(
                    start,
                    victim_login.clone(),
                    home_ip,
                    Kind::Login { saml: false },
                    true,
                    None,
                );
                (first.city, first.country, first.lat, first.lon, first.uid) = (
                    home.city,
                    home.country,
                    home.lat,
                    home.lon,
                    Some(self.users[victim].uid.clone()),
                );
                planned.push(first);
                end = start + Duration::minutes(rng.random_range(20..90));
                let mut second = foreign(
                    end,
                    victim_login.clone(),
                    attacker_ip.clone(),
                    Kind::Login { saml: false },
                    true,
                    None,
                );
                second.uid = Some(self.users[victim].uid.clone());
                planned.push(second);
                user = Some(victim_login.clone());
                description = format!(
                    "successful logins from {} and {city} {} minutes apart",
                    home.city,
                    (end - start).num_minutes()
                );
            }
            _ => {
                let attempts = rng.random_range(10..40);
                for i in 0..attempts {
                    end = start + Duration::seconds(i * rng.random_range(30..600));
                    let outsider = format!(
                        "{}.{}@{}",
                        FIRST[rng.random_range(0..FIRST.len())],
                        LAST[rng.random_range(0..LAST.len())],
                        ["gmail.com", "contractor.example", "outlook.com"][rng.random_range(0..3)]
                    );
                    let mut p = foreign(
                        end,
                        outsider,
                        format!("{prefix}.{}", rng.random_range(2..250)),
                        Kind::Login { saml: true },
                        false,
                        Some("Domain not whitelisted"),
                    );
                    p.app = Some("Salesforce");
                    planned.push(p);
                }
                ip = None;
                description =
                    format!("{attempts} SAML logins from e-mail domains that are not allowed");
            }
        }
        let made = &planned[before..];
        let failed_logins = made
            .iter()
            .filter(|p| matches!(p.kind, Kind::Login { .. }) && !p.success)
            .count() as u64;
        self.attacks.push(Attack {
            kind,
            start,
            end,
            user,
            src_ip: ip,
            events: made.len() as u64,
            failed_logins,
            selector: format!(
                "source = 'ocsf' AND event_id LIKE '{}-%'",
                self.attack_id_prefix(self.attacks.len())
            ),
            description,
        });
    }

    /// The start of the event ids of attack number `attack`.
    fn attack_id_prefix(&self, attack: usize) -> String {
        format!("{}-attack{attack}", self.id_prefix)
    }

    fn write(&mut self, p: &Planned) {
        self.sequence += 1;
        self.events += 1;
        let (activity_id, code, protocol, protocol_id, is_mfa, factor) = match p.kind {
            Kind::Login { saml } => (
                1,
                "user.session.start",
                Some(if saml { "SAML" } else { "Password" }),
                Some(if saml { 5 } else { 99 }),
                false,
                None,
            ),
            Kind::PushSent => (
                1,
                "system.push.send_factor_verify_push",
                None,
                None,
                true,
                Some("Push Notification"),
            ),
            Kind::Mfa(f) => (
                1,
                "user.authentication.auth_via_mfa",
                None,
                None,
                true,
                Some(match f {
                    Factor::Push => "Push Notification",
                    Factor::Totp => "TOTP",
                    Factor::Webauthn => "WebAuthn",
                }),
            ),
            Kind::Sso { saml: true } => (
                1,
                "user.authentication.sso",
                Some("SAML"),
                Some(5),
                false,
                None,
            ),
            Kind::Sso { saml: false } => (
                1,
                "user.authentication.sso",
                Some("OpenID Connect"),
                Some(4),
                false,
                None,
            ),
            Kind::Logout => (2, "user.session.end", None, None, false, None),
        };
        let record = Ocsf {
            class_uid: 3002,
            category_uid: 3,
            activity_id,
            type_uid: 300200 + activity_id,
            time: p.time.timestamp_millis(),
            severity_id: if p.success { 1 } else { 3 },
            status_id: if p.success { 1 } else { 2 },
            status_detail: p.detail,
            metadata: Metadata {
                uid: match p.attack {
                    Some(attack) => {
                        format!("{}-{:09}", self.attack_id_prefix(attack), self.sequence)
                    }
                    None => format!("{}-{:09}", self.id_prefix, self.sequence),
                },
                version: "1.1.0",
                product: Named { name: "Okta" },
                event_code: code,
            },
            user: OcsfUser {
                name: &p.user,
                uid: p.uid.as_deref(),
            },
            src_endpoint: Endpoint {
                ip: &p.ip,
                location: Location {
                    city: p.city,
                    country: p.country,
                    coordinates: [p.lon, p.lat],
                },
            },
            auth_protocol: protocol,
            auth_protocol_id: protocol_id,
            is_mfa,
            auth_factors: factor
                .map(|f| vec![FactorType { factor_type: f }])
                .unwrap_or_default(),
            service: p.app.map(|name| Named { name }),
            http_request: UserAgent {
                user_agent: USER_AGENTS[p.agent],
            },
        };
        // Serialising plain structs of strings and numbers cannot fail.
        if serde_json::to_writer(&mut self.buffer, &record).is_ok() {
            self.buffer.push(b'\n');
        }
    }
}

impl Read for DemoReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.position >= self.buffer.len() {
            if self.day >= self.config.days {
                return Ok(0);
            }
            self.generate_day();
            self.day += 1;
        }
        let available = &self.buffer[self.position..];
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.position += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(config: DemoConfig) -> (Vec<u8>, Vec<Attack>) {
        let mut reader = DemoReader::new(config);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        (out, reader.attacks().to_vec())
    }

    #[test]
    fn same_seed_same_bytes() {
        let start = NaiveDate::from_ymd_opt(2026, 1, 5);
        let (a, attacks_a) = drain(DemoConfig::new(40, 3, 7, start));
        let (b, attacks_b) = drain(DemoConfig::new(40, 3, 7, start));
        assert_eq!(a, b);
        assert_eq!(attacks_a, attacks_b);
        let (c, _) = drain(DemoConfig::new(40, 3, 8, start));
        assert_ne!(a, c);
    }

    #[test]
    fn output_is_sorted_ocsf_with_every_attack_kind() {
        let start = NaiveDate::from_ymd_opt(2026, 1, 5);
        let (bytes, attacks) = drain(DemoConfig::new(300, 10, 1, start));
        let mut last = 0;
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            assert_eq!(v["class_uid"], 3002);
            let t = v["time"].as_i64().unwrap();
            assert!(t >= last, "not sorted by time");
            last = t;
        }
        let mut kinds: Vec<_> = attacks.iter().map(|a| a.kind).collect();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), 6, "{kinds:?}");
        assert!(attacks.iter().all(|a| a.events > 0 && a.end >= a.start));
    }
}
