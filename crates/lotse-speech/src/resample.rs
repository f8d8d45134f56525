//! Sample-rate conversion between the rates voice needs: 8 kHz (telephone), 16 kHz (speech
//! recognition), 22.05 kHz (Piper voices), with rubato's FFT resampler (band-limited, so that
//! nothing above the lower rate's Nyquist frequency folds back as noise).

use rubato::{FftFixedIn, Resampler};

/// Rates accepted, in Hz.
pub const RATES: std::ops::RangeInclusive<u32> = 4_000..=48_000;

#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    #[error("a sample rate of {0} Hz is not supported (4,000 to 48,000 Hz)")]
    UnsupportedRate(u32),
    #[error("resampling failed: {0}")]
    Failed(String),
}

fn failed(e: impl std::fmt::Display) -> ResampleError {
    ResampleError::Failed(e.to_string())
}

/// A converter for a stream of equal frames (20 ms of the telephone's 8 kHz to the
/// recogniser's 16 kHz on a live line). Its output lags its input by the filter's few
/// milliseconds, and frames join without a seam.
pub struct Stream {
    r: FftFixedIn<f32>,
    frame: usize,
}

impl Stream {
    pub fn new(from: u32, to: u32, frame: usize) -> Result<Stream, ResampleError> {
        for r in [from, to] {
            if !RATES.contains(&r) {
                return Err(ResampleError::UnsupportedRate(r));
            }
        }
        let r = FftFixedIn::<f32>::new(from as usize, to as usize, frame, 1, 1).map_err(failed)?;
        Ok(Stream { r, frame })
    }

    /// One frame of `frame` samples (a shorter one is padded with silence, a longer one cut).
    pub fn process(&mut self, samples: &[f32]) -> Result<Vec<f32>, ResampleError> {
        let mut input = samples[..samples.len().min(self.frame)].to_vec();
        input.resize(self.frame, 0.0);
        let out = self.r.process(&[&input], None).map_err(failed)?;
        Ok(out.into_iter().next().unwrap_or_default())
    }
}

/// Converts mono audio from `from` Hz to `to` Hz. The result has `len × to / from` samples
/// (rounded up), aligned with the input (the resampler's delay is removed).
pub fn convert(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, ResampleError> {
    for r in [from, to] {
        if !RATES.contains(&r) {
            return Err(ResampleError::UnsupportedRate(r));
        }
    }
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let mut r = FftFixedIn::<f32>::new(from as usize, to as usize, 1024, 2, 1).map_err(failed)?;
    let delay = r.output_delay();
    let want = (samples.len() as u64 * to as u64).div_ceil(from as u64) as usize;
    let mut out: Vec<f32> = Vec::with_capacity(want + delay + 2048);
    let mut pos = 0;
    while samples.len() - pos >= r.input_frames_next() {
        let n = r.input_frames_next();
        let o = r.process(&[&samples[pos..pos + n]], None).map_err(failed)?;
        out.extend_from_slice(&o[0]);
        pos += n;
    }
    if pos < samples.len() {
        let o = r.process_partial(Some(&[&samples[pos..]]), None).map_err(failed)?;
        out.extend_from_slice(&o[0]);
    }
    // Flush what the resampler still holds.
    while out.len() < want + delay {
        let o = r.process_partial::<&[f32]>(None, None).map_err(failed)?;
        if o[0].is_empty() {
            break;
        }
        out.extend_from_slice(&o[0]);
    }
    out.drain(..delay.min(out.len()));
    out.resize(want, 0.0);
    Ok(out)
}

/// 16-bit PCM to floats in [-1, 1).
pub fn to_f32(samples: &[i16]) -> Vec<f32> {
    samples.iter().map(|&s| s as f32 / 32768.0).collect()
}

/// Floats to 16-bit PCM, clipped.
pub fn to_i16(samples: &[f32]) -> Vec<i16> {
    samples.iter().map(|&s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_of_frames_doubles_the_rate_without_seams() {
        let mut st = Stream::new(8_000, 16_000, 160).unwrap();
        let tone: Vec<f32> =
            (0..8_000).map(|i| (i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 8_000.0).sin() * 0.5).collect();
        let mut out = Vec::new();
        for f in tone.chunks(160) {
            let o = st.process(f).unwrap();
            assert_eq!(o.len(), 320);
            out.extend(o);
        }
        // After the filter's delay, a clean 440 Hz tone at 16 kHz: no clicks at frame joins.
        let steady = &out[2_000..];
        let max_step = steady.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0f32, f32::max);
        let ideal = 0.5 * 2.0 * std::f32::consts::PI * 440.0 / 16_000.0;
        assert!(max_step < ideal * 1.2, "largest step {max_step}, a clean tone's {ideal}");
    }

    fn tone(hz: f32, rate: u32, seconds: f32) -> Vec<f32> {
        let n = (rate as f32 * seconds) as usize;
        (0..n).map(|i| 0.5 * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin()).collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
    }

    /// Upward zero crossings per second: the tone's frequency.
    fn frequency(x: &[f32], rate: u32) -> f32 {
        let ups = x.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        ups as f32 * rate as f32 / x.len() as f32
    }

    #[test]
    fn telephone_to_recognition_and_back() {
        let x = tone(1000.0, 8000, 1.0);
        let up = convert(&x, 8000, 16000).unwrap();
        assert_eq!(up.len(), 16000);
        assert!((frequency(&up[800..15200], 16000) - 1000.0).abs() < 10.0);
        assert!((rms(&up[800..15200]) - rms(&x)).abs() < 0.02, "{} vs {}", rms(&up), rms(&x));
        let down = convert(&up, 16000, 8000).unwrap();
        assert_eq!(down.len(), 8000);
        // Aligned: the round trip matches the original sample by sample (away from the edges).
        let err = down[400..7600].iter().zip(&x[400..7600]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(err < 0.02, "round trip error {err}");
    }

    #[test]
    fn what_the_lower_rate_cannot_hold_is_filtered_not_folded() {
        // 6 kHz does not fit under 8 kHz's Nyquist frequency (4 kHz).
        let x = tone(6000.0, 16000, 1.0);
        let down = convert(&x, 16000, 8000).unwrap();
        assert!(rms(&down[400..7600]) < 0.02, "aliasing: rms {}", rms(&down));
    }

    #[test]
    fn piper_rate_to_telephone_and_bad_rates() {
        let x = tone(440.0, 22050, 0.5);
        let y = convert(&x, 22050, 8000).unwrap();
        assert_eq!(y.len(), 4000);
        assert!((frequency(&y[200..3800], 8000) - 440.0).abs() < 10.0);
        assert!(matches!(convert(&x, 22050, 1000), Err(ResampleError::UnsupportedRate(1000))));
        assert!(convert(&[], 8000, 16000).unwrap().is_empty());
        assert_eq!(to_i16(&to_f32(&[0, 1000, -32768, 32767])), vec![0, 1000, -32768, 32767]);
        assert_eq!(to_i16(&[2.0, -2.0]), vec![32767, -32768]);
    }
}
