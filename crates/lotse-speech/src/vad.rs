//! Voice activity: Silero VAD v6 (ONNX) on ONNX Runtime, which is loaded at run time from the
//! fetched shared library (never linked, never downloaded by the build). One probability per
//! 32 ms chunk of 16 kHz audio; the model carries its own state from chunk to chunk.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::Session;
use ort::value::Tensor;

/// Samples per chunk at 16 kHz (32 ms), and the context carried from the chunk before.
pub const CHUNK: usize = 512;
const CONTEXT: usize = 64;
pub const RATE: u32 = 16_000;

#[derive(Debug, thiserror::Error)]
pub enum VadError {
    #[error("{0} is missing: fetch it with `lotse models fetch silero-vad`")]
    Missing(PathBuf),
    #[error("ONNX Runtime could not be loaded from {path}: {reason}")]
    Runtime { path: PathBuf, reason: String },
    #[error("the VAD model {path} could not be loaded: {reason}")]
    Model { path: PathBuf, reason: String },
    #[error("the VAD failed: {0}")]
    Run(String),
    #[error("a VAD chunk has {CHUNK} samples, not {0}")]
    Chunk(usize),
}

/// Where the fetched files are, under the models folder.
pub fn files(models: &Path) -> (PathBuf, PathBuf) {
    (models.join("onnxruntime/libonnxruntime.so.1.31.1"), models.join("silero-vad/silero_vad.onnx"))
}

/// Whether both files are fetched.
pub fn available(models: &Path) -> bool {
    let (lib, model) = files(models);
    lib.exists() && model.exists()
}

static RUNTIME: OnceLock<Result<(), String>> = OnceLock::new();

/// Loads ONNX Runtime once per process (the VAD and the Piper voices share it).
pub(crate) fn runtime(lib: &Path) -> Result<(), VadError> {
    RUNTIME
        .get_or_init(|| {
            ort::init_from(lib).map_err(|e| e.to_string())?.with_name("lotse").commit();
            Ok(())
        })
        .clone()
        .map_err(|reason| VadError::Runtime { path: lib.to_path_buf(), reason })
}

/// What a call asks of a voice activity detector: the probability that a 32 ms chunk
/// ([`CHUNK`] samples at 16 kHz) holds speech, chunk after chunk of one stream. [`Vad`] is the
/// real one; a test of the call loop may use a simpler one, so it needs no model.
pub trait Activity {
    fn probability(&mut self, chunk: &[f32]) -> Result<f32, VadError>;
    /// Forgets the stream so far (a new call).
    fn reset(&mut self);
}

impl Activity for Vad {
    fn probability(&mut self, chunk: &[f32]) -> Result<f32, VadError> {
        Vad::probability(self, chunk)
    }

    fn reset(&mut self) {
        Vad::reset(self)
    }
}

/// A voice activity detector for one audio stream (one per call).
pub struct Vad {
    session: Session,
    state: Vec<f32>,
    context: Vec<f32>,
}

impl Vad {
    /// Loads the runtime (once per process) and the model; a missing or broken file is a clear
    /// error here, at start, never in the middle of a call.
    pub fn load(models: &Path) -> Result<Vad, VadError> {
        let (lib, model) = files(models);
        for f in [&lib, &model] {
            if !f.exists() {
                return Err(VadError::Missing(f.clone()));
            }
        }
        runtime(&lib)?;
        let bad = |e: ort::Error| VadError::Model { path: model.clone(), reason: e.to_string() };
        let session = Session::builder()
            .map_err(bad)?
            .with_intra_threads(1)
            .map_err(|e| bad(e.into()))?
            .commit_from_file(&model)
            .map_err(bad)?;
        Ok(Vad { session, state: vec![0.0; 2 * 128], context: vec![0.0; CONTEXT] })
    }

    /// Forgets the stream so far (a new call).
    pub fn reset(&mut self) {
        self.state.iter_mut().for_each(|v| *v = 0.0);
        self.context.iter_mut().for_each(|v| *v = 0.0);
    }

    /// The probability that this 32 ms chunk (512 samples at 16 kHz) holds speech.
    pub fn probability(&mut self, chunk: &[f32]) -> Result<f32, VadError> {
        if chunk.len() != CHUNK {
            return Err(VadError::Chunk(chunk.len()));
        }
        let run = |e: ort::Error| VadError::Run(e.to_string());
        let mut input = Vec::with_capacity(CONTEXT + CHUNK);
        input.extend_from_slice(&self.context);
        input.extend_from_slice(chunk);
        let input = Tensor::from_array(([1usize, CONTEXT + CHUNK], input)).map_err(run)?;
        let state = Tensor::from_array(([2usize, 1, 128], self.state.clone())).map_err(run)?;
        let sr = Tensor::from_array(([1usize], vec![RATE as i64])).map_err(run)?;
        let outputs = self.session.run(ort::inputs!["input" => input, "state" => state, "sr" => sr]).map_err(run)?;
        let (_, p) = outputs[0].try_extract_tensor::<f32>().map_err(run)?;
        let (_, s) = outputs[1].try_extract_tensor::<f32>().map_err(run)?;
        let p = p.first().copied().unwrap_or(0.0);
        let n = self.state.len();
        self.state.copy_from_slice(&s[..n]);
        self.context.copy_from_slice(&chunk[CHUNK - CONTEXT..]);
        Ok(p)
    }
}
