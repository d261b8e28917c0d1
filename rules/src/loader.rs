//! Where rules come from: the built-in pack compiled into the binary
//! (`rules/builtin/*.toml`) and the user's own directory of rule files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{Rule, RuleError};

/// The built-in pack: file name and text of every rule in `rules/builtin/`.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "brute_force_user.toml",
        include_str!("../builtin/brute_force_user.toml"),
    ),
    (
        "brute_force_source.toml",
        include_str!("../builtin/brute_force_source.toml"),
    ),
    (
        "distributed_brute_force.toml",
        include_str!("../builtin/distributed_brute_force.toml"),
    ),
    (
        "password_spraying.toml",
        include_str!("../builtin/password_spraying.toml"),
    ),
    (
        "password_spraying_slow.toml",
        include_str!("../builtin/password_spraying_slow.toml"),
    ),
    (
        "distributed_password_spraying.toml",
        include_str!("../builtin/distributed_password_spraying.toml"),
    ),
    (
        "credential_stuffing.toml",
        include_str!("../builtin/credential_stuffing.toml"),
    ),
    (
        "mfa_push_fatigue.toml",
        include_str!("../builtin/mfa_push_fatigue.toml"),
    ),
    (
        "otp_brute_force.toml",
        include_str!("../builtin/otp_brute_force.toml"),
    ),
    (
        "success_after_brute_force.toml",
        include_str!("../builtin/success_after_brute_force.toml"),
    ),
    (
        "impossible_travel.toml",
        include_str!("../builtin/impossible_travel.toml"),
    ),
    (
        "first_time_country.toml",
        include_str!("../builtin/first_time_country.toml"),
    ),
    (
        "domain_not_allowed.toml",
        include_str!("../builtin/domain_not_allowed.toml"),
    ),
    (
        "saml_replay.toml",
        include_str!("../builtin/saml_replay.toml"),
    ),
    (
        "mass_lockout.toml",
        include_str!("../builtin/mass_lockout.toml"),
    ),
];

/// The built-in pack, checked.
pub fn builtin() -> Result<Vec<Rule>, RuleError> {
    let mut rules = Vec::new();
    for (name, text) in BUILTIN {
        match Rule::parse(text, &Path::new("builtin").join(name)) {
            Ok(rule) => rules.push(rule),
            Err(RuleError::Disabled(_)) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(rules)
}

/// Every `*.toml` rule file in `dir` (not recursive), in name order.
pub fn load_dir(dir: &Path) -> Result<Vec<Rule>, Vec<RuleError>> {
    let io = |source| {
        vec![RuleError::Io {
            path: dir.to_owned(),
            source,
        }]
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    paths.sort();
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let loaded = std::fs::read_to_string(&path)
            .map_err(|source| RuleError::Io {
                path: path.clone(),
                source,
            })
            .and_then(|text| Rule::parse(&text, &path));
        match loaded {
            Ok(rule) => rules.push(rule),
            Err(RuleError::Disabled(_)) => {}
            Err(err) => errors.push(err),
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors)
    }
}

/// The built-in pack plus the rules of `dir`; a rule of `dir` with the id of
/// a built-in one replaces it (to tune a threshold, copy the file and edit
/// it). Every error is returned, not just the first.
pub fn load(dir: Option<&Path>) -> Result<Vec<Rule>, Vec<RuleError>> {
    let mut by_id: BTreeMap<String, Rule> = BTreeMap::new();
    for rule in builtin().map_err(|e| vec![e])? {
        by_id.insert(rule.id.clone(), rule);
    }
    if let Some(dir) = dir {
        let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut errors = Vec::new();
        for rule in load_dir(dir)? {
            if let Some(first) = seen.insert(rule.id.clone(), rule.origin.clone()) {
                errors.push(RuleError::DuplicateId {
                    id: rule.id.clone(),
                    first: first.display().to_string(),
                    second: rule.origin.display().to_string(),
                });
                continue;
            }
            by_id.insert(rule.id.clone(), rule);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
    }
    Ok(by_id.into_values().collect())
}
