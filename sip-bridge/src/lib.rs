//! The SIP bridge: Lotse on the city's telephone line. See ARCHITECTURE.md ("The hotline").

pub mod dtmf;
pub mod jitter;
pub mod rtp;
pub mod sdp;
