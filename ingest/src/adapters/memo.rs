//! Per-thread memos for classifying short texts that repeat: factor names,
//! event codes and failure details. A source sends a few dozen distinct
//! values of each, millions of times, and classifying one means a dozen or
//! more substring searches over a lower-cased copy; a memo makes it one
//! hash lookup.

use std::cell::RefCell;
use std::collections::HashMap;
use std::thread::LocalKey;

/// A thread's memo of one classification.
///
/// Hashed with foldhash: a lookup hashes a text of a few dozen bytes, for
/// which a streaming xxh3 state costs more to set up than to run. Its
/// seed is random per process, and a memo holds at most [`MAX_ENTRIES`].
pub type Memo<T> = RefCell<HashMap<Box<str>, T, foldhash::fast::RandomState>>;

/// Longer texts are classified every time: they are free text (a
/// message with a user name or an address in it) that seldom repeats.
const MAX_TEXT_BYTES: usize = 96;

/// Bounds a memo's memory. A full memo starts afresh, so a source whose
/// values drift is served by its recent ones.
const MAX_ENTRIES: usize = 512;

/// Declares the thread-local memo for one classification.
macro_rules! memo {
    ($name:ident: $t:ty) => {
        thread_local! {
            static $name: $crate::adapters::memo::Memo<$t> =
                std::cell::RefCell::new(std::collections::HashMap::with_hasher(
                    foldhash::fast::RandomState::default(),
                ));
        }
    };
}
pub(crate) use memo;

/// `classify(text)`, from the memo when the text was seen before.
pub fn memoized<T: Copy + 'static>(
    memo: &'static LocalKey<Memo<T>>,
    text: &str,
    classify: fn(&str) -> T,
) -> T {
    if text.len() > MAX_TEXT_BYTES {
        return classify(text);
    }
    memo.with(|cell| {
        // `classify` never calls back into its own memo, so the borrow is
        // free; should that change, classifying afresh is still right.
        let Ok(mut map) = cell.try_borrow_mut() else {
            return classify(text);
        };
        if let Some(known) = map.get(text) {
            return *known;
        }
        let value = classify(text);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(text.into(), value);
        value
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    memo!(LENGTHS: usize);

    #[test]
    fn memoized_values_equal_fresh_ones_and_the_memo_stays_bounded() {
        for round in 0..3 {
            for i in 0..(MAX_ENTRIES * 2) {
                let text = format!("value {i}");
                assert_eq!(
                    memoized(&LENGTHS, &text, str::len),
                    text.len(),
                    "round {round}"
                );
            }
            assert!(LENGTHS.with(|m| m.borrow().len()) <= MAX_ENTRIES);
        }
        let long = "x".repeat(MAX_TEXT_BYTES + 1);
        assert_eq!(memoized(&LENGTHS, &long, str::len), long.len());
        assert!(LENGTHS.with(|m| !m.borrow().contains_key(long.as_str())));
    }
}
