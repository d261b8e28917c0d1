//! Bearer JWT verification, as a careful relying party does it: only the
//! configured asymmetric algorithms, the key chosen by `kid` from the
//! issuer's JWKS (refreshed, at a limited rate, when a token names a key
//! not seen yet), and `iss`, `aud`, `exp` and `nbf` checked with a small
//! leeway.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::local::LocalKey;
use super::{Principal, RoleMap};
use crate::error::ApiError;

/// Where the issuer's public keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS document on disk, re-read on refresh.
    File(PathBuf),
    /// The JWKS found by OIDC discovery from the issuer URL.
    Discovery(String),
    /// authtrail's own local signing key.
    Local,
}

/// Why the verifier could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A configured algorithm is unknown or symmetric.
    #[error("[auth] algorithms: {0}")]
    Algorithm(String),
    /// The keys could not be loaded.
    #[error("loading the issuer's keys: {0}")]
    Keys(String),
    /// The role map is invalid.
    #[error("{0}")]
    Roles(String),
}

/// One usable key: what it verifies and with which algorithms.
struct Key {
    decoding: DecodingKey,
    /// Algorithms this key may verify (its type's family, narrowed by the
    /// JWK's `alg` when it names one).
    algorithms: Vec<Algorithm>,
}

/// Verifies bearer tokens and maps their roles to permissions.
pub struct JwtVerifier {
    source: KeySource,
    issuer: String,
    audience: String,
    roles_claim: String,
    roles: RoleMap,
    allowed: Vec<Algorithm>,
    leeway: Duration,
    refresh_min: Duration,
    keys: RwLock<HashMap<String, Key>>,
    last_refresh: Mutex<Option<Instant>>,
    /// Tokens already verified, with their expiry: a sender posting
    /// thousands of requests with one token pays for one signature check.
    /// Hashed with foldhash (randomly seeded, like std's SipHash, and
    /// several times faster over a token's few hundred bytes): every
    /// request hashes its token once, and only verified tokens are kept.
    verified: Mutex<HashMap<String, (Principal, i64), foldhash::fast::RandomState>>,
}

/// Most tokens remembered as verified; the cache starts over beyond it.
const VERIFIED_CACHE_ENTRIES: usize = 10_000;

fn family(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => "RSA",
        Algorithm::ES256 | Algorithm::ES384 => "EC",
        Algorithm::EdDSA => "OKP",
        _ => "oct",
    }
}

impl JwtVerifier {
    /// A verifier for tokens of `issuer` whose keys come from `source`.
    pub fn new(
        source: KeySource,
        issuer: String,
        config: &crate::config::AuthConfig,
        local: Option<&LocalKey>,
    ) -> Result<Self, SetupError> {
        let mut allowed = Vec::new();
        for name in &config.algorithms {
            let alg = Algorithm::from_str(name)
                .map_err(|_| SetupError::Algorithm(format!("unknown algorithm {name:?}")))?;
            if family(alg) == "oct" {
                return Err(SetupError::Algorithm(format!(
                    "{name} is symmetric: a shared secret cannot prove who issued a token; \
                     use RS256, ES256 or EdDSA"
                )));
            }
            allowed.push(alg);
        }
        if allowed.is_empty() {
            return Err(SetupError::Algorithm("no algorithm allowed".into()));
        }
        let roles = RoleMap::new(&config.roles).map_err(SetupError::Roles)?;
        let verifier = JwtVerifier {
            source,
            issuer,
            audience: config.audience.clone(),
            roles_claim: config.roles_claim.clone(),
            roles,
            allowed,
            leeway: Duration::from_secs(config.leeway_s),
            refresh_min: Duration::from_secs(config.jwks_refresh_min_s),
            keys: RwLock::new(HashMap::new()),
            last_refresh: Mutex::new(None),
            verified: Mutex::new(HashMap::default()),
        };
        match (&verifier.source, local) {
            (KeySource::Local, Some(local)) => {
                let key = Key {
                    decoding: local
                        .decoding_key()
                        .map_err(|e| SetupError::Keys(e.to_string()))?,
                    algorithms: vec![Algorithm::EdDSA],
                };
                write(&verifier.keys).insert(local.kid().to_owned(), key);
            }
            (KeySource::Local, None) => {
                return Err(SetupError::Keys("no local signing key".into()));
            }
            _ => {}
        }
        Ok(verifier)
    }

    /// Loads the keys now (at start-up, so that a bad JWKS is reported
    /// before the server takes traffic).
    pub async fn load_keys(&self) -> Result<usize, SetupError> {
        let set = match &self.source {
            KeySource::Local => return Ok(read(&self.keys).len()),
            KeySource::File(path) => {
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| SetupError::Keys(format!("{}: {e}", path.display())))?;
                serde_json::from_str::<JwkSet>(&text).map_err(|e| {
                    SetupError::Keys(format!("{}: not a JWKS document: {e}", path.display()))
                })?
            }
            KeySource::Discovery(issuer) => discover(issuer).await?,
        };
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let type_family = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => "RSA",
                AlgorithmParameters::EllipticCurve(_) => "EC",
                AlgorithmParameters::OctetKeyPair(_) => "OKP",
                // Symmetric keys (and kinds this build does not know)
                // never verify tokens here.
                _ => continue,
            };
            let Ok(decoding) = DecodingKey::from_jwk(jwk) else {
                tracing::warn!(kid, "skipping a JWK that cannot be used");
                continue;
            };
            let named = jwk
                .common
                .key_algorithm
                .and_then(|a| Algorithm::from_str(&format!("{a:?}")).ok());
            let algorithms = self
                .allowed
                .iter()
                .copied()
                .filter(|alg| family(*alg) == type_family && named.is_none_or(|n| n == *alg))
                .collect();
            keys.insert(
                kid,
                Key {
                    decoding,
                    algorithms,
                },
            );
        }
        let count = keys.len();
        *write(&self.keys) = keys;
        *self.last_refresh.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        Ok(count)
    }

    /// Refreshes the keys unless that was done less than the minimum
    /// interval ago. Returns whether it refreshed.
    async fn refresh_if_allowed(&self) -> bool {
        {
            let mut last = self.last_refresh.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < self.refresh_min) {
                return false;
            }
            // Claim the slot before the (slow) fetch so that a burst of
            // tokens with unknown ids triggers one refresh, not many.
            *last = Some(Instant::now());
        }
        match self.load_keys().await {
            Ok(_) => true,
            Err(err) => {
                tracing::warn!(error = %err, "refreshing the issuer's keys failed");
                false
            }
        }
    }

    /// Verifies `token` and returns the caller it proves.
    pub async fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let leeway = self.leeway.as_secs() as i64;
        if let Some((principal, exp)) = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            && now <= exp + leeway
        {
            return Ok(principal.clone());
        }
        let principal = self.verify_signature_and_claims(token).await?;
        Ok(principal)
    }

    async fn verify_signature_and_claims(&self, token: &str) -> Result<Principal, ApiError> {
        let header = peek_header(token)?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("the token header has no `alg`"))?;
        let alg = match Algorithm::from_str(alg) {
            Ok(alg) if self.allowed.contains(&alg) => alg,
            _ => {
                return Err(ApiError::unauthorized(
                    "algorithm_not_allowed",
                    format!(
                        "tokens signed with {alg:?} are not accepted; allowed: {}",
                        self.allowed
                            .iter()
                            .map(|a| format!("{a:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        };
        let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
        let known = |kid: &Option<String>| -> bool {
            let keys = read(&self.keys);
            match kid {
                Some(kid) => keys.contains_key(kid),
                None => keys.len() == 1,
            }
        };
        if !known(&kid) && (kid.is_none() || !self.refresh_if_allowed().await || !known(&kid)) {
            return Err(ApiError::unauthorized(
                "unknown_key",
                match &kid {
                    Some(kid) => {
                        format!("the token's key id {kid:?} is not among the issuer's keys")
                    }
                    None => {
                        "the token names no key id (`kid`) and the issuer has several keys".into()
                    }
                },
            ));
        }
        let claims = {
            let keys = read(&self.keys);
            let key = match &kid {
                Some(kid) => keys.get(kid),
                None => keys.values().next(),
            }
            .ok_or_else(|| ApiError::unauthorized("unknown_key", "the token's key is gone"))?;
            if !key.algorithms.contains(&alg) {
                return Err(ApiError::unauthorized(
                    "algorithm_not_allowed",
                    format!("the token's key does not sign with {alg:?}"),
                ));
            }
            let mut validation = Validation::new(alg);
            validation.algorithms = vec![alg];
            validation.leeway = self.leeway.as_secs();
            validation.validate_exp = true;
            validation.validate_nbf = true;
            validation.set_issuer(&[&self.issuer]);
            validation.set_audience(&[&self.audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)
                .map_err(token_error)?
                .claims
        };
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let roles: Vec<&str> = match claims.get(&self.roles_claim) {
            Some(Value::String(role)) => role.split([' ', ',']).filter(|r| !r.is_empty()).collect(),
            Some(Value::Array(values)) => values.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let principal = Principal {
            subject,
            permissions: self.roles.permissions(roles),
            method: "jwt",
        };
        if let Some(exp) = claims.get("exp").and_then(Value::as_i64) {
            let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if verified.len() >= VERIFIED_CACHE_ENTRIES {
                verified.clear();
            }
            verified.insert(token.to_owned(), (principal.clone(), exp));
        }
        Ok(principal)
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

fn malformed(message: &str) -> ApiError {
    ApiError::unauthorized("malformed_token", message.to_owned())
}

/// Reads a token's header without trusting it, so that a refused
/// algorithm (including `none`) gets its own clear error.
fn peek_header(token: &str) -> Result<Map<String, Value>, ApiError> {
    let mut parts = token.split('.');
    let header = parts.next().unwrap_or_default();
    if parts.count() != 2 {
        return Err(malformed("a JWT has three dot-separated parts"));
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| malformed("the token header is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| malformed("the token header is not a JSON object"))
}

fn token_error(err: jsonwebtoken::errors::Error) -> ApiError {
    let (code, message) = match err.kind() {
        ErrorKind::ExpiredSignature => ("token_expired", "the token has expired".to_owned()),
        ErrorKind::ImmatureSignature => (
            "token_not_yet_valid",
            "the token is not valid yet (`nbf` is in the future)".to_owned(),
        ),
        ErrorKind::InvalidIssuer => (
            "invalid_issuer",
            "the token's issuer is not trusted".to_owned(),
        ),
        ErrorKind::InvalidAudience => (
            "invalid_audience",
            "the token is not meant for this service (`aud`)".to_owned(),
        ),
        ErrorKind::InvalidSignature => (
            "invalid_signature",
            "the token's signature does not verify".to_owned(),
        ),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => (
            "algorithm_not_allowed",
            "the token's algorithm does not match its key".to_owned(),
        ),
        ErrorKind::MissingRequiredClaim(claim) => {
            ("missing_claim", format!("the token has no `{claim}` claim"))
        }
        _ => (
            "malformed_token",
            format!("the token cannot be read: {err}"),
        ),
    };
    ApiError::unauthorized(code, message)
}

/// Finds the issuer's JWKS by OIDC discovery.
pub async fn discover(issuer: &str) -> Result<JwkSet, SetupError> {
    let base = issuer.trim_end_matches('/');
    let config: Value =
        crate::http_client::get_json(&format!("{base}/.well-known/openid-configuration"))
            .await
            .map_err(SetupError::Keys)?;
    let found = config
        .get("issuer")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if found.trim_end_matches('/') != base {
        return Err(SetupError::Keys(format!(
            "discovery document names issuer {found:?}, not {issuer:?}"
        )));
    }
    let jwks_uri = config
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| SetupError::Keys("discovery document has no jwks_uri".into()))?;
    let set: Value = crate::http_client::get_json(jwks_uri)
        .await
        .map_err(SetupError::Keys)?;
    serde_json::from_value(set)
        .map_err(|e| SetupError::Keys(format!("{jwks_uri}: not a JWKS: {e}")))
}
