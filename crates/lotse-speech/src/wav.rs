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

/// Mono samples in [-1, 1) and their rate. PCM through hound; G.711 (µ-law, A-law) WAV files,
/// which telephone systems write and hound does not read, through [`crate::g711`].
pub fn read(path: &Path) -> Result<(Vec<f32>, u32), WavError> {
    let err = |source| WavError::Read { path: path.display().to_string(), source };
    if let Some(g711) = read_g711(path) {
        return Ok(g711);
    }
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

/// A WAV file with format tag 6 (A-law) or 7 (µ-law), 8 bits, mono or stereo; None for
/// anything else.
fn read_g711(path: &Path) -> Option<(Vec<f32>, u32)> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let (mut pos, mut format) = (12usize, None);
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().ok()?) as usize;
        let body = bytes.get(pos + 8..(pos + 8).saturating_add(len).min(bytes.len()))?;
        if id == b"fmt " && body.len() >= 16 {
            let tag = u16::from_le_bytes([body[0], body[1]]);
            let channels = u16::from_le_bytes([body[2], body[3]]).max(1) as usize;
            let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            let law = match tag {
                6 => crate::g711::Law::A,
                7 => crate::g711::Law::Mu,
                _ => return None,
            };
            format = Some((law, channels, rate));
        } else if id == b"data" {
            let (law, channels, rate) = format?;
            let pcm = crate::resample::to_f32(&law.decode(body));
            let mono = pcm.chunks(channels).map(|c| c.iter().sum::<f32>() / channels as f32).collect();
            return Some((mono, rate));
        }
        pos += 8 + len + (len & 1);
    }
    None
}
