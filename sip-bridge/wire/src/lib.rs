//! The SIP bridge's wire formats, parsed and written without I/O: SDP offer/answer for one
//! G.711 stream (`sdp`), RTP headers (`rtp`), RFC 4733 key events (`dtmf`) and in-band key
//! tones (`tones`). Everything here reads what a caller's network sends, so it refuses what it
//! cannot take instead of panicking, and allocates only what the input bounds; `fuzz/` runs
//! its parsers on arbitrary input.

pub mod dtmf;
pub mod rtp;
pub mod sdp;
pub mod tones;
