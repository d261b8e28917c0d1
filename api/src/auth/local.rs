//! The local signing key: with no issuer configured, authtrail is its own
//! token issuer, so that a first run needs no identity provider. An Ed25519
//! key is created once in the data directory (readable by its owner only)
//! and `authtrail token` mints short-lived tokens with it.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// File name of the key under the data directory.
pub const KEY_FILE: &str = ".authtrail-signing-key";

/// The issuer name of locally minted tokens.
pub const LOCAL_ISSUER: &str = "authtrail-local";

/// PKCS#8 v1 prefix of an Ed25519 private key; the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Why the local key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LocalKeyError {
    /// Reading or creating the key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The key file does not hold a key.
    #[error(
        "{0}: not an authtrail signing key (delete it to make a new one; tokens signed with it stop working)"
    )]
    Invalid(PathBuf),
    /// Signing failed.
    #[error("signing: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// The local Ed25519 key.
pub struct LocalKey {
    seed: [u8; 32],
    public: [u8; 32],
    kid: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
    #[serde(flatten)]
    roles: serde_json::Map<String, serde_json::Value>,
}

impl LocalKey {
    /// Loads the key of the data directory `data`, creating it the first
    /// time.
    pub fn load_or_create(data: &Path) -> Result<LocalKey, LocalKeyError> {
        let path = data.join(KEY_FILE);
        let io = |source| LocalKeyError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = STANDARD
                    .decode(text.trim())
                    .map_err(|_| LocalKeyError::Invalid(path.clone()))?;
                let seed: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| LocalKeyError::Invalid(path.clone()))?;
                Ok(LocalKey::from_seed(seed))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data).map_err(io)?;
                let seed: [u8; 32] = rand::random();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                match options.open(&path) {
                    Ok(mut file) => {
                        file.write_all(STANDARD.encode(seed).as_bytes())
                            .and_then(|()| file.sync_all())
                            .map_err(io)?;
                        Ok(LocalKey::from_seed(seed))
                    }
                    // Another process created it first: use theirs.
                    Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                        LocalKey::load_or_create(data)
                    }
                    Err(err) => Err(io(err)),
                }
            }
            Err(err) => Err(io(err)),
        }
    }

    fn from_seed(seed: [u8; 32]) -> LocalKey {
        let public = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        let fingerprint = Sha256::digest(public);
        LocalKey {
            seed,
            public,
            kid: format!("local-{}", hex::encode(&fingerprint[..8])),
        }
    }

    /// The key id tokens carry.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key that verifies locally minted tokens.
    pub fn decoding_key(&self) -> Result<DecodingKey, jsonwebtoken::errors::Error> {
        DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(self.public))
    }

    fn encoding_key(&self) -> Result<EncodingKey, jsonwebtoken::errors::Error> {
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(&self.seed);
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(&der)
        );
        EncodingKey::from_ed_pem(pem.as_bytes())
    }

    /// Mints a token for `subject` with `roles` in `roles_claim`, valid for
    /// `ttl` from now.
    pub fn mint(
        &self,
        subject: &str,
        audience: &str,
        roles_claim: &str,
        roles: &[String],
        ttl: std::time::Duration,
    ) -> Result<String, LocalKeyError> {
        let now = chrono::Utc::now().timestamp();
        let mut extra = serde_json::Map::new();
        extra.insert(roles_claim.to_owned(), serde_json::json!(roles));
        let claims = Claims {
            iss: LOCAL_ISSUER,
            sub: subject,
            aud: audience,
            iat: now,
            nbf: now,
            exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
            jti: ulid::Ulid::new().to_string(),
            roles: extra,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(
            &header,
            &claims,
            &self.encoding_key()?,
        )?)
    }
}
