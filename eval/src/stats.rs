//! The one percentile every figure of the command line uses (evaluations and benchmarks).

/// The value at fraction `p` (0–1) of `values` in ascending order, by nearest rank (rounded):
/// the median of `[1, 2, 3]` is 2. `None` when there are no values.
/// Values that compare with nothing (NaN) are left out, so the order is total.
pub fn percentile<T: Copy + PartialOrd>(values: &[T], p: f64) -> Option<T> {
    let mut v: Vec<T> = values.iter().copied().filter(|x| x.partial_cmp(x).is_some()).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let last = v.len().checked_sub(1)?;
    let i = (last as f64 * p.clamp(0.0, 1.0)).round() as usize;
    v.get(i.min(last)).copied()
}

/// [`percentile`] of durations, in milliseconds; 0 when there are none.
pub fn percentile_ms(values: &[std::time::Duration], p: f64) -> f64 {
    percentile(values, p).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn nearest_rank() {
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 0.5), Some(2.0));
        assert_eq!(percentile(&[5, 1, 4, 2, 3], 0.95), Some(5));
        assert_eq!(percentile(&[5, 1, 4, 2, 3], 0.0), Some(1));
        assert_eq!(percentile::<f64>(&[], 0.5), None);
        assert_eq!(percentile(&[f64::NAN, 2.0, 1.0], 1.0), Some(2.0));
        assert_eq!(percentile_ms(&[Duration::from_millis(7)], 0.95), 7.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}
