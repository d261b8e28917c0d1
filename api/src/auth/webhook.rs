//! Webhook delivery authentication: HMAC-SHA256 signatures (authtrail's
//! timestamped form, or GitHub's), compared in constant time, and Okta
//! event hooks' shared `Authorization` secret.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{SignatureStyle, WebhookConfig};
use crate::error::ApiError;

/// The header of authtrail-style signatures.
pub const SIGNATURE_HEADER: &str = "x-authtrail-signature";
/// The header of GitHub-style signatures.
pub const GITHUB_SIGNATURE_HEADER: &str = "x-hub-signature-256";

type HmacSha256 = Hmac<Sha256>;

/// Whether the request carries a webhook credential of the configured kind
/// (so that a request with only a bearer token goes to JWT checks).
pub fn has_credential(config: &WebhookConfig, headers: &HeaderMap) -> bool {
    let signature = match config.signature {
        SignatureStyle::Authtrail => SIGNATURE_HEADER,
        SignatureStyle::Github => GITHUB_SIGNATURE_HEADER,
    };
    (config.hmac_secret.is_some() && headers.contains_key(signature))
        || (config.authorization.is_some()
            && headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| !v.to_ascii_lowercase().starts_with("bearer ")))
}

/// Checks the webhook credential of a delivery of `body` (as received,
/// before any decompression) at `now` (unix seconds).
pub fn verify(
    config: &WebhookConfig,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<&'static str, ApiError> {
    if let Some(secret) = &config.hmac_secret {
        verify_signature(config, secret.as_bytes(), headers, body, now)?;
        return Ok("hmac");
    }
    if let Some(expected) = &config.authorization {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if constant_time_eq(given, expected.as_bytes()) {
            return Ok("shared_secret");
        }
        return Err(ApiError::unauthorized(
            "invalid_shared_secret",
            "the Authorization header does not match this webhook's shared secret",
        ));
    }
    Err(ApiError::unauthorized(
        "missing_credentials",
        "this source takes webhook signatures or bearer tokens; none was given",
    ))
}

fn verify_signature(
    config: &WebhookConfig,
    secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), ApiError> {
    let header_name = match config.signature {
        SignatureStyle::Authtrail => SIGNATURE_HEADER,
        SignatureStyle::Github => GITHUB_SIGNATURE_HEADER,
    };
    let header = headers
        .get(header_name)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "missing_signature",
                format!("this webhook must be signed: send the `{header_name}` header"),
            )
        })?
        .to_str()
        .map_err(|_| malformed(header_name))?;
    let mut mac = HmacSha256::new_from_slice(secret)
        .map_err(|e| ApiError::internal("webhook signature setup", e))?;
    let given_hex = match config.signature {
        SignatureStyle::Github => header
            .strip_prefix("sha256=")
            .ok_or_else(|| malformed(header_name))?,
        SignatureStyle::Authtrail => {
            let mut timestamp = None;
            let mut signature = None;
            for part in header.split(',') {
                match part.trim().split_once('=') {
                    Some(("t", value)) => timestamp = Some(value),
                    Some(("v1", value)) => signature = Some(value),
                    _ => {}
                }
            }
            let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
                return Err(malformed(header_name));
            };
            let t: i64 = timestamp.parse().map_err(|_| malformed(header_name))?;
            if (now - t).unsigned_abs() > config.max_skew_s {
                return Err(ApiError::unauthorized(
                    "stale_signature",
                    format!(
                        "the signature's timestamp is {}s away from now (at most {}s allowed); \
                         sign each delivery when it is sent",
                        now - t,
                        config.max_skew_s
                    ),
                ));
            }
            mac.update(timestamp.as_bytes());
            mac.update(b".");
            signature
        }
    };
    let given = hex::decode(given_hex).map_err(|_| malformed(header_name))?;
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&given).map_err(|_| {
        ApiError::unauthorized(
            "invalid_signature",
            "the webhook signature does not match the body",
        )
    })
}

fn malformed(header: &str) -> ApiError {
    ApiError::unauthorized(
        "malformed_signature",
        format!(
            "the `{header}` header is not in the expected form \
             (`t=<unix seconds>,v1=<hex>` or `sha256=<hex>`)"
        ),
    )
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use hmac::digest::Digest;
    // Comparing digests makes the time independent of where they differ
    // and of the secret's length.
    let a = Sha256::digest(a);
    let b = Sha256::digest(b);
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Computes an authtrail-style signature header value (for clients and
/// tests): `t=<t>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> WebhookConfig {
        WebhookConfig {
            hmac_secret: Some("s3cret".into()),
            ..WebhookConfig::default()
        }
    }

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, value.parse().unwrap());
        headers
    }

    #[test]
    fn a_fresh_valid_signature_passes() {
        let sig = sign(b"s3cret", 1000, b"{}");
        assert_eq!(
            verify(&config(), &headers(&sig), b"{}", 1010).unwrap(),
            "hmac"
        );
    }

    #[test]
    fn bad_stale_and_missing_signatures_are_refused() {
        let sig = sign(b"s3cret", 1000, b"{}");
        let err = verify(&config(), &headers(&sig), b"{ }", 1000).unwrap_err();
        assert_eq!(err.code, "invalid_signature");
        let err = verify(&config(), &headers(&sig), b"{}", 1000 + 301).unwrap_err();
        assert_eq!(err.code, "stale_signature");
        let err = verify(&config(), &HeaderMap::new(), b"{}", 1000).unwrap_err();
        assert_eq!(err.code, "missing_signature");
        let err = verify(&config(), &headers("v1=abc"), b"{}", 1000).unwrap_err();
        assert_eq!(err.code, "malformed_signature");
    }

    #[test]
    fn github_style_signs_the_body_alone() {
        let config = WebhookConfig {
            signature: SignatureStyle::Github,
            ..config()
        };
        let mut mac = HmacSha256::new_from_slice(b"s3cret").unwrap();
        mac.update(b"payload");
        let value = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let mut headers = HeaderMap::new();
        headers.insert(GITHUB_SIGNATURE_HEADER, value.parse().unwrap());
        assert!(verify(&config, &headers, b"payload", 0).is_ok());
        assert!(verify(&config, &headers, b"payloaD", 0).is_err());
    }

    #[test]
    fn okta_shared_secret_must_match_exactly() {
        let config = WebhookConfig {
            authorization: Some("okta-secret".into()),
            ..WebhookConfig::default()
        };
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "okta-secret".parse().unwrap());
        assert_eq!(verify(&config, &headers, b"", 0).unwrap(), "shared_secret");
        headers.insert("authorization", "okta-secreT".parse().unwrap());
        assert_eq!(
            verify(&config, &headers, b"", 0).unwrap_err().code,
            "invalid_shared_secret"
        );
    }
}
