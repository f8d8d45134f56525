//! WAV files in and out (hound): mono 16-bit PCM at any supported rate; stereo is mixed down.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("{path}: {source}")]
    Read { path: String, source: hound::Error },
    #[error("{0}: only 8-, 16-, 24- or 32-bit integer or 32-bit float WAV files are supported")]
    Format(String),
    #[error("writing {path}: {source}")]
    Write { path: String, source: hound::Error },
}

/// Mono samples in [-1, 1) and their rate.
pub fn read(path: &Path) -> Result<(Vec<f32>, u32), WavError> {
    let err = |source| WavError::Read { path: path.display().to_string(), source };
    let mut r = hound::WavReader::open(path).map_err(err)?;
    let spec = r.spec();
    let channels = spec.channels.max(1) as usize;
    let samples: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => r.samples::<f32>().collect::<Result<_, _>>().map_err(err)?,
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = (1i64 << (bits - 1)) as f32;
            r.samples::<i32>().map(|s| s.map(|v| v as f32 / scale)).collect::<Result<_, _>>().map_err(err)?
        }
        _ => return Err(WavError::Format(path.display().to_string())),
    };
    let mono = samples.chunks(channels).map(|c| c.iter().sum::<f32>() / channels as f32).collect();
    Ok((mono, spec.sample_rate))
}

/// Writes mono 16-bit PCM.
pub fn write(path: &Path, samples: &[f32], rate: u32) -> Result<(), WavError> {
    let err = |source| WavError::Write { path: path.display().to_string(), source };
    let spec =
        hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).map_err(err)?;
    for s in crate::resample::to_i16(samples) {
        w.write_sample(s).map_err(err)?;
    }
    w.finalize().map_err(err)
}
