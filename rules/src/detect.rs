//! The window scans: given one group's events in time order, where the
//! rule's condition holds. Pure functions of the events, so that every
//! evaluation of the same events (batch, incremental, any order of
//! arrival) finds the same hits.
//!
//! Windows are on event time and anchored at their first evidence event:
//! the scan looks for the earliest event at which the condition holds over
//! the window that starts there; the hit's evidence is that window's
//! events, and events within the suppression time after the anchor fold
//! into it (counted as suppressed). The next window starts after them.

use std::collections::HashMap;

/// One event of a group, as the scans see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// µs since the epoch.
    pub time: i64,
    /// The `distinct` or `new_value` field.
    pub value: Option<String>,
    /// `sequence`: a leading event.
    pub first: bool,
    /// `sequence`: a closing event.
    pub then: bool,
    /// `sequence`: a cancelling event.
    pub until: bool,
    /// `travel`: where it happened.
    pub position: Option<(f64, f64)>,
}

/// Where a condition holds: indices into the group's rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The first evidence event.
    pub anchor: usize,
    /// Every evidence event, in time order, the anchor first.
    pub evidence: Vec<usize>,
    /// Of `evidence`, how many were folded in by suppression.
    pub suppressed: u64,
    /// What the numbers were, for the summary.
    pub detail: String,
}

/// The index of the first row at or after `from` whose time is not before
/// `until`.
fn end_of(rows: &[Row], from: usize, until: i64) -> usize {
    from + rows[from..].partition_point(|r| r.time < until)
}

/// Folds rows after `end` that fall before `suppress_until` into a hit.
fn fold(rows: &[Row], end: usize, suppress_until: i64) -> usize {
    end_of(rows, end, suppress_until).max(end)
}

/// `threshold`: at least `count` rows within `window` µs.
pub fn threshold(rows: &[Row], count: u64, window: i64, suppress: i64) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let end = end_of(rows, i, rows[i].time.saturating_add(window));
        if (end - i) as u64 >= count {
            let folded = fold(rows, end, rows[i].time.saturating_add(suppress));
            hits.push(Hit {
                anchor: i,
                evidence: (i..folded).collect(),
                suppressed: (folded - end) as u64,
                detail: format!("{} events within {}", end - i, human(window)),
            });
            i = folded;
        } else {
            i += 1;
        }
    }
    hits
}

/// `distinct`: at least `count` distinct values (each seen between
/// `per_value.0` and `per_value.1` times) and at least `min_events` rows
/// within `window` µs.
pub fn distinct(
    rows: &[Row],
    count: u64,
    min_events: u64,
    per_value: (u64, u64),
    window: i64,
    suppress: i64,
) -> Vec<Hit> {
    let in_band = |n: u64| n >= per_value.0 && n <= per_value.1;
    let mut hits = Vec::new();
    let mut counts: HashMap<&str, u64> = HashMap::new();
    let mut banded = 0u64;
    let (mut i, mut j) = (0usize, 0usize);
    while i < rows.len() {
        // A window holds at least its anchor, so `j` never falls behind `i`
        // and every row removed below was counted.
        let until = rows[i].time.saturating_add(window.max(1));
        while j < rows.len() && rows[j].time < until {
            if let Some(v) = rows[j].value.as_deref() {
                let n = counts.entry(v).or_default();
                let before = in_band(*n);
                *n += 1;
                banded = banded + u64::from(in_band(*n)) - u64::from(before);
            }
            j += 1;
        }
        if banded >= count && (j - i) as u64 >= min_events {
            let folded = fold(rows, j, rows[i].time.saturating_add(suppress));
            hits.push(Hit {
                anchor: i,
                evidence: (i..folded).collect(),
                suppressed: (folded - j) as u64,
                detail: format!(
                    "{banded} distinct values in {} events within {}",
                    j - i,
                    human(window)
                ),
            });
            counts.clear();
            banded = 0;
            i = folded;
            j = folded;
            continue;
        }
        if let Some(v) = rows[i].value.as_deref()
            && let Some(n) = counts.get_mut(v)
        {
            let before = in_band(*n);
            *n -= 1;
            banded = banded + u64::from(in_band(*n)) - u64::from(before);
        }
        i += 1;
    }
    hits
}

/// `sequence`: at least `first_count` leading rows, then a closing row,
/// all within `window` µs; a cancelling row forgets the leading ones.
pub fn sequence(rows: &[Row], first_count: u64, window: i64, suppress: i64) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut leading: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    let mut k = 0;
    while k < rows.len() {
        let row = &rows[k];
        if row.until {
            leading.clear();
        } else if row.then {
            while leading
                .front()
                .is_some_and(|&a| rows[a].time < row.time.saturating_sub(window))
            {
                leading.pop_front();
            }
            if leading.len() as u64 >= first_count
                && let Some(&anchor) = leading.front()
            {
                let mut evidence: Vec<usize> = leading.iter().copied().collect();
                evidence.push(k);
                let end = fold(rows, k + 1, rows[anchor].time.saturating_add(suppress));
                let mut suppressed = 0;
                for (extra, r) in rows.iter().enumerate().take(end).skip(k + 1) {
                    if r.then {
                        evidence.push(extra);
                        suppressed += 1;
                    }
                }
                hits.push(Hit {
                    anchor,
                    detail: format!(
                        "{} leading events, then the closing one, within {}",
                        leading.len(),
                        human(window)
                    ),
                    evidence,
                    suppressed,
                });
                leading.clear();
                k = end;
                continue;
            }
        }
        if row.first && !row.then {
            leading.push_back(k);
        }
        k += 1;
    }
    hits
}

/// `new_value`: rows at or after `from` whose value was not seen in the
/// `lookback` µs before, in a group whose first row is at least `lookback`
/// older. Rows with the same new value within `suppress` fold in.
pub fn new_value(rows: &[Row], lookback: i64, suppress: i64, from: i64) -> Vec<Hit> {
    let Some(history_start) = rows.first().map(|r| r.time) else {
        return Vec::new();
    };
    let mut last_seen: HashMap<&str, i64> = HashMap::new();
    let mut hits = Vec::new();
    let mut open: HashMap<&str, usize> = HashMap::new();
    for (k, row) in rows.iter().enumerate() {
        let Some(value) = row.value.as_deref() else {
            continue;
        };
        if let Some(&h) = open.get(value) {
            let hit: &mut Hit = &mut hits[h];
            if row.time < rows[hit.anchor].time.saturating_add(suppress) {
                hit.evidence.push(k);
                hit.suppressed += 1;
                last_seen.insert(value, row.time);
                continue;
            }
            open.remove(value);
        }
        let seen = last_seen
            .get(value)
            .is_some_and(|&t| t >= row.time.saturating_sub(lookback));
        let old_enough = history_start <= row.time.saturating_sub(lookback);
        if !seen && old_enough && row.time >= from {
            open.insert(value, hits.len());
            hits.push(Hit {
                anchor: k,
                evidence: vec![k],
                suppressed: 0,
                detail: format!("{value:?} not seen within {} before", human(lookback)),
            });
        }
        last_seen.insert(value, row.time);
    }
    hits
}

/// Great-circle distance in km.
pub fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

/// `travel`: consecutive rows at least `min_km` apart at an implied speed of
/// at least `min_kmh`.
pub fn travel(rows: &[Row], min_km: f64, min_kmh: f64, suppress: i64) -> Vec<Hit> {
    let mut hits: Vec<Hit> = Vec::new();
    for k in 1..rows.len() {
        let (Some(a), Some(b)) = (rows[k - 1].position, rows[k].position) else {
            continue;
        };
        let km = haversine_km(a, b);
        let hours = (rows[k].time - rows[k - 1].time) as f64 / 3.6e9;
        let kmh = if hours > 0.0 {
            km / hours
        } else {
            f64::INFINITY
        };
        if km < min_km || kmh < min_kmh {
            continue;
        }
        if let Some(last) = hits.last_mut()
            && rows[k].time < rows[last.anchor].time.saturating_add(suppress)
        {
            if last.evidence.last() != Some(&(k - 1)) {
                last.evidence.push(k - 1);
            }
            last.evidence.push(k);
            last.suppressed += 1;
            continue;
        }
        hits.push(Hit {
            anchor: k - 1,
            evidence: vec![k - 1, k],
            suppressed: 0,
            detail: format!(
                "{km:.0} km in {} ({})",
                human(rows[k].time - rows[k - 1].time),
                if kmh.is_finite() {
                    format!("{kmh:.0} km/h")
                } else {
                    "at the same instant".to_owned()
                }
            ),
        });
    }
    hits
}

/// A duration in µs, for people: `10m`, `1h 30m`.
pub fn human(micros: i64) -> String {
    let secs = (micros / 1_000_000).max(0) as u64;
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(times: &[i64]) -> Vec<Row> {
        times
            .iter()
            .map(|&t| Row {
                time: t * 1_000_000,
                ..Row::default()
            })
            .collect()
    }

    const S: i64 = 1_000_000;

    #[test]
    fn threshold_anchors_at_the_earliest_window_that_holds() {
        // A stray failure, then five within a minute, then one more inside
        // the suppression time, then one after it.
        let rows = at(&[0, 1000, 1010, 1020, 1030, 1040, 1500, 9000]);
        let hits = threshold(&rows, 5, 60 * S, 3600 * S);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].anchor, 1);
        assert_eq!(hits[0].evidence, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(hits[0].suppressed, 1);
        assert!(threshold(&rows, 6, 60 * S, 0).is_empty());
    }

    #[test]
    fn distinct_counts_values_in_their_band() {
        let mut rows = at(&[0, 1, 2, 3, 4, 5, 6]);
        for (row, v) in rows.iter_mut().zip(["a", "b", "c", "c", "c", "d", "e"]) {
            row.value = Some(v.into());
        }
        assert_eq!(distinct(&rows, 5, 0, (1, u64::MAX), 60 * S, 0).len(), 1);
        // With c tried more than twice, only four values are in the band.
        assert!(distinct(&rows, 5, 0, (1, 2), 60 * S, 0).is_empty());
        assert!(distinct(&rows, 4, 8, (1, 2), 60 * S, 0).is_empty());
        assert_eq!(distinct(&rows, 4, 7, (1, 2), 60 * S, 0).len(), 1);
    }

    #[test]
    fn sequence_needs_enough_leading_events_in_the_window() {
        let mut rows = at(&[0, 10, 20, 30, 40, 50]);
        for row in &mut rows[..5] {
            row.first = true;
        }
        rows[5].then = true;
        assert_eq!(
            sequence(&rows, 5, 600 * S, 0)[0].evidence,
            vec![0, 1, 2, 3, 4, 5]
        );
        assert!(sequence(&rows, 6, 600 * S, 0).is_empty());
        assert!(sequence(&rows, 5, 30 * S, 0).is_empty());
        rows[2].until = true;
        rows[2].first = false;
        assert!(sequence(&rows, 3, 600 * S, 0).is_empty());
    }

    #[test]
    fn new_value_needs_history_and_folds_repeats() {
        let day = 86_400;
        let mut rows = at(&[0, day, 20 * day, 20 * day + 60, 21 * day]);
        for (row, v) in rows.iter_mut().zip(["US", "US", "RU", "RU", "US"]) {
            row.value = Some(v.into());
        }
        let hits = new_value(&rows, 14 * day * S, 3600 * S, i64::MIN);
        assert_eq!(hits.len(), 2, "{hits:?}");
        assert_eq!(hits[0].anchor, 2);
        assert_eq!(hits[0].evidence, vec![2, 3]);
        // US was last seen 20 days before: new again.
        assert_eq!(hits[1].anchor, 4);
        // Too little history: nothing.
        assert!(new_value(&rows, 30 * day * S, 0, i64::MIN).is_empty());
    }

    #[test]
    fn travel_needs_distance_and_speed() {
        let mut rows = at(&[0, 3600, 90_000]);
        rows[0].position = Some((40.71, -74.01)); // New York
        rows[1].position = Some((51.51, -0.13)); // London, an hour later
        rows[2].position = Some((51.50, -0.12)); // London, next day
        let hits = travel(&rows, 500.0, 800.0, 0);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].evidence, vec![0, 1]);
        assert!((haversine_km((40.71, -74.01), (51.51, -0.13)) - 5570.0).abs() < 20.0);
    }
}
