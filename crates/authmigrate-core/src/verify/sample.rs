//! A fixed-size sample of a stream whose length is not known in advance.

/// Up to `n` items drawn evenly from everything [`Sample::offer`]ed (reservoir
/// sampling, algorithm R), with a fixed seed: the same stream gives the same sample
/// on every run. Memory: the `n` items kept.
#[derive(Debug, Clone)]
pub struct Sample<T> {
    n: usize,
    seen: u64,
    state: u64,
    items: Vec<T>,
}

impl<T> Sample<T> {
    /// A sample of at most `n` items.
    pub fn new(n: usize) -> Self {
        Self {
            n,
            seen: 0,
            state: 0x5eed_0f5a_4d1e_u64,
            items: Vec::with_capacity(n.min(1024)),
        }
    }

    /// Offers one item: kept with probability `n / seen` (replacing a kept one).
    pub fn offer(&mut self, item: T) {
        self.seen += 1;
        if self.items.len() < self.n {
            self.items.push(item);
            return;
        }
        let j = self.next() % self.seen;
        if let Some(slot) = self.items.get_mut(j as usize) {
            *slot = item;
        }
    }

    /// How many items were offered.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The kept items (in no particular order).
    pub fn into_items(self) -> Vec<T> {
        self.items
    }

    /// splitmix64.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(n: usize, of: u64) -> Vec<u64> {
        let mut s = Sample::new(n);
        for i in 0..of {
            s.offer(i);
        }
        assert_eq!(s.seen(), of);
        let mut v = s.into_items();
        v.sort_unstable();
        v
    }

    #[test]
    fn fewer_items_than_asked_are_all_kept_and_zero_keeps_none() {
        assert_eq!(draw(5, 3), [0, 1, 2]);
        assert!(draw(0, 10).is_empty());
    }

    #[test]
    fn the_sample_is_reproducible_distinct_and_spread_over_the_stream() {
        let a = draw(10, 10_000);
        assert_eq!(a, draw(10, 10_000), "same stream, same sample");
        assert_eq!(a.len(), 10);
        let mut d = a.clone();
        d.dedup();
        assert_eq!(d.len(), 10);
        assert!(a.iter().any(|&i| i >= 5_000), "not only the head: {a:?}");
        // Every position is equally likely: over many draws the mean is near the middle.
        let mut sum = 0u64;
        for round in 0..2_000u64 {
            let mut s = Sample {
                state: round,
                ..Sample::new(1)
            };
            for i in 0..100u64 {
                s.offer(i);
            }
            sum += s.into_items()[0];
        }
        let mean = sum as f64 / 2_000.0;
        assert!((40.0..60.0).contains(&mean), "mean position {mean}");
    }
}
