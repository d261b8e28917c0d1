//! No input makes an adapter panic: every sample record of every adapter is
//! cut at every byte and mutated at random, and each result must parse,
//! be rejected, or be skipped.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use rand::{Rng, SeedableRng};

use authtrail_ingest::adapters::{self, AdapterOptions, GenericMapping};

/// Bytes that break JSON and syslog structure in interesting ways.
const MUTATIONS: &[u8] = b"{}[]\":,0a-. \\\n";

#[test]
fn truncated_and_mutated_records_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/adapters");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut parsed = 0u64;
    for name in adapters::NAMES {
        let dir = root.join(name);
        let mapping = dir.join("mapping.toml");
        let options = AdapterOptions {
            generic_mapping: mapping.is_file().then(|| {
                GenericMapping::from_toml(&std::fs::read_to_string(&mapping).unwrap()).unwrap()
            }),
            ..AdapterOptions::default()
        };
        let adapter = adapters::build(name, &options).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            if file.ends_with(".expected.json") || file.ends_with(".toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let mut out = Vec::new();
                for cut in (0..=line.len()).filter(|&i| line.is_char_boundary(i)) {
                    let _ = adapter.parse(&line[..cut], &mut out);
                    parsed += 1;
                }
                for _ in 0..200 {
                    let mut bytes = line.as_bytes().to_vec();
                    for _ in 0..rng.random_range(1..4) {
                        let at = rng.random_range(0..bytes.len().max(1));
                        if at < bytes.len() {
                            bytes[at] = MUTATIONS[rng.random_range(0..MUTATIONS.len())];
                        }
                    }
                    if let Ok(mutated) = std::str::from_utf8(&bytes) {
                        let _ = adapter.parse(mutated, &mut out);
                        parsed += 1;
                    }
                }
            }
        }
    }
    assert!(parsed > 10_000, "only {parsed} inputs tried");
}
