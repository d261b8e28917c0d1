//! The rules from the command line: the demo's attacks found by the right
//! rule, reruns that add nothing, findings in the verified hash chain, and
//! rule files with mistakes refused with their file and line.

use crate::util::Workspace;

/// The attack kinds of the demo and the built-in rule that must find each,
/// with the group it must be about.
fn expected_rule(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "brute_force" => ("brute_force_user", "user"),
        "ssh_brute_force" => ("brute_force_source", "source"),
        "password_spraying" | "ssh_password_spraying" => ("password_spraying_slow", "source"),
        "credential_stuffing" => ("credential_stuffing", ""),
        "mfa_fatigue" => ("mfa_push_fatigue", "user"),
        "impossible_travel" => ("impossible_travel", "user"),
        "domain_not_allowed" => ("domain_not_allowed", ""),
        _ => return None,
    })
}

#[test]
fn the_demo_finds_every_attack_and_a_rerun_adds_nothing() {
    let ws = Workspace::new();
    let truth_path = ws.path("truth.json");
    let truth = truth_path.clone();
    let demo = ws
        .run(&[
            "demo",
            "--users",
            "150",
            "--days",
            "20",
            "--seed",
            "3",
            "--start",
            "2026-05-04",
            "--truth",
            truth.to_str().unwrap(),
        ])
        .ok();
    assert!(
        demo.stdout.contains("the built-in rules raised"),
        "{}",
        demo.stdout
    );
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&truth).unwrap()).unwrap();
    for attack in truth["attacks"].as_array().unwrap() {
        let kind = attack["kind"].as_str().unwrap();
        let Some((rule, about)) = expected_rule(kind) else {
            panic!("no rule expected for {kind}");
        };
        let group = match about {
            "user" => format!(
                "AND group_key = 'user={}'",
                attack["user"].as_str().unwrap()
            ),
            "source" => format!(
                "AND group_key = 'source={}'",
                attack["src_ip"].as_str().unwrap()
            ),
            _ => String::new(),
        };
        // The finding's evidence is the attack's own events.
        let selector = attack["selector"].as_str().unwrap();
        let found = ws.query_number(&format!(
            "SELECT count(*) FROM findings WHERE rule_id = '{rule}' {group} AND array_has_any(evidence_ids, \
             (SELECT array_agg(event_id) FROM events WHERE {selector}))"
        ));
        assert!(
            found >= 1,
            "{kind} at {} not found by {rule}",
            attack["start"]
        );
    }
    // The report agrees: nothing missed, no finding on benign traffic.
    let report = ws
        .run(&["rules", "report", "--truth", truth_path.to_str().unwrap()])
        .ok();
    assert!(
        report.stdout.contains("0 on no injected attack"),
        "{}",
        report.stdout
    );
    // The CLI lists a user's findings as CSV; a part of a name is no match.
    let brute = truth["attacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "brute_force")
        .unwrap();
    let user = brute["user"].as_str().unwrap();
    let listed = ws
        .run(&["findings", "--format", "csv", "--about", user])
        .ok();
    assert!(
        listed.stdout.contains("brute_force_user"),
        "{}",
        listed.stdout
    );
    let partial = ws
        .run(&[
            "findings",
            "--format",
            "csv",
            "--about",
            &user[..user.len() - 2],
        ])
        .ok();
    assert_eq!(partial.stdout.lines().count(), 1, "{}", partial.stdout);
    let versions = ws.query_number("SELECT count(*) FROM finding_versions");
    assert!(versions > 0);
    assert_eq!(
        ws.query_number("SELECT count(DISTINCT finding_id) FROM findings"),
        ws.query_number("SELECT count(*) FROM findings")
    );
    // A rerun, and a rerun of one day, store nothing new.
    let rerun = ws.run(&["rules", "run"]).ok();
    assert!(
        rerun.stdout.contains("stored 0 new finding versions"),
        "{}",
        rerun.stdout
    );
    ws.run(&["rules", "run", "--from", "2026-05-10", "--to", "2026-05-11"])
        .ok();
    assert_eq!(
        ws.query_number("SELECT count(*) FROM finding_versions"),
        versions
    );
    // Findings are in the hash chain: changing one is caught.
    ws.run(&["verify"]).ok();
    let findings_dir = ws.data().join("findings");
    let file = crate::util::sealed_files(&findings_dir).pop().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let verify = ws.run(&["verify"]);
    assert_eq!(verify.code, 1, "{}", verify.stdout);
    assert!(
        verify
            .stdout
            .contains(file.file_name().unwrap().to_str().unwrap()),
        "{}",
        verify.stdout
    );
}

#[test]
fn rule_files_with_mistakes_are_refused_with_file_and_line() {
    let ws = Workspace::new();
    let dir = ws.path("my-rules");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("typo.toml"),
        "id = \"typo\"\ntitle = \"t\"\nseverity = \"high\"\ngroup_by = [\"user\"]\nwindow = \"10m\"\n[threshold]\ncuont = 5\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("column.toml"),
        "id = \"column\"\ntitle = \"t\"\nseverity = \"low\"\n\nfilter = \"outcome = 'failure' AND colour = 'red'\"\ngroup_by = [\"user\"]\nwindow = \"10m\"\n[threshold]\ncount = 5\n",
    )
    .unwrap();
    let run = ws.run(&["rules", "check", dir.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("typo.toml:7:"), "{}", run.stderr);
    assert!(run.stderr.contains("cuont"), "{}", run.stderr);
    // With the typo fixed, the unknown column is found when planned.
    std::fs::remove_file(dir.join("typo.toml")).unwrap();
    let run = ws.run(&["rules", "check", dir.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("column.toml:5:"), "{}", run.stderr);
    assert!(run.stderr.contains("colour"), "{}", run.stderr);
    let run = ws.run(&["rules", "check"]).ok();
    assert!(run.stdout.contains("rules are valid"), "{}", run.stdout);
}

#[test]
fn findings_are_served_filtered_paged_and_with_their_evidence() {
    use serde_json::Value;
    let ws = Workspace::new();
    ws.run(&[
        "demo",
        "--users",
        "60",
        "--days",
        "10",
        "--seed",
        "8",
        "--start",
        "2026-04-06",
    ])
    .ok();
    let total = ws.query_number("SELECT count(*) FROM findings");
    let high =
        ws.query_number("SELECT count(*) FROM findings WHERE severity IN ('high', 'critical')");
    let spraying =
        ws.query_number("SELECT count(*) FROM findings WHERE array_has(tags, 'T1110.003')");
    assert!(
        total > high && high > 0 && spraying > 0,
        "{total} {high} {spraying}"
    );
    let server = crate::util::Server::start(&ws, "");
    let token = ws
        .run(&["token", "--subject", "analyst", "--role", "read"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    let client = reqwest::blocking::Client::new();
    let get = |path: &str| {
        let response = client
            .get(server.url(path))
            .bearer_auth(&token)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let cursor = response
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, cursor, response.text().unwrap())
    };
    let rows = |body: &str| {
        serde_json::from_str::<Value>(body)
            .unwrap()
            .as_array()
            .unwrap()
            .len() as u64
    };
    assert_eq!(rows(&get("/v1/findings").2), total);
    assert_eq!(rows(&get("/v1/findings?severity=high").2), high);
    assert_eq!(rows(&get("/v1/findings?tag=T1110.003").2), spraying);
    // Pages of 3 add up to everything, each finding once.
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/findings?limit=3&cursor={c}"),
            None => "/v1/findings?limit=3".to_owned(),
        };
        let (status, next, body) = get(&path);
        assert_eq!(status, 200, "{body}");
        for row in serde_json::from_str::<Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
        {
            assert!(seen.insert(row["finding_id"].as_str().unwrap().to_owned()));
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len() as u64, total);
    // CSV, with the lists joined.
    let (status, _, csv) = get("/v1/findings?format=csv&rule=mfa_push_fatigue");
    assert_eq!(status, 200, "{csv}");
    assert!(csv.starts_with("finding_id,version_id,rule_id"), "{csv}");
    // One finding, with its evidence events.
    let id = seen.iter().next().unwrap();
    let (status, _, body) = get(&format!("/v1/findings/{id}"));
    assert_eq!(status, 200, "{body}");
    let one: Value = serde_json::from_str(&body).unwrap();
    let ids = one["finding"]["evidence_ids"].as_array().unwrap();
    let evidence = one["evidence"].as_array().unwrap();
    assert_eq!(evidence.len(), ids.len());
    assert!(evidence.iter().all(|e| ids.contains(&e["event_id"])));
    let (status, _, body) = get("/v1/findings/nonexistent");
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = get("/v1/findings?severity=urgent");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_severity"), "{body}");
}

#[test]
fn a_rule_that_fails_at_run_time_is_reported_and_the_others_go_on() {
    let ws = Workspace::new();
    ws.run(&[
        "demo",
        "--users",
        "40",
        "--days",
        "6",
        "--seed",
        "2",
        "--start",
        "2026-04-06",
    ])
    .ok();
    let before = ws.query_number("SELECT count(*) FROM finding_versions");
    let dir = ws.path("my-rules");
    std::fs::create_dir(&dir).unwrap();
    // Valid SQL, so `check` passes, but not the columns a finding needs.
    std::fs::write(
        dir.join("shapeless.toml"),
        "id = \"shapeless\"\ntitle = \"t\"\nseverity = \"low\"\n[sql]\nquery = \"SELECT user FROM events LIMIT 1\"\n",
    )
    .unwrap();
    // A copy of a built-in rule with a lower threshold replaces it.
    std::fs::write(
        dir.join("brute_force_user.toml"),
        "id = \"brute_force_user\"\ntitle = \"Two failures\"\nseverity = \"low\"\nfilter = \"action = 'login' AND outcome = 'failure'\"\ngroup_by = [\"user\"]\nwindow = \"1h\"\n[threshold]\ncount = 2\n",
    )
    .unwrap();
    ws.run(&["rules", "check", dir.to_str().unwrap()]).ok();
    let run = ws.run(&["rules", "run", "--rules", dir.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("rule shapeless failed") && run.stdout.contains("group_key"),
        "{}",
        run.stdout
    );
    let tuned = ws.query_number(
        "SELECT count(*) FROM findings WHERE rule_id = 'brute_force_user' AND title = 'Two failures'",
    );
    assert!(tuned > 0, "{}", run.stdout);
    assert!(ws.query_number("SELECT count(*) FROM finding_versions") > before);
}

#[test]
fn bench_rules_runs_the_pack_beside_duckdb_on_a_small_demo() {
    let ws = Workspace::new();
    let dir = ws.path("bench");
    let run = ws
        .run(&[
            "bench",
            "rules",
            "--dir",
            dir.to_str().unwrap(),
            "--users",
            "40",
            "--days",
            "4",
            "--runs",
            "1",
        ])
        .ok();
    assert!(
        run.stdout.contains("| authtrail rules run (15 rules) |"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("| DuckDB "), "{}", run.stdout);
    assert!(
        run.stdout.contains("authtrail / DuckDB time: "),
        "{}",
        run.stdout
    );
    // Every rule ran, none failed, and a second run reuses the stored demo.
    assert!(!run.stdout.contains("FAILED"), "{}", run.stdout);
    let again = ws
        .run(&[
            "bench",
            "rules",
            "--dir",
            dir.to_str().unwrap(),
            "--runs",
            "1",
            "--no-duckdb",
        ])
        .ok();
    assert!(
        again.stderr.contains("reusing the demo log"),
        "{}",
        again.stderr
    );
}
