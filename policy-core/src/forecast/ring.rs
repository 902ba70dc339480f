//! A fixed-capacity ring buffer of `f64` that never allocates.

/// The newest `N` values pushed, oldest dropped first.
#[derive(Debug, Clone, Copy)]
pub struct Ring<const N: usize> {
    values: [f64; N],
    /// Index where the next value goes.
    head: usize,
    len: usize,
}

impl<const N: usize> Default for Ring<N> {
    fn default() -> Self {
        Self {
            values: [0.0; N],
            head: 0,
            len: 0,
        }
    }
}

impl<const N: usize> Ring<N> {
    /// Append a value, dropping the oldest when full. Returns the dropped value.
    pub fn push(&mut self, value: f64) -> Option<f64> {
        let dropped = (self.len == N).then(|| self.values[self.head]);
        self.values[self.head] = value;
        self.head = (self.head + 1) % N;
        self.len = (self.len + 1).min(N);
        dropped
    }

    /// Number of values held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was pushed since the last clear.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value `age` pushes ago: 0 is the newest.
    pub fn back(&self, age: usize) -> Option<f64> {
        (age < self.len).then(|| self.values[(self.head + N - 1 - age) % N])
    }

    /// Drop everything.
    pub fn clear(&mut self) {
        self.len = 0;
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_newest_and_reports_dropped() {
        let mut r = Ring::<3>::default();
        assert_eq!(r.push(1.0), None);
        r.push(2.0);
        r.push(3.0);
        assert_eq!(r.push(4.0), Some(1.0));
        assert_eq!(r.back(0), Some(4.0));
        assert_eq!(r.back(2), Some(2.0));
        assert_eq!(r.back(3), None);
        assert_eq!(r.len(), 3);
    }
}
