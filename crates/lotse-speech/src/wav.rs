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
    let name = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| WavError::Read { path: name.clone(), source: hound::Error::IoError(e) })?;
    parse(&bytes, &name)
}

/// [`read`] over a WAV file's bytes; `name` names it in errors.
pub fn parse(bytes: &[u8], name: &str) -> Result<(Vec<f32>, u32), WavError> {
    let err = |source| WavError::Read { path: name.to_string(), source };
    if let Some(g711) = parse_g711(bytes) {
        return Ok(g711);
    }
    let mut r = hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(err)?;
    let spec = r.spec();
    let channels = spec.channels.max(1) as usize;
    let samples: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => r.samples::<f32>().collect::<Result<_, _>>().map_err(err)?,
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = (1i64 << (bits - 1)) as f32;
            r.samples::<i32>().map(|s| s.map(|v| v as f32 / scale)).collect::<Result<_, _>>().map_err(err)?
        }
        _ => return Err(WavError::Format(name.to_string())),
    };
    Ok((mix_down(&samples, channels), spec.sample_rate))
}

/// Interleaved samples of `channels` channels, averaged to one.
fn mix_down(samples: &[f32], channels: usize) -> Vec<f32> {
    samples.chunks(channels).map(|c| c.iter().sum::<f32>() / channels as f32).collect()
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
fn parse_g711(bytes: &[u8]) -> Option<(Vec<f32>, u32)> {
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
            return Some((mix_down(&pcm, channels), rate));
        }
        pos = pos.checked_add(8 + (len & 1))?.checked_add(len)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A RIFF/WAVE file of one `fmt ` chunk (tag, channels, rate, bits) and one `data` chunk.
    fn wave(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let block = channels * bits / 8;
        let mut b = b"RIFF".to_vec();
        b.extend((36 + data.len() as u32).to_le_bytes());
        b.extend(b"WAVEfmt ");
        b.extend(16u32.to_le_bytes());
        for v in [tag, channels] {
            b.extend(v.to_le_bytes());
        }
        b.extend(rate.to_le_bytes());
        b.extend((rate * block as u32).to_le_bytes());
        b.extend(block.to_le_bytes());
        b.extend(bits.to_le_bytes());
        b.extend(b"data");
        b.extend((data.len() as u32).to_le_bytes());
        b.extend(data);
        b
    }

    #[test]
    fn pcm_written_reads_back_from_a_file_and_from_bytes() {
        let path = std::env::temp_dir().join(format!("lotse-wav-{}.wav", std::process::id()));
        write(&path, &[0.0, 0.5, -0.5], 16_000).unwrap();
        let (samples, rate) = read(&path).unwrap();
        assert_eq!(rate, 16_000);
        assert_eq!(samples, [0.0, 0.5, -0.5]);
        assert_eq!(parse(&std::fs::read(&path).unwrap(), "x").unwrap(), (samples, rate));
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn telephone_wav_files_are_decoded_and_stereo_is_mixed_down() {
        // µ-law 0xFF and 0x7F are the two zeros; A-law 0xD5 is the smallest positive step.
        let (mu, rate) = parse(&wave(7, 1, 8000, 8, &[0xFF, 0x7F]), "mu").unwrap();
        assert_eq!((mu, rate), (vec![0.0, 0.0], 8000));
        let (a, _) = parse(&wave(6, 2, 8000, 8, &[0xD5, 0xD5]), "a").unwrap();
        assert_eq!(a.len(), 1, "two channels, one sample");
        assert!(a[0] > 0.0 && a[0] < 0.01, "{a:?}");
        let (pcm, _) = parse(&wave(1, 2, 8000, 16, &[0x00, 0x40, 0x00, 0x00]), "pcm").unwrap();
        assert_eq!(pcm, [0.25]);
    }

    #[test]
    fn what_is_not_a_wav_file_is_an_error_that_names_it() {
        for bytes in [&b""[..], b"RIFF", b"RIFF\x04\x00\x00\x00WAVE", b"not audio at all"] {
            let err = parse(bytes, "upload.wav").unwrap_err();
            assert!(err.to_string().starts_with("upload.wav"), "{err}");
        }
        assert!(parse(&wave(1, 1, 8000, 12, &[0, 0]), "odd").is_err());
        assert!(read(Path::new("/nonexistent/lotse.wav")).is_err());
    }
}
