//! The audio side of Lotse, for the hotline and later voice in the browser. This crate holds what
//! every voice channel needs before speech recognition and synthesis:
//!
//! - [`g711`]: the telephone codecs (µ-law, A-law) to and from 16-bit PCM;
//! - [`resample`]: sample-rate conversion between 8, 16 and 22.05 kHz (rubato);
//! - `vad`: Silero VAD v6 on ONNX Runtime (both fetched by `lotse models fetch silero-vad`,
//!   the runtime loaded at run time) and [`endpoint`]: the end of a caller's turn from it;
//! - [`conceal`]: packet loss concealment for 8 kHz telephone audio;
//! - [`wav`]: reading and writing WAV files (hound);
//! - [`spoken`]: a reply as it should be spoken — no web addresses, amounts, times, dates and
//!   phone numbers written out the way a person says them — split into sentences, so that the
//!   first can be synthesised and played while the rest is still being synthesised.

#[cfg(feature = "engines")]
pub mod call;
pub mod conceal;
pub mod endpoint;
pub mod g711;
pub mod resample;
pub mod spoken;
#[cfg(feature = "engines")]
pub mod stt;
pub mod telephone;
#[cfg(feature = "engines")]
pub mod tts;
#[cfg(feature = "engines")]
pub mod vad;
pub mod wav;
pub mod whisper_ggml;
