//! End-to-end tests of `authtrail serve` through a real socket: webhook
//! ingest (NDJSON, gzip, bad lines, signatures), the read API, read-only
//! SQL with limits, the JWT matrix, and durability across stop and crash.

use std::io::Write;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::util::{Server, Workspace, sealed_files};

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A token from `authtrail token` for the workspace's local key.
fn local_token(workspace: &Workspace, roles: &[&str]) -> String {
    let mut args = vec!["token", "--subject", "tester"];
    for role in roles {
        args.push("--role");
        args.push(role);
    }
    workspace.run(&args).ok().stdout.trim().to_owned()
}

/// `n` OCSF authentication events with ids `<prefix>-<i>`, every third a
/// failure, all on 2026-03-09.
fn ocsf_lines(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            json!({
                "class_uid": 3002,
                "activity_id": 1,
                "time": 1_773_057_600_000i64 + i as i64 * 1000,
                "status_id": if i % 3 == 0 { 2 } else { 1 },
                "status_detail": if i % 3 == 0 { "Invalid credentials" } else { "" },
                "metadata": {"uid": format!("{prefix}-{i}"), "product": {"name": "idp"}},
                "user": {"email_addr": format!("user{}@example.com", i % 50)},
                "src_endpoint": {"ip": format!("10.0.{}.{}", i % 7, i % 200)},
                "auth_protocol_id": 1,
                "service": {"name": "vpn"},
            })
            .to_string()
        })
        .collect()
}

fn ndjson(lines: &[String]) -> String {
    lines.join("\n") + "\n"
}

fn post_events(
    server: &Server,
    token: &str,
    source: &str,
    body: Vec<u8>,
) -> reqwest::blocking::Response {
    client()
        .post(server.url(&format!("/v1/ingest/{source}")))
        .bearer_auth(token)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .unwrap()
}

fn sql(server: &Server, token: &str, query: &str) -> reqwest::blocking::Response {
    client()
        .post(server.url("/v1/query"))
        .bearer_auth(token)
        .json(&json!({ "sql": query }))
        .send()
        .unwrap()
}

fn sql_number(server: &Server, token: &str, query: &str) -> i64 {
    let response = sql(server, token, query);
    assert_eq!(response.status(), 200, "{query}");
    let rows: Value = response.json().unwrap();
    let row = rows[0].as_object().unwrap();
    row.values().next().unwrap().as_i64().unwrap()
}

fn error_code(response: reqwest::blocking::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

#[test]
fn ndjson_batch_is_visible_in_events_and_reports_right_after_its_2xx() {
    let workspace = Workspace::new();
    let server = Server::start(&workspace, "");
    let token = local_token(&workspace, &["ingest", "read"]);
    let lines = ocsf_lines("vis", 300);
    let response = post_events(&server, &token, "ocsf", ndjson(&lines).into_bytes());
    assert_eq!(response.status(), 200);
    let answered = Instant::now();
    let receipt: Value = response.json().unwrap();
    assert_eq!(receipt["stored"], 300);
    assert_eq!(receipt["rejected"], json!([]));

    // The very first read after the 2xx sees every event.
    let events: Value = client()
        .get(server.url("/v1/events?from=2026-03-09&to=2026-03-10"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let report: Value = client()
        .get(server.url(
            "/v1/reports/failed-logins?from=2026-03-09T00:00:00Z&to=2026-03-10T00:00:00Z&bucket=hour&by=reason",
        ))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(answered.elapsed() < Duration::from_secs(1) || events.as_array().unwrap().len() == 300);
    assert_eq!(events.as_array().unwrap().len(), 300);
    assert_eq!(report["totals"]["attempts"], 300);
    assert_eq!(report["totals"]["failures"], 100);
    let failures: i64 = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["failures"].as_i64().unwrap())
        .sum();
    assert_eq!(failures, 100);
    assert!(
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["reason"] == "invalid_credentials" && r["failures"].as_i64().unwrap() > 0)
    );

    // Cursor pagination walks every event exactly once.
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = server.url("/v1/events?source=ocsf&limit=128&format=ndjson");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = client().get(url).bearer_auth(&token).send().unwrap();
        assert_eq!(page.status(), 200);
        let next = page
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_owned());
        for line in page.text().unwrap().lines() {
            let event: Value = serde_json::from_str(line).unwrap();
            assert!(seen.insert(event["event_id"].as_str().unwrap().to_owned()));
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 300);

    // CSV by Accept header, and a user's timeline.
    let csv = client()
        .get(server.url("/v1/users/USER7@example.com/timeline"))
        .bearer_auth(&token)
        .header("accept", "text/csv")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(csv.starts_with("event_id,time,ingested_at,"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 6);
}

/// A body over `max_body_bytes` is refused whole with a JSON error that
/// says what to do, and stores nothing; one under it is stored.
#[test]
fn an_oversized_body_is_refused_with_a_clear_error() {
    let workspace = Workspace::new();
    let server = Server::start(&workspace, "[server]\nmax_body_bytes = 4096\n");
    let token = local_token(&workspace, &["ingest", "query"]);

    let big = ndjson(&ocsf_lines("big", 40));
    assert!(big.len() > 4096);
    let response = post_events(&server, &token, "ocsf", big.into_bytes());
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "an error body in the API's own form"
    );
    let body: Value = response.json().unwrap();
    assert_eq!(body["error"]["code"], "body_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("send smaller batches"),
        "{body}"
    );

    let small = ndjson(&ocsf_lines("small", 3));
    assert!(small.len() < 4096);
    let response = post_events(&server, &token, "ocsf", small.into_bytes());
    assert_eq!(response.status(), 200);
    assert_eq!(
        sql_number(
            &server,
            &token,
            "SELECT count(*) AS n FROM events WHERE source = 'ocsf'"
        ),
        3
    );
}

#[test]
fn gzip_bodies_and_bad_lines() {
    let workspace = Workspace::new();
    let server = Server::start(&workspace, "");
    let token = local_token(&workspace, &["ingest", "query"]);

    let mut lines = ocsf_lines("gz", 1000);
    lines[499] = "{this is not json".into();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(ndjson(&lines).as_bytes()).unwrap();
    let body = encoder.finish().unwrap();
    let response = client()
        .post(server.url("/v1/ingest/ocsf"))
        .bearer_auth(&token)
        .header("content-encoding", "gzip")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let receipt: Value = response.json().unwrap();
    assert_eq!(receipt["records"], 1000);
    assert_eq!(receipt["stored"], 999);
    assert_eq!(receipt["rejected"].as_array().unwrap().len(), 1);
    assert_eq!(receipt["rejected"][0]["line"], 500);
    assert!(
        receipt["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    assert_eq!(
        sql_number(
            &server,
            &token,
            "SELECT count(*) AS n FROM events WHERE source = 'ocsf'"
        ),
        999
    );
    assert_eq!(
        sql_number(&server, &token, "SELECT line FROM dead_letters"),
        500
    );

    // The same delivery again: nothing new, everything a duplicate.
    let again = post_events(&server, &token, "ocsf", ndjson(&lines).into_bytes());
    let receipt: Value = again.json().unwrap();
    assert_eq!(receipt["stored"], 0);
    assert_eq!(receipt["duplicates"], 999);

    // A body with nothing usable is refused, and kept as dead letters.
    let garbage = post_events(&server, &token, "ocsf", b"nope\nnope either\n".to_vec());
    assert_eq!(garbage.status(), 422);
    // A gzip body that is not gzip.
    let broken = client()
        .post(server.url("/v1/ingest/ocsf"))
        .bearer_auth(&token)
        .header("content-encoding", "gzip")
        .body("plain text")
        .send()
        .unwrap();
    assert_eq!(error_code(broken), (400, "bad_gzip".into()));
    // Unknown source.
    let unknown = post_events(&server, &token, "nosuch", b"{}".to_vec());
    assert_eq!(error_code(unknown), (404, "unknown_source".into()));
}

#[test]
fn webhook_signatures_and_okta_challenge() {
    let workspace = Workspace::new();
    let server = Server::start(
        &workspace,
        r#"
[webhook.ocsf]
hmac_secret = "whsec-test"
allow_bearer = false

[webhook.okta]
okta_verification = true
authorization = "okta-shared-secret"
"#,
    );
    let body = ndjson(&ocsf_lines("hmac", 5));
    let now = chrono::Utc::now().timestamp();
    let sign =
        |t: i64, body: &str| authtrail_api::auth::webhook::sign(b"whsec-test", t, body.as_bytes());
    let post = |signature: Option<String>, body: &str| {
        let mut request = client()
            .post(server.url("/v1/ingest/ocsf"))
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("x-authtrail-signature", signature);
        }
        request.send().unwrap()
    };
    let ok = post(Some(sign(now, &body)), &body);
    assert_eq!(ok.status(), 200);
    let receipt: Value = ok.json().unwrap();
    assert_eq!(receipt["stored"], 5);
    assert_eq!(
        error_code(post(Some(sign(now, "other body")), &body)),
        (401, "invalid_signature".into())
    );
    assert_eq!(
        error_code(post(Some(sign(now - 3600, &body)), &body)),
        (401, "stale_signature".into())
    );
    assert_eq!(
        error_code(post(None, &body)),
        (401, "missing_signature".into())
    );

    // Okta's one-time verification, with its shared secret.
    let challenge = client()
        .get(server.url("/v1/ingest/okta"))
        .header("x-okta-verification-challenge", "abc123")
        .header("authorization", "okta-shared-secret")
        .send()
        .unwrap();
    assert_eq!(challenge.status(), 200);
    assert_eq!(
        challenge.json::<Value>().unwrap(),
        json!({"verification": "abc123"})
    );
    let wrong = client()
        .get(server.url("/v1/ingest/okta"))
        .header("x-okta-verification-challenge", "abc123")
        .header("authorization", "guess")
        .send()
        .unwrap();
    assert_eq!(error_code(wrong), (401, "invalid_shared_secret".into()));
}

const ISSUER: &str = "https://idp.test";

fn issuer_config() -> String {
    let jwks = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/jwt/jwks.json");
    format!(
        r#"
[auth]
issuer = "{ISSUER}"
jwks_file = "{jwks}"
audience = "authtrail"
roles_claim = "groups"
algorithms = ["RS256"]
leeway_s = 5

[auth.roles]
"security-team" = ["read", "query"]
"ingesters" = ["ingest"]
"#
    )
}

fn rsa_token(claims: &Value, kid: &str) -> String {
    let pem = include_bytes!("../data/jwt/test-issuer-private.pem");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(pem).unwrap()).unwrap()
}

fn claims(overrides: Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": ISSUER, "aud": "authtrail", "sub": "alice@example.com",
        "iat": now, "nbf": now - 10, "exp": now + 600, "groups": ["security-team"],
    });
    for (k, v) in overrides.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn jwt_matrix() {
    let workspace = Workspace::new();
    let server = Server::start(&workspace, &issuer_config());
    let get = |token: &str| {
        client()
            .get(server.url("/v1/events"))
            .bearer_auth(token)
            .send()
            .unwrap()
    };
    let now = chrono::Utc::now().timestamp();

    let valid = rsa_token(&claims(json!({})), "test-key-1");
    assert_eq!(get(&valid).status(), 200);

    let payload = b64(claims(json!({})).to_string().as_bytes());
    let none = format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
    assert_eq!(
        error_code(get(&none)),
        (401, "algorithm_not_allowed".into())
    );

    // HS256 "signed" with the issuer's public key as the secret.
    let public = include_bytes!("../data/jwt/test-issuer-public.pem");
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some("test-key-1".into());
    let confused = jsonwebtoken::encode(
        &hs_header,
        &claims(json!({})),
        &EncodingKey::from_secret(public),
    )
    .unwrap();
    assert_eq!(
        error_code(get(&confused)),
        (401, "algorithm_not_allowed".into())
    );

    let cases = [
        (json!({"iss": "https://evil.test"}), "invalid_issuer"),
        (json!({"aud": "someone-else"}), "invalid_audience"),
        (json!({"exp": now - 120}), "token_expired"),
        (json!({"nbf": now + 600}), "token_not_yet_valid"),
    ];
    for (overrides, code) in cases {
        let token = rsa_token(&claims(overrides.clone()), "test-key-1");
        assert_eq!(error_code(get(&token)), (401, code.into()), "{overrides}");
    }

    let unknown_kid = rsa_token(&claims(json!({})), "rotated-away");
    assert_eq!(error_code(get(&unknown_kid)), (401, "unknown_key".into()));

    // Tampered payload: the signature no longer matches.
    let parts: Vec<&str> = valid.split('.').collect();
    let tampered_payload = b64(claims(json!({"groups": ["admin"]})).to_string().as_bytes());
    let tampered = format!("{}.{tampered_payload}.{}", parts[0], parts[2]);
    assert_eq!(
        error_code(get(&tampered)),
        (401, "invalid_signature".into())
    );

    // A valid token whose roles do not grant the call.
    let ingester = rsa_token(&claims(json!({"groups": ["ingesters"]})), "test-key-1");
    assert_eq!(error_code(get(&ingester)), (403, "forbidden".into()));
    let nobody = rsa_token(&claims(json!({"groups": []})), "test-key-1");
    assert_eq!(error_code(get(&nobody)), (403, "forbidden".into()));

    assert_eq!(
        error_code(get("not-a-token")),
        (401, "malformed_token".into())
    );
    let missing = client().get(server.url("/v1/events")).send().unwrap();
    assert_eq!(error_code(missing), (401, "missing_token".into()));

    // Every refused call is itself in the log, for auditors.
    let token = rsa_token(&claims(json!({})), "test-key-1");
    std::thread::sleep(Duration::from_millis(200));
    let refused = sql_number(
        &server,
        &token,
        "SELECT count(*) FROM events WHERE source = 'authtrail' AND outcome = 'failure'",
    );
    assert!(refused >= 12, "refused calls audited: {refused}");
    let alice = sql_number(
        &server,
        &token,
        "SELECT count(*) FROM events WHERE source = 'authtrail' AND user = 'alice@example.com' AND outcome = 'success'",
    );
    assert!(alice >= 1);
}

#[test]
fn query_is_read_only_and_limited() {
    let workspace = Workspace::new();
    let server = Server::start(&workspace, "[query]\nmemory_mb = 32\ntimeout_s = 2\n");
    let token = local_token(&workspace, &["ingest", "query"]);
    assert_eq!(
        post_events(
            &server,
            &token,
            "ocsf",
            ndjson(&ocsf_lines("q", 10)).into_bytes()
        )
        .status(),
        200
    );
    for statement in [
        "DROP TABLE events",
        "INSERT INTO events SELECT * FROM events",
        "CREATE TABLE t AS SELECT 1",
        "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
        "COPY (SELECT 1) TO '/tmp/authtrail-copy.csv'",
        "SET datafusion.execution.batch_size = 1",
    ] {
        let (status, code) = error_code(sql(&server, &token, statement));
        assert!(
            status == 403 && code == "not_read_only",
            "{statement}: {status} {code}"
        );
    }
    for reader in [
        "SELECT * FROM read_parquet('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
    ] {
        let (status, _) = error_code(sql(&server, &token, reader));
        assert!(status == 400 || status == 403, "{reader}: {status}");
    }
    // A runaway query is cut by its time limit: refused with 408 before
    // its first row, or its streamed body is cut off (never a complete
    // answer).
    let started = Instant::now();
    let runaway = sql(&server, &token, RUNAWAY_SQL);
    let status = runaway.status().as_u16();
    let body = runaway.text();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(status == 408 || body.is_err(), "{status}: {body:?}");
    // …and a memory hog by its memory limit.
    let (status, code) = error_code(sql(
        &server,
        &token,
        "SELECT array_agg(value) FROM generate_series(1, 50000000)",
    ));
    assert_eq!((status, code.as_str()), (422, "query_memory_limit"));
    // `curl -d` sends a form content type: the JSON body is read anyway.
    let form = client()
        .post(server.url("/v1/query"))
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"{"sql": "SELECT 1 AS one"}"#)
        .send()
        .unwrap();
    assert_eq!(form.json::<Value>().unwrap(), json!([{"one": 1}]));
    // And a normal query works.
    assert_eq!(
        sql_number(
            &server,
            &token,
            "SELECT count(*) FROM events WHERE source = 'ocsf'"
        ),
        10
    );
}

/// `max_concurrent_requests` bounds the whole API, not each route: while a
/// slow query holds the only slot, a read on another route is refused with
/// 503 and `Retry-After`, and the health probe still answers.
#[test]
fn the_concurrency_limit_is_one_for_the_whole_api() {
    let workspace = Workspace::new();
    let server = Server::start(
        &workspace,
        "[server]\nmax_concurrent_requests = 1\n\n[query]\ntimeout_s = 4\n",
    );
    let token = local_token(&workspace, &["read", "query"]);
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| {
            loop {
                let status = sql(&server, &token, RUNAWAY_SQL).status().as_u16();
                // Refused itself while a read held the slot: again.
                if status != 503 {
                    break status;
                }
            }
        });
        // Until the query holds the slot, reads go through; then they must
        // be refused, for as long as it runs.
        let deadline = Instant::now() + Duration::from_secs(3);
        let refused = loop {
            let response = client()
                .get(server.url("/v1/events"))
                .bearer_auth(&token)
                .send()
                .unwrap();
            if response.status() == 503 {
                break Some(response);
            }
            assert_eq!(response.status(), 200);
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let refused = refused.expect("a read was never refused while the query ran");
        assert_eq!(refused.headers()["retry-after"], "1");
        let (status, code) = error_code(refused);
        assert_eq!((status, code.as_str()), (503, "overloaded"));
        let health = client().get(server.url("/healthz")).send().unwrap();
        assert_eq!(health.status(), 200, "the probe must not wait for the API");
        assert_eq!(slow.join().unwrap(), 408);
    });
}

#[test]
fn a_request_past_the_server_time_limit_is_answered_and_counted() {
    let workspace = Workspace::new();
    // The query's own limit is later than the server's.
    let server = Server::start(
        &workspace,
        "[server]\nrequest_timeout_s = 1\n\n[query]\ntimeout_s = 60\n",
    );
    let token = local_token(&workspace, &["read", "query"]);
    let started = Instant::now();
    let response = sql(&server, &token, RUNAWAY_SQL);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(response.headers()["retry-after"], "1");
    let (status, code) = error_code(response);
    assert_eq!((status, code.as_str()), (503, "timeout"));
    let metrics = metrics(&server);
    assert!(
        metrics.contains(r#"authtrail_http_responses_total{route="/v1/query",status="503"} 1"#),
        "{metrics}"
    );
}

#[test]
fn concurrent_clients_store_every_acknowledged_event_exactly_once() {
    let workspace = Workspace::new();
    let server = Server::start(&workspace, "[staging]\nseal_events = 50000\n");
    let token = local_token(&workspace, &["ingest", "query"]);
    let clients = 200;
    let per_client = 1000;
    let acknowledged: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let server = &server;
                let token = &token;
                scope.spawn(move || {
                    let body = ndjson(&ocsf_lines(&format!("c{c}"), per_client));
                    let response = post_events(server, token, "ocsf", body.into_bytes());
                    if response.status() == 200 {
                        response.json::<Value>().unwrap()["stored"]
                            .as_u64()
                            .unwrap() as usize
                    } else {
                        assert_eq!(response.status(), 503, "only overload may refuse a batch");
                        0
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert!(acknowledged >= per_client, "nothing was acknowledged");
    let stored = sql_number(
        &server,
        &token,
        "SELECT count(*) FROM events WHERE source = 'ocsf'",
    );
    let distinct = sql_number(
        &server,
        &token,
        "SELECT count(DISTINCT event_id) FROM events WHERE source = 'ocsf'",
    );
    assert_eq!(stored as usize, acknowledged);
    assert_eq!(distinct, stored);
    // After a clean stop, everything is sealed into Parquet and verifies.
    assert_eq!(server.stop(), 0);
    let sealed = workspace.query_number("SELECT count(*) FROM events WHERE source = 'ocsf'");
    assert_eq!(sealed as usize, acknowledged);
    assert!(!sealed_files(&workspace.data().join("events")).is_empty());
    workspace.run(&["verify"]).ok();
}

#[test]
fn acknowledged_events_survive_a_crash() {
    let workspace = Workspace::new();
    let server = Server::start(&workspace, "");
    let token = local_token(&workspace, &["ingest"]);
    let response = post_events(
        &server,
        &token,
        "ocsf",
        ndjson(&ocsf_lines("crash", 250)).into_bytes(),
    );
    assert_eq!(response.status(), 200);
    // SIGKILL: no chance to seal anything.
    let pid = server_pid(&server);
    std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(server);
    // The staged events are visible to a query straight away…
    assert_eq!(
        workspace.query_number("SELECT count(*) FROM events WHERE source = 'ocsf'"),
        250
    );
    // …and a restart seals them, once.
    let server = Server::start(&workspace, "");
    let token = local_token(&workspace, &["ingest", "query"]);
    assert_eq!(
        sql_number(
            &server,
            &token,
            "SELECT count(*) FROM events WHERE source = 'ocsf'"
        ),
        250
    );
    let again = post_events(
        &server,
        &token,
        "ocsf",
        ndjson(&ocsf_lines("crash", 250)).into_bytes(),
    );
    assert_eq!(again.json::<Value>().unwrap()["duplicates"], 250);
    assert_eq!(server.stop(), 0);
    assert_eq!(
        workspace.query_number("SELECT count(*) FROM events WHERE source = 'ocsf'"),
        250
    );
    workspace.run(&["verify"]).ok();
}

/// A query that runs until a time limit cuts it.
const RUNAWAY_SQL: &str = "SELECT count(*) FROM generate_series(1, 100000000000)";

/// The server's `/metrics` text.
fn metrics(server: &Server) -> String {
    client()
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap()
}

fn server_pid(server: &Server) -> String {
    server.pid().to_string()
}

#[test]
fn operations_endpoints() {
    let workspace = Workspace::new();
    let server = Server::start(&workspace, "");
    assert_eq!(
        client()
            .get(server.url("/healthz"))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client().get(server.url("/readyz")).send().unwrap().status(),
        200
    );
    // Answered by the router's fallback, which is counted too.
    assert_eq!(
        client()
            .get(server.url("/nowhere"))
            .send()
            .unwrap()
            .status(),
        404
    );
    let token = local_token(&workspace, &["ingest"]);
    // Twice: the second request's counters are found, not created.
    for prefix in ["m", "n"] {
        post_events(
            &server,
            &token,
            "ocsf",
            ndjson(&ocsf_lines(prefix, 9)).into_bytes(),
        );
    }
    let metrics = metrics(&server);
    assert!(
        metrics.contains(r#"authtrail_events_ingested_total{source="ocsf",outcome="failure"} 6"#),
        "{metrics}"
    );
    assert!(metrics.contains("authtrail_commit_seconds_count"));
    assert!(
        metrics.contains(
            r#"authtrail_http_responses_total{route="/v1/ingest/{source}",status="200"} 2"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"authtrail_http_responses_total{route="/healthz",status="200"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"authtrail_http_responses_total{route="unmatched",status="404"} 1"#),
        "{metrics}"
    );
    let openapi: Value = client()
        .get(server.url("/v1/openapi.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(openapi["paths"]["/v1/ingest/{source}"]["post"].is_object());
    assert!(openapi["paths"]["/v1/reports/failed-logins"]["get"].is_object());
    assert!(openapi["components"]["securitySchemes"]["bearer"].is_object());
}

/// A minimal OIDC provider on 127.0.0.1: a discovery document and a JWKS
/// that the test can change (key rotation).
struct FakeIssuer {
    base: String,
    jwks: std::sync::Arc<std::sync::Mutex<String>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FakeIssuer {
    fn start(jwks: String) -> FakeIssuer {
        use std::io::{BufRead, BufReader};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let jwks = std::sync::Arc::new(std::sync::Mutex::new(jwks));
        let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (served, counter, issuer) = (jwks.clone(), fetches.clone(), base.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                }
                let body = if request_line.contains("/.well-known/openid-configuration") {
                    json!({"issuer": issuer, "jwks_uri": format!("{issuer}/keys")}).to_string()
                } else {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    served.lock().unwrap().clone()
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeIssuer {
            base,
            jwks,
            fetches,
        }
    }
}

fn jwks_with_kids(kids: &[&str]) -> String {
    let file: Value = serde_json::from_str(include_str!("../data/jwt/jwks.json")).unwrap();
    let key = file["keys"][0].clone();
    let keys: Vec<Value> = kids
        .iter()
        .map(|kid| {
            let mut k = key.clone();
            k["kid"] = json!(kid);
            k
        })
        .collect();
    json!({ "keys": keys }).to_string()
}

#[test]
fn oidc_discovery_and_key_rotation() {
    let issuer = FakeIssuer::start(jwks_with_kids(&["test-key-1"]));
    let workspace = Workspace::new();
    let server = Server::start(
        &workspace,
        &format!(
            "[auth]\nissuer = \"{}\"\naudience = \"authtrail\"\nalgorithms = [\"RS256\"]\njwks_refresh_min_s = 0\n[auth.roles]\n\"security-team\" = [\"read\"]\n",
            issuer.base
        ),
    );
    let get = |token: &str| {
        client()
            .get(server.url("/v1/events"))
            .bearer_auth(token)
            .send()
            .unwrap()
    };
    let with_iss = |kid: &str| rsa_token(&claims(json!({"iss": issuer.base})), kid);
    assert_eq!(get(&with_iss("test-key-1")).status(), 200);
    let fetched = issuer.fetches.load(std::sync::atomic::Ordering::SeqCst);
    // The issuer rotates in a new key: the first token naming it makes the
    // server fetch the keys again.
    *issuer.jwks.lock().unwrap() = jwks_with_kids(&["test-key-1", "test-key-2"]);
    assert_eq!(get(&with_iss("test-key-2")).status(), 200);
    assert!(issuer.fetches.load(std::sync::atomic::Ordering::SeqCst) > fetched);
    // A key the issuer never had stays unknown.
    assert_eq!(
        error_code(get(&with_iss("never"))),
        (401, "unknown_key".into())
    );
}

#[test]
fn settings_come_from_the_environment_too() {
    let workspace = Workspace::new();
    let server = Server::start_with_env(
        &workspace,
        "",
        &[
            ("AUTHTRAIL_WEBHOOK__OCSF__HMAC_SECRET", "from-env"),
            ("AUTHTRAIL_WEBHOOK__OCSF__ALLOW_BEARER", "false"),
        ],
    );
    let body = ndjson(&ocsf_lines("env", 3));
    let signature = authtrail_api::auth::webhook::sign(
        b"from-env",
        chrono::Utc::now().timestamp(),
        body.as_bytes(),
    );
    let response = client()
        .post(server.url("/v1/ingest/ocsf"))
        .header("x-authtrail-signature", signature)
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.stop(), 0);
}
