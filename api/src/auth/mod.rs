//! Access control: who the caller is (a bearer JWT, or a signed webhook
//! delivery) and what they may do (permissions mapped from the token's
//! roles claim).

pub mod jwt;
pub mod local;
pub mod webhook;

use std::collections::{BTreeMap, BTreeSet};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::error::ApiError;
pub use jwt::JwtVerifier;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// Post events to `/v1/ingest/{source}`.
    Ingest,
    /// Read events and reports.
    Read,
    /// Export evidence packages and full result sets.
    Export,
    /// Run SQL with `POST /v1/query`.
    Query,
    /// Everything.
    Admin,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 5] = [
        Permission::Ingest,
        Permission::Read,
        Permission::Export,
        Permission::Query,
        Permission::Admin,
    ];

    /// The name used in configuration and tokens.
    pub const fn as_str(self) -> &'static str {
        match self {
            Permission::Ingest => "ingest",
            Permission::Read => "read",
            Permission::Export => "export",
            Permission::Query => "query",
            Permission::Admin => "admin",
        }
    }

    /// Parses a permission name.
    pub fn parse(name: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Who: the token's `sub`, or `webhook:<source>`.
    pub subject: String,
    /// What they may do.
    pub permissions: BTreeSet<Permission>,
    /// How they proved it: `jwt`, `hmac`, `shared_secret`.
    pub method: &'static str,
}

impl Principal {
    /// Refuses with 403 unless the caller holds `needed` (or admin).
    pub fn require(&self, needed: Permission) -> Result<(), ApiError> {
        if self.permissions.contains(&needed) || self.permissions.contains(&Permission::Admin) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this call needs the `{}` permission; the token's roles grant: {}",
                needed.as_str(),
                if self.permissions.is_empty() {
                    "nothing".to_owned()
                } else {
                    self.permissions
                        .iter()
                        .map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )))
        }
    }
}

/// Maps role names (claim values) to permissions.
#[derive(Debug, Clone)]
pub struct RoleMap {
    roles: BTreeMap<String, BTreeSet<Permission>>,
}

impl RoleMap {
    /// From the configuration's `[auth.roles]`; with no entries, each
    /// permission name is a role granting itself.
    pub fn new(config: &BTreeMap<String, Vec<String>>) -> Result<Self, String> {
        let mut roles = BTreeMap::new();
        if config.is_empty() {
            for permission in Permission::ALL {
                roles.insert(permission.as_str().to_owned(), BTreeSet::from([permission]));
            }
        }
        for (role, names) in config {
            let mut set = BTreeSet::new();
            for name in names {
                let permission = Permission::parse(name).ok_or_else(|| {
                    format!(
                        "[auth.roles] \"{role}\": unknown permission {name:?} \
                         (use ingest, read, export, query or admin)"
                    )
                })?;
                set.insert(permission);
            }
            roles.insert(role.clone(), set);
        }
        Ok(RoleMap { roles })
    }

    /// The permissions granted by any of `roles`.
    pub fn permissions<'a>(
        &self,
        roles: impl IntoIterator<Item = &'a str>,
    ) -> BTreeSet<Permission> {
        roles
            .into_iter()
            .filter_map(|role| self.roles.get(role))
            .flatten()
            .copied()
            .collect()
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| {
        ApiError::unauthorized(
            "malformed_authorization",
            "the Authorization header is not ASCII",
        )
    })?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(Some(token.trim())),
        _ => Err(ApiError::unauthorized(
            "malformed_authorization",
            "expected `Authorization: Bearer <token>`",
        )),
    }
}
