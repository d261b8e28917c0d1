//! The server's configuration, as read from `authtrail.toml` (and
//! `AUTHTRAIL_*` environment variables, merged by the binary). Every field
//! has a default, so an empty file is a valid configuration: the embedded
//! default with a local signing key and no webhooks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Listening socket and request limits.
    pub server: ServerConfig,
    /// Who may call the API.
    pub auth: AuthConfig,
    /// Webhook authentication, one table per source (`[webhook.okta]`).
    pub webhook: BTreeMap<String, WebhookConfig>,
    /// Limits of `POST /v1/query`.
    pub query: QueryConfig,
    /// Group commit and sealing of ingested events.
    pub staging: StagingConfig,
    /// Kafka topics to consume (none unless `brokers` is set).
    pub kafka: KafkaConfig,
}

/// `[kafka]`: the consumer `serve` runs beside the API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port[,host:port…]`; no consumer without.
    pub brokers: Option<String>,
    /// Consumer group.
    pub group: String,
    /// `TOPIC=SOURCE` bindings, as a list or one comma-separated string.
    pub topics: TopicList,
    /// librdkafka settings passed through (`security.protocol`, `sasl.*`…).
    pub options: BTreeMap<String, String>,
    /// Most messages per batch handed to the writer.
    pub batch_messages: usize,
    /// Longest a message waits for its batch to fill, in milliseconds.
    pub linger_ms: u64,
}

/// Topic bindings, from TOML (a list) or an environment variable (one
/// comma-separated string).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TopicList {
    /// `topics = ["a=okta", "b=sshd"]`.
    Many(Vec<String>),
    /// `AUTHTRAIL_KAFKA_TOPICS=a=okta,b=sshd`.
    One(String),
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: None,
            group: "authtrail".into(),
            topics: TopicList::Many(Vec::new()),
            options: BTreeMap::new(),
            batch_messages: 50_000,
            linger_ms: 100,
        }
    }
}

impl KafkaConfig {
    /// The consumer's settings, if a broker is configured.
    pub fn settings(&self) -> Result<Option<authtrail_ingest::kafka::KafkaSettings>, String> {
        let Some(brokers) = &self.brokers else {
            return Ok(None);
        };
        let bindings: Vec<&str> = match &self.topics {
            TopicList::Many(list) => list.iter().map(String::as_str).collect(),
            TopicList::One(text) => text.split(',').collect(),
        };
        let topics = bindings
            .into_iter()
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>, String>>()?;
        if topics.is_empty() {
            return Err(
                "[kafka] brokers is set but topics is empty: add topics = [\"TOPIC=SOURCE\"]"
                    .into(),
            );
        }
        let mut settings = authtrail_ingest::kafka::KafkaSettings::new(
            brokers.clone(),
            self.group.clone(),
            topics,
        );
        settings.client_options = self.options.clone();
        settings.batch_messages = self.batch_messages.max(1);
        settings.linger = std::time::Duration::from_millis(self.linger_ms);
        settings.client_config().map_err(|err| err.to_string())?;
        Ok(Some(settings))
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Largest request body accepted, compressed, in bytes.
    pub max_body_bytes: usize,
    /// Largest request body accepted after gzip decompression, in bytes.
    pub max_decompressed_bytes: usize,
    /// API requests handled at once, across every route; one more is
    /// refused at once with 503 and `Retry-After`. The health probes and
    /// `/metrics` do not count, and are never refused.
    pub max_concurrent_requests: usize,
    /// Time limit of one request (ingest, reports), in seconds; past it the
    /// request is answered 503 `timeout` with `Retry-After`. Streamed
    /// results are bounded by `[query].timeout_s` instead.
    pub request_timeout_s: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 16 << 20,
            max_decompressed_bytes: 128 << 20,
            max_concurrent_requests: 1024,
            request_timeout_s: 30,
        }
    }
}

/// `[auth]`: bearer JWTs from an OIDC issuer, or from the local key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The issuer (`iss`) tokens must name. With no `jwks_file`, its keys
    /// are found by OIDC discovery (`<issuer>/.well-known/openid-configuration`).
    /// With neither, authtrail signs its own tokens with a key kept in the
    /// data directory (`authtrail token`).
    pub issuer: Option<String>,
    /// A JWKS document with the issuer's public keys, instead of discovery.
    pub jwks_file: Option<PathBuf>,
    /// The audience (`aud`) tokens must name.
    pub audience: String,
    /// The claim holding the caller's groups or roles.
    pub roles_claim: String,
    /// Signature algorithms accepted (asymmetric only: RS256, RS384,
    /// RS512, PS256, ES256, ES384, EdDSA).
    pub algorithms: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_s: u64,
    /// Least time between two refreshes of the issuer's keys, in seconds,
    /// when a token names an unknown key id.
    pub jwks_refresh_min_s: u64,
    /// Claim value → permissions (`ingest`, `read`, `export`, `query`,
    /// `admin`). Without entries, the permission names themselves are the
    /// roles (what `authtrail token --role` puts in tokens).
    pub roles: BTreeMap<String, Vec<String>>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            issuer: None,
            jwks_file: None,
            audience: "authtrail".into(),
            roles_claim: "groups".into(),
            algorithms: vec!["RS256".into(), "ES256".into(), "EdDSA".into()],
            leeway_s: 30,
            jwks_refresh_min_s: 30,
            roles: BTreeMap::new(),
        }
    }
}

/// `[webhook.<source>]`: how webhook deliveries for one source prove who
/// sent them. Without a table, a source accepts only bearer tokens with the
/// `ingest` permission.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Shared secret of HMAC-SHA256 signatures.
    pub hmac_secret: Option<String>,
    /// Signature style: `authtrail` (header `X-Authtrail-Signature:
    /// t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`) or `github`
    /// (`X-Hub-Signature-256: sha256=<hex HMAC of the body>`, no timestamp).
    pub signature: SignatureStyle,
    /// Oldest or newest signature timestamp accepted, in seconds from now.
    pub max_skew_s: u64,
    /// Answer Okta's one-time event-hook verification (`GET` with
    /// `X-Okta-Verification-Challenge`).
    pub okta_verification: bool,
    /// Okta event hooks' shared secret: the exact `Authorization` header
    /// value Okta was configured to send.
    pub authorization: Option<String>,
    /// Also accept bearer tokens with the `ingest` permission.
    pub allow_bearer: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            hmac_secret: None,
            signature: SignatureStyle::Authtrail,
            max_skew_s: 300,
            okta_verification: false,
            authorization: None,
            allow_bearer: true,
        }
    }
}

/// A webhook signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureStyle {
    /// `X-Authtrail-Signature: t=<unix>,v1=<hex>` over `"<t>.<body>"`.
    Authtrail,
    /// GitHub's `X-Hub-Signature-256: sha256=<hex>` over the body.
    Github,
}

/// `[query]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// Memory one query may use for joins, sorts and aggregations, in MiB.
    pub memory_mb: usize,
    /// Time limit of one query, including streaming its result, in seconds.
    pub timeout_s: u64,
}

impl QueryConfig {
    /// The limits of one query session.
    pub fn limits(&self) -> authtrail_query::QueryLimits {
        authtrail_query::QueryLimits {
            memory_bytes: self.memory_mb.max(16) << 20,
            timeout: std::time::Duration::from_secs(self.timeout_s.max(1)),
            ..authtrail_query::QueryLimits::default()
        }
    }
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            memory_mb: 512,
            timeout_s: 60,
        }
    }
}

/// `[staging]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StagingConfig {
    /// Staged events that make a segment due for sealing into Parquet.
    pub seal_events: usize,
    /// Age at which a staging segment is sealed anyway, in seconds.
    pub seal_interval_s: u64,
    /// Events accepted but not yet durable before ingest answers 503.
    pub max_queued_events: usize,
}

impl Default for StagingConfig {
    fn default() -> Self {
        let defaults = authtrail_ingest::staging::StagingOptions::default();
        StagingConfig {
            seal_events: defaults.seal_events,
            seal_interval_s: defaults.seal_interval.as_secs(),
            max_queued_events: defaults.max_queued_events,
        }
    }
}

impl StagingConfig {
    /// The stager's options.
    pub fn options(&self) -> authtrail_ingest::staging::StagingOptions {
        authtrail_ingest::staging::StagingOptions {
            seal_events: self.seal_events.max(1),
            seal_interval: std::time::Duration::from_secs(self.seal_interval_s.max(1)),
            max_queued_events: self.max_queued_events.max(1),
            ..Default::default()
        }
    }
}
