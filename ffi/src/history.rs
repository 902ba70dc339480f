//! The bounded ring of recent rounds, allocated once when a policy is
//! created: pushing never allocates, the oldest round makes way.

use crate::types::KairosRecord;

/// The last `capacity` records, oldest first when read.
pub struct History {
    records: Vec<KairosRecord>,
    /// Index the next record goes to.
    next: usize,
    /// Records held (≤ capacity).
    len: usize,
}

impl History {
    /// An empty ring for `capacity` (≥ 1) records.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            records: vec![KairosRecord::default(); capacity.max(1)],
            next: 0,
            len: 0,
        }
    }

    /// Keep `record`, dropping the oldest when full.
    pub fn push(&mut self, record: KairosRecord) {
        let capacity = self.records.len();
        self.records[self.next] = record;
        self.next = (self.next + 1) % capacity;
        self.len = (self.len + 1).min(capacity);
    }

    /// Forget every record.
    pub fn clear(&mut self) {
        self.next = 0;
        self.len = 0;
    }

    /// The records, oldest first.
    fn iter(&self) -> impl Iterator<Item = &KairosRecord> {
        let capacity = self.records.len();
        let start = (self.next + capacity - self.len) % capacity;
        (0..self.len).map(move |i| &self.records[(start + i) % capacity])
    }

    /// The records observed after the `after`-th one, oldest first.
    pub fn after(&self, after: u64) -> impl Iterator<Item = &KairosRecord> {
        self.iter().filter(move |r| r.state.rounds_observed > after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::KairosState;

    fn record(seq: u64) -> KairosRecord {
        KairosRecord {
            state: KairosState {
                rounds_observed: seq,
                ..KairosState::default()
            },
            ..KairosRecord::default()
        }
    }

    fn seqs<'a>(it: impl Iterator<Item = &'a KairosRecord>) -> Vec<u64> {
        it.map(|r| r.state.rounds_observed).collect()
    }

    #[test]
    fn keeps_the_last_records_oldest_first() {
        let mut h = History::with_capacity(3);
        assert!(seqs(h.after(0)).is_empty());
        for seq in 1..=5 {
            h.push(record(seq));
        }
        assert_eq!(seqs(h.after(0)), [3, 4, 5]);
        assert_eq!(seqs(h.after(3)), [4, 5]);
        assert!(seqs(h.after(5)).is_empty());
        h.clear();
        assert!(seqs(h.after(0)).is_empty());
        h.push(record(1));
        assert_eq!(seqs(h.after(0)), [1]);
    }
}
