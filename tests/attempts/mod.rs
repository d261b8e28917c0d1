//! One attempt, one event: reference logs under `tests/data/attempts/`,
//! written in the order the real systems write them, stored through the
//! binary and counted with SQL against numbers worked out by hand; and the
//! demo's ground truth, attack by attack.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::util::Workspace;

fn reference(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/attempts")
        .join(name)
}

fn ingest(ws: &Workspace, source: &str, name: &str) -> String {
    let path = reference(name);
    ws.run(&[
        "ingest",
        "file",
        "--strict",
        "--syslog-year",
        "2026",
        "--source",
        source,
        path.to_str().unwrap(),
    ])
    .ok()
    .stdout
}

/// `column,count` rows of a `GROUP BY column` query, as a map.
fn counts(ws: &Workspace, sql: &str) -> BTreeMap<String, u64> {
    ws.query_csv(sql)
        .into_iter()
        .map(|row| {
            let (key, n) = row.rsplit_once(',').unwrap();
            (key.to_owned(), n.parse().unwrap())
        })
        .collect()
}

fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
}

#[test]
fn sshd_counts_one_failure_per_password_tried() {
    let ws = Workspace::new();
    let summary = ingest(&ws, "sshd", "sshd-auth.log");
    // 33 lines: 24 make events, 5 more copies come from two `message
    // repeated` lines, 9 are housekeeping (skipped, and said so).
    assert!(
        summary.contains(&format!("stored        {:>12}", 29)),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("skipped       {:>12}", 9)),
        "{summary}"
    );

    // By hand: seven `Failed` lines, plus 5 and 2 folded repeats.
    let text = std::fs::read_to_string(reference("sshd-auth.log")).unwrap();
    let failed_lines = text.lines().filter(|l| l.contains("]: Failed ")).count() as u64;
    let repeats: u64 = text
        .lines()
        .filter_map(|l| l.split_once("message repeated ")?.1.split_once(' '))
        .map(|(n, _)| n.parse::<u64>().unwrap())
        .sum();
    assert_eq!((failed_lines, repeats), (7, 7));
    let failures = "FROM events WHERE source = 'sshd' AND action = 'login' AND outcome = 'failure'";
    assert_eq!(ws.query_number(&format!("SELECT count(*) {failures}")), 14);
    assert_eq!(
        counts(
            &ws,
            &format!("SELECT src_ip, count(*) {failures} GROUP BY src_ip ORDER BY src_ip")
        ),
        map(&[
            ("192.0.2.10", 1),
            ("198.51.100.23", 1),
            ("198.51.100.77", 1),
            ("203.0.113.7", 11),
        ])
    );
    assert_eq!(
        counts(
            &ws,
            &format!("SELECT user, count(*) {failures} GROUP BY user ORDER BY user")
        ),
        map(&[
            ("admin", 1),
            ("alice", 1),
            ("carol", 1),
            ("oracle", 2),
            ("root", 9)
        ])
    );
    // The companions are kept, each under its own action.
    assert_eq!(
        counts(
            &ws,
            "SELECT action || '/' || outcome, count(*) FROM events GROUP BY 1 ORDER BY 1"
        ),
        map(&[
            ("attempt_summary/failure", 5),
            ("credential_validation/failure", 3),
            ("login/failure", 14),
            ("login/success", 2),
            ("logout/success", 1),
            ("probe/failure", 4),
        ])
    );
    // Each folded copy is an event of its own, and a replay adds none.
    assert_eq!(
        ws.query_number("SELECT count(DISTINCT event_id) FROM events"),
        29
    );
    let again = ingest(&ws, "sshd", "sshd-auth.log");
    assert!(
        again.contains(&format!("stored        {:>12}", 0)),
        "{again}"
    );
    assert_eq!(ws.query_number("SELECT count(*) FROM events"), 29);
}

#[test]
fn windows_counts_the_workstation_attempt_not_the_domain_controller_check() {
    let ws = Workspace::new();
    ingest(&ws, "windows", "windows-domain-logons.ndjson");
    // bob.lee: three wrong passwords at WS-0042 (each 4625 beside a 4776 on
    // DC01), locked, unlocked, one success; carol.ito: one Kerberos failure
    // (4625 beside a 4771).
    let failures = "FROM events WHERE action = 'login' AND outcome = 'failure'";
    assert_eq!(
        counts(
            &ws,
            &format!("SELECT user, count(*) {failures} GROUP BY user ORDER BY user")
        ),
        map(&[("bob.lee", 3), ("carol.ito", 1)])
    );
    assert_eq!(
        counts(
            &ws,
            "SELECT dst_host || '/' || action || '/' || outcome, count(*) FROM events GROUP BY 1 ORDER BY 1"
        ),
        map(&[
            ("DC01.corp.acme.example/credential_validation/failure", 4),
            ("DC01.corp.acme.example/credential_validation/success", 1),
            ("DC01.corp.acme.example/lockout/success", 1),
            ("DC01.corp.acme.example/unlock/success", 1),
            ("WS-0042.corp.acme.example/login/failure", 3),
            ("WS-0042.corp.acme.example/login/success", 1),
            ("WS-0050.corp.acme.example/login/failure", 1),
        ])
    );
}

#[test]
fn okta_counts_session_starts_not_the_lock_or_the_agent_check() {
    let ws = Workspace::new();
    ingest(&ws, "okta", "okta-lockout.ndjson");
    // dave.kim: three wrong passwords, the lock, one more try while locked,
    // an admin's unlock, then a sign-in checked by the AD agent, a push and
    // an app opened from the session.
    assert_eq!(
        counts(
            &ws,
            "SELECT action || '/' || outcome || '/' || coalesce(reason, '-'), count(*) FROM events \
             WHERE user = 'dave.kim@acme.example' GROUP BY 1 ORDER BY 1"
        ),
        map(&[
            ("credential_validation/success/-", 1),
            ("lockout/success/account_locked", 1),
            ("login/failure/account_locked", 1),
            ("login/failure/invalid_credentials", 3),
            ("login/success/-", 1),
            ("mfa_verify/success/-", 1),
            ("session_start/success/-", 1),
            ("unlock/success/-", 1),
        ])
    );
}

#[test]
fn the_demo_stores_as_many_failures_per_attack_as_the_generator_made() {
    let ws = Workspace::new();
    let truth = ws.path("truth.json");
    ws.run(&[
        "demo",
        "--users",
        "120",
        "--days",
        "20",
        "--seed",
        "5",
        "--start",
        "2026-05-04",
        "--truth",
        truth.to_str().unwrap(),
    ])
    .ok();
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&truth).unwrap()).unwrap();
    assert_eq!(
        ws.query_number("SELECT count(*) FROM events"),
        truth["events"].as_u64().unwrap()
    );
    let attacks = truth["attacks"].as_array().unwrap();
    let mut kinds: Vec<&str> = attacks
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds.len(), 8, "{kinds:?}");
    for attack in attacks {
        let selector = attack["selector"].as_str().unwrap();
        let (events, failures) = (
            ws.query_number(&format!("SELECT count(*) FROM events WHERE {selector}")),
            ws.query_number(&format!(
                "SELECT count(*) FROM events WHERE action = 'login' AND outcome = 'failure' AND ({selector})"
            )),
        );
        assert_eq!(
            (events, failures),
            (
                attack["events"].as_u64().unwrap(),
                attack["failed_logins"].as_u64().unwrap()
            ),
            "{attack}"
        );
    }
    // The SSH attacks are counted from `Failed` lines, folded repeats
    // included: the brute force's failures are a multiple of no record type.
    let brute = attacks
        .iter()
        .find(|a| a["kind"] == "ssh_brute_force")
        .unwrap();
    assert!(brute["failed_logins"].as_u64().unwrap() >= 16, "{brute}");
    assert!(
        brute["events"].as_u64().unwrap() > brute["failed_logins"].as_u64().unwrap(),
        "{brute}"
    );
}
