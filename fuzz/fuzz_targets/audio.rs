#![no_main]
//! Audio a city's IT or a telephone system hands Lotse, arbitrary: the first byte picks the
//! reader, the rest is its input. A WAV file (PCM through hound, µ-law and A-law by hand), the
//! G.711 codecs with packet loss concealment over a stream of received and lost frames, and a
//! ggml whisper model file as `lotse models fetch` checks it. Samples or an error, never a panic.
//! Seeds: a few WAV headers and a ggml header (`scripts/fuzz`).

use libfuzzer_sys::fuzz_target;
use lotse_speech::{conceal::Concealer, g711, wav, whisper_ggml};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 3 {
        0 => {
            if let Ok((samples, _rate)) = wav::parse(rest, "fuzz.wav") {
                assert!(samples.len() <= rest.len(), "no more samples than bytes");
            }
        }
        1 => {
            // µ-law or A-law frames of 20 ms; a zero first byte of a frame marks it lost.
            let law = if rest.first().is_some_and(|b| b & 1 == 1) { g711::Law::A } else { g711::Law::Mu };
            let mut concealer = Concealer::new();
            for frame in rest.chunks(160) {
                let pcm = law.decode(frame);
                assert_eq!(law.decode(&law.encode(&pcm)), pcm, "a decoded frame encodes to itself");
                let out = if frame[0] == 0 {
                    concealer.lost(frame.len())
                } else {
                    concealer.received(&lotse_speech::resample::to_f32(&pcm))
                };
                assert_eq!(out.len(), frame.len());
                assert!(out.iter().all(|s| s.is_finite() && s.abs() <= 1.0), "concealment stays in range");
            }
        }
        _ => {
            let _ = whisper_ggml::verify_reader(std::io::Cursor::new(rest), rest.len() as u64);
        }
    }
});
