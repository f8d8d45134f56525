//! Whisper from the CTranslate2 format to whisper.cpp's ggml file.
//!
//! The registries carry whisper only as a CTranslate2 `model.bin`; whisper.cpp (and so
//! whisper-rs) reads its own ggml file. No crate converts between the two, so this module does
//! it: the conversion is mechanical.
//!
//! - CTranslate2 (binary version 5 or 6): a spec name and revision, then named variables (rank,
//!   dimensions, data type, byte count, data), then aliases. Whisper's variables are fp16.
//! - ggml: magic, eleven hyper-parameters, the 80-bin mel filter bank, the byte-level vocabulary
//!   in rank order, then the tensors (rank, name length, type, dimensions innermost first, name,
//!   data). Weights of rank 2 and 3 stay fp16; vectors, the conv biases (as n×1) and the
//!   positional embeddings are written as f32, as whisper.cpp allocates them.
//!
//! CTranslate2 fuses the self-attention query, key and value weights into one matrix and the
//! cross-attention key and value into another; whisper.cpp wants them apart. Whisper's key
//! projections have no bias, so the fused biases carry zeros there: the converter checks that
//! and drops them.

use std::collections::HashMap;
use std::io::{Read, Write};

use half::f16;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("the CTranslate2 model is not usable: {0}")]
    Model(String),
    #[error("the mel filter file is not usable: {0}")]
    Mel(String),
    #[error("the vocabulary is not usable: {0}")]
    Vocab(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

const GGML_MAGIC: u32 = 0x6767_6d6c;
const CT2_FLOAT32: u8 = 0;
const CT2_FLOAT16: u8 = 4;

/// One variable of a CTranslate2 model, borrowing its data.
#[derive(Debug)]
pub struct Variable<'a> {
    pub name: String,
    pub dims: Vec<usize>,
    pub dtype: u8,
    pub data: &'a [u8],
}

/// Reads a CTranslate2 `model.bin` (the variables; aliases are not needed here).
pub fn read_ct2(bytes: &[u8]) -> Result<(String, Vec<Variable<'_>>), ConvertError> {
    let bad = |m: &str| ConvertError::Model(m.to_string());
    let mut r = Cursor { bytes, pos: 0 };
    let version = r.u32().ok_or_else(|| bad("too short"))?;
    if !(5..=6).contains(&version) {
        return Err(bad(&format!("binary version {version}, expected 5 or 6")));
    }
    let spec = r.string().ok_or_else(|| bad("no spec name"))?;
    let _revision = r.u32().ok_or_else(|| bad("no spec revision"))?;
    let n = r.u32().ok_or_else(|| bad("no variable count"))? as usize;
    if n > 100_000 {
        return Err(bad("implausible variable count"));
    }
    let mut vars = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string().ok_or_else(|| bad("truncated variable name"))?;
        let rank = r.u8().ok_or_else(|| bad("truncated rank"))? as usize;
        let mut dims = Vec::with_capacity(rank);
        for _ in 0..rank {
            dims.push(r.u32().ok_or_else(|| bad("truncated dimensions"))? as usize);
        }
        let dtype = r.u8().ok_or_else(|| bad("truncated data type"))?;
        let len = r.u32().ok_or_else(|| bad("truncated byte count"))? as usize;
        let data = r.take(len).ok_or_else(|| bad(&format!("{name}: data runs past the end of the file")))?;
        vars.push(Variable { name, dims, dtype, data });
    }
    Ok((spec, vars))
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A length-prefixed string with its terminating NUL.
    fn string(&mut self) -> Option<String> {
        let n = self.u16()? as usize;
        let b = self.take(n)?;
        let b = b.strip_suffix(&[0]).unwrap_or(b);
        String::from_utf8(b.to_vec()).ok()
    }
}

/// The mel filter bank: `n_mels` rows of `n_fft` weights.
pub struct MelFilters {
    pub n_mels: usize,
    pub n_fft: usize,
    pub data: Vec<f32>,
}

/// Reads `mel_{n_mels}.npy` out of whisper's `mel_filters.npz` (a zip of NumPy arrays).
pub fn read_mel_npz(npz: &[u8], n_mels: usize) -> Result<MelFilters, ConvertError> {
    let bad = |m: String| ConvertError::Mel(m);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(npz)).map_err(|e| bad(e.to_string()))?;
    let member = format!("mel_{n_mels}.npy");
    let mut npy = Vec::new();
    zip.by_name(&member).map_err(|e| bad(format!("{member}: {e}")))?.read_to_end(&mut npy)?;
    read_npy_f32(&npy)
        .map(|(shape, data)| MelFilters { n_mels: shape.0, n_fft: shape.1, data })
        .and_then(|m| if m.n_mels == n_mels { Ok(m) } else { Err(bad(format!("{member} has {} rows", m.n_mels))) })
}

/// A two-dimensional little-endian f32 NumPy array (format version 1 to 3, C order).
fn read_npy_f32(npy: &[u8]) -> Result<((usize, usize), Vec<f32>), ConvertError> {
    let bad = |m: &str| ConvertError::Mel(m.to_string());
    if npy.len() < 10 || &npy[..6] != b"\x93NUMPY" {
        return Err(bad("not a NumPy array"));
    }
    let (header_len, start) = match npy[6] {
        1 => (u16::from_le_bytes([npy[8], npy[9]]) as usize, 10),
        2 | 3 if npy.len() >= 12 => (u32::from_le_bytes([npy[8], npy[9], npy[10], npy[11]]) as usize, 12),
        _ => return Err(bad("unknown NumPy format version")),
    };
    let header = npy.get(start..start + header_len).ok_or_else(|| bad("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    if !header.contains("'descr': '<f4'") || header.contains("'fortran_order': True") {
        return Err(bad("expected little-endian f32 in C order"));
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape in the header"))?;
    let dims: Vec<usize> = shape.split(',').filter_map(|d| d.trim().parse().ok()).collect();
    let [rows, cols] = dims[..] else {
        return Err(bad("expected a two-dimensional array"));
    };
    let body = &npy[start + header_len..];
    if body.len() != rows * cols * 4 {
        return Err(bad("the data does not match the shape"));
    }
    let data = body.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Ok(((rows, cols), data))
}

/// Reads a tiktoken file (`base64 rank` per line) into the token bytes in rank order.
pub fn read_tiktoken(text: &str) -> Result<Vec<Vec<u8>>, ConvertError> {
    use base64::Engine;
    let mut tokens: Vec<(usize, Vec<u8>)> = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        let (Some(b64), Some(rank), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ConvertError::Vocab(format!("line {}: expected a token and a rank", i + 1)));
        };
        // Padding is dropped before decoding: whisper's vocabulary has one token written as a
        // bare "=", the empty byte string, which a strict decoder refuses.
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64.trim_end_matches('='))
            .map_err(|e| ConvertError::Vocab(format!("line {}: {e}", i + 1)))?;
        let rank: usize = rank.parse().map_err(|_| ConvertError::Vocab(format!("line {}: bad rank", i + 1)))?;
        tokens.push((rank, bytes));
    }
    tokens.sort_by_key(|(r, _)| *r);
    if tokens.iter().enumerate().any(|(i, (r, _))| *r != i) {
        return Err(ConvertError::Vocab("the ranks are not 0, 1, 2, … without gaps".into()));
    }
    Ok(tokens.into_iter().map(|(_, t)| t).collect())
}

/// What the conversion wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    pub bytes: u64,
    pub tensors: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub n_vocab: usize,
}

/// Writes the ggml file for a CTranslate2 whisper model.
pub fn convert(
    model_bin: &[u8],
    mel_npz: &[u8],
    tiktoken: &str,
    out: &mut impl Write,
) -> Result<Converted, ConvertError> {
    let (spec, vars) = read_ct2(model_bin)?;
    if spec != "WhisperSpec" {
        return Err(ConvertError::Model(format!("spec {spec}, expected WhisperSpec")));
    }
    let by_name: HashMap<&str, &Variable> = vars.iter().map(|v| (v.name.as_str(), v)).collect();
    let get = |name: &str| by_name.get(name).copied().ok_or_else(|| ConvertError::Model(format!("no {name}")));
    let scalar = |name: &str| -> Result<usize, ConvertError> {
        let v = get(name)?;
        match v.data {
            [a] => Ok(*a as usize),
            [a, b] => Ok(u16::from_le_bytes([*a, *b]) as usize),
            [a, b, c, d] => Ok(u32::from_le_bytes([*a, *b, *c, *d]) as usize),
            _ => Err(ConvertError::Model(format!("{name} is not a scalar"))),
        }
    };
    let count_layers =
        |side: &str| (0..).take_while(|i| by_name.keys().any(|k| k.starts_with(&format!("{side}/layer_{i}/")))).count();
    let encoder_layers = count_layers("encoder");
    let decoder_layers = count_layers("decoder");
    let emb = get("decoder/embeddings/weight")?;
    let enc_pe = get("encoder/position_encodings/encodings")?;
    let dec_pe = get("decoder/position_encodings/encodings")?;
    let conv1 = get("encoder/conv1/weight")?;
    let (Some(&n_vocab), Some(&n_text_state)) = (emb.dims.first(), emb.dims.get(1)) else {
        return Err(ConvertError::Model("the token embedding is not a matrix".into()));
    };
    let (Some(&n_audio_ctx), Some(&n_audio_state)) = (enc_pe.dims.first(), enc_pe.dims.get(1)) else {
        return Err(ConvertError::Model("the encoder positions are not a matrix".into()));
    };
    let n_text_ctx = *dec_pe.dims.first().ok_or_else(|| ConvertError::Model("no decoder positions".into()))?;
    let n_mels = *conv1.dims.get(1).ok_or_else(|| ConvertError::Model("conv1 is not 3-D".into()))?;
    let n_audio_head = scalar("encoder/num_heads")?;
    let n_text_head = scalar("decoder/num_heads")?;
    if encoder_layers == 0 || decoder_layers == 0 {
        return Err(ConvertError::Model("no encoder or decoder layers".into()));
    }

    let mel = read_mel_npz(mel_npz, n_mels)?;
    let vocab = read_tiktoken(tiktoken)?;
    if vocab.len() > n_vocab {
        return Err(ConvertError::Vocab(format!("{} tokens for a model of {n_vocab}", vocab.len())));
    }

    let mut w = Counter { inner: out, bytes: 0 };
    w.u32(GGML_MAGIC)?;
    for h in [
        n_vocab,
        n_audio_ctx,
        n_audio_state,
        n_audio_head,
        encoder_layers,
        n_text_ctx,
        n_text_state,
        n_text_head,
        decoder_layers,
        n_mels,
        1, // f16 weights
    ] {
        w.i32(h)?;
    }
    w.i32(mel.n_mels)?;
    w.i32(mel.n_fft)?;
    for v in &mel.data {
        w.write_all(&v.to_le_bytes())?;
    }
    w.i32(vocab.len())?;
    for t in &vocab {
        w.i32(t.len())?;
        w.write_all(t)?;
    }

    let mut t = Tensors { w: &mut w, get: &get, count: 0 };
    t.put("encoder.positional_embedding", enc_pe, None)?;
    t.linear("encoder/conv1", "encoder.conv1")?;
    t.linear("encoder/conv2", "encoder.conv2")?;
    t.norm("encoder/layer_norm", "encoder.ln_post")?;
    for i in 0..encoder_layers {
        let (f, to) = (format!("encoder/layer_{i}"), format!("encoder.blocks.{i}"));
        t.block_self_attention(&f, &to, n_audio_state)?;
        t.block_mlp(&f, &to)?;
    }
    t.put("decoder.positional_embedding", dec_pe, None)?;
    t.put("decoder.token_embedding.weight", emb, None)?;
    t.norm("decoder/layer_norm", "decoder.ln")?;
    for i in 0..decoder_layers {
        let (f, to) = (format!("decoder/layer_{i}"), format!("decoder.blocks.{i}"));
        t.block_self_attention(&f, &to, n_text_state)?;
        t.norm(&format!("{f}/attention/layer_norm"), &format!("{to}.cross_attn_ln"))?;
        t.linear(&format!("{f}/attention/linear_0"), &format!("{to}.cross_attn.query"))?;
        let (k, v) = (format!("{to}.cross_attn.key"), format!("{to}.cross_attn.value"));
        t.fused(&format!("{f}/attention/linear_1"), &[(&k, false), (&v, true)], n_text_state)?;
        t.linear(&format!("{f}/attention/linear_2"), &format!("{to}.cross_attn.out"))?;
        t.block_mlp(&f, &to)?;
    }
    let tensors = t.count;
    w.flush()?;
    Ok(Converted { bytes: w.bytes, tensors, encoder_layers, decoder_layers, n_vocab })
}

/// Writes the renamed tensors.
struct Tensors<'w, 'v, W, G> {
    w: &'w mut Counter<W>,
    get: &'v G,
    count: usize,
}

impl<'a, W: Write, G: Fn(&str) -> Result<&'a Variable<'a>, ConvertError>> Tensors<'_, '_, W, G> {
    fn put(&mut self, name: &str, v: &Variable, rows: Option<(usize, usize)>) -> Result<(), ConvertError> {
        write_tensor(self.w, name, v, rows)?;
        self.count += 1;
        Ok(())
    }

    fn linear(&mut self, from: &str, to: &str) -> Result<(), ConvertError> {
        self.put(&format!("{to}.weight"), (self.get)(&format!("{from}/weight"))?, None)?;
        self.put(&format!("{to}.bias"), (self.get)(&format!("{from}/bias"))?, None)
    }

    fn norm(&mut self, from: &str, to: &str) -> Result<(), ConvertError> {
        self.put(&format!("{to}.weight"), (self.get)(&format!("{from}/gamma"))?, None)?;
        self.put(&format!("{to}.bias"), (self.get)(&format!("{from}/beta"))?, None)
    }

    /// Splits a fused projection into parts of `state` rows; a part marked without bias must
    /// have a zero bias, which is dropped.
    fn fused(&mut self, from: &str, to: &[(&str, bool)], state: usize) -> Result<(), ConvertError> {
        let weight = (self.get)(&format!("{from}/weight"))?;
        let bias = (self.get)(&format!("{from}/bias"))?;
        let rows = state * to.len();
        if weight.dims.first() != Some(&rows) || bias.dims.first() != Some(&rows) {
            return Err(ConvertError::Model(format!("{from}: expected {rows} fused rows")));
        }
        for v in [weight, bias] {
            if v.data.len() != v.dims.iter().product::<usize>() * element_size(v)? {
                return Err(ConvertError::Model(format!("{}: the data does not match the shape", v.name)));
            }
        }
        for (i, (name, has_bias)) in to.iter().enumerate() {
            self.put(&format!("{name}.weight"), weight, Some((i * state, state)))?;
            if *has_bias {
                self.put(&format!("{name}.bias"), bias, Some((i * state, state)))?;
            } else if !rows_are_zero(bias, i * state, state)? {
                return Err(ConvertError::Model(format!("{from}: the key bias is not zero")));
            }
        }
        Ok(())
    }

    fn block_self_attention(&mut self, f: &str, to: &str, state: usize) -> Result<(), ConvertError> {
        self.norm(&format!("{f}/self_attention/layer_norm"), &format!("{to}.attn_ln"))?;
        let (q, k, v) = (format!("{to}.attn.query"), format!("{to}.attn.key"), format!("{to}.attn.value"));
        self.fused(&format!("{f}/self_attention/linear_0"), &[(&q, true), (&k, false), (&v, true)], state)?;
        self.linear(&format!("{f}/self_attention/linear_1"), &format!("{to}.attn.out"))
    }

    fn block_mlp(&mut self, f: &str, to: &str) -> Result<(), ConvertError> {
        self.norm(&format!("{f}/ffn/layer_norm"), &format!("{to}.mlp_ln"))?;
        self.linear(&format!("{f}/ffn/linear_0"), &format!("{to}.mlp.0"))?;
        self.linear(&format!("{f}/ffn/linear_1"), &format!("{to}.mlp.2"))
    }
}

/// Walks a ggml whisper file: header, filters, vocabulary and every tensor's table entry and
/// data, and checks that it ends where the last tensor ends. Returns the number of tensors.
pub fn verify(path: &std::path::Path) -> Result<usize, ConvertError> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    verify_reader(std::io::BufReader::new(file), len)
}

/// [`verify`] over any seekable reader of `len` bytes (a file, or bytes in memory for the fuzzer).
pub fn verify_reader<R: Read + std::io::Seek>(mut f: R, len: u64) -> Result<usize, ConvertError> {
    let bad = |m: String| ConvertError::Model(m);
    let i32_at = |f: &mut R| -> Result<i64, ConvertError> {
        let mut b = [0u8; 4];
        f.read_exact(&mut b).map_err(|_| bad("truncated".into()))?;
        Ok(i32::from_le_bytes(b) as i64)
    };
    if i32_at(&mut f)? as u32 != GGML_MAGIC {
        return Err(bad("wrong magic number".into()));
    }
    let mut hparams = [0i64; 11];
    for h in &mut hparams {
        *h = i32_at(&mut f)?;
    }
    if hparams[..10].iter().any(|h| *h <= 0) {
        return Err(bad("implausible hyper-parameters".into()));
    }
    let (n_mels, n_fft) = (i32_at(&mut f)?, i32_at(&mut f)?);
    if !(1..=1024).contains(&n_mels) || !(1..=4096).contains(&n_fft) {
        return Err(bad("implausible mel filters".into()));
    }
    f.seek_relative(n_mels * n_fft * 4)?;
    let n_tokens = i32_at(&mut f)?;
    if !(0..=hparams[0]).contains(&n_tokens) {
        return Err(bad("implausible vocabulary size".into()));
    }
    for _ in 0..n_tokens {
        let n = i32_at(&mut f)?;
        if !(0..=1024).contains(&n) {
            return Err(bad("implausible token".into()));
        }
        f.seek_relative(n)?;
    }
    let mut tensors = 0;
    loop {
        let pos = f.stream_position()?;
        if pos == len {
            break;
        }
        if pos > len {
            return Err(bad("truncated tensor data".into()));
        }
        let (n_dims, name_len, ftype) = (i32_at(&mut f)?, i32_at(&mut f)?, i32_at(&mut f)?);
        if !(1..=4).contains(&n_dims) || !(1..=256).contains(&name_len) || !(0..=1).contains(&ftype) {
            return Err(bad(format!("bad tensor entry at byte {pos}")));
        }
        let mut elements = 1i64;
        for _ in 0..n_dims {
            let d = i32_at(&mut f)?;
            if d <= 0 {
                return Err(bad(format!("bad tensor dimension at byte {pos}")));
            }
            elements = elements
                .checked_mul(d)
                .filter(|e| *e <= len as i64)
                .ok_or_else(|| bad("tensor larger than the file".into()))?;
        }
        let skip = name_len + elements * if ftype == 0 { 4 } else { 2 };
        if f.stream_position()? as i64 + skip > len as i64 {
            return Err(bad("truncated tensor data".into()));
        }
        f.seek_relative(skip)?;
        tensors += 1;
    }
    if tensors == 0 {
        return Err(bad("no tensors".into()));
    }
    Ok(tensors)
}

fn element_size(v: &Variable) -> Result<usize, ConvertError> {
    match v.dtype {
        CT2_FLOAT16 => Ok(2),
        CT2_FLOAT32 => Ok(4),
        t => Err(ConvertError::Model(format!("{}: data type {t} is not a float", v.name))),
    }
}

fn value(v: &Variable, i: usize) -> f32 {
    let b = &v.data;
    if v.dtype == CT2_FLOAT16 {
        f16::from_le_bytes([b[2 * i], b[2 * i + 1]]).to_f32()
    } else {
        f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
    }
}

fn rows_are_zero(v: &Variable, start: usize, n: usize) -> Result<bool, ConvertError> {
    element_size(v)?;
    Ok((start..start + n).all(|i| value(v, i) == 0.0))
}

/// Writes one tensor, or the rows `start..start + n` of it (first dimension) when `rows` is set.
fn write_tensor<W: Write>(
    w: &mut Counter<W>,
    name: &str,
    v: &Variable,
    rows: Option<(usize, usize)>,
) -> Result<(), ConvertError> {
    let size = element_size(v)?;
    let total: usize = v.dims.iter().product();
    if v.data.len() != total * size {
        return Err(ConvertError::Model(format!("{}: {} bytes for {total} elements", v.name, v.data.len())));
    }
    let mut dims = v.dims.clone();
    let row_len = total / dims.first().copied().unwrap_or(1).max(1);
    let (start, n) = rows.unwrap_or((0, dims.first().copied().unwrap_or(1)));
    if start + n > dims.first().copied().unwrap_or(1) {
        return Err(ConvertError::Model(format!("{}: rows out of range", v.name)));
    }
    if let Some(d) = dims.first_mut() {
        *d = n;
    }
    let conv_bias = name.starts_with("encoder.conv") && name.ends_with(".bias");
    if conv_bias {
        dims.push(1);
    }
    let f32_out = dims.len() < 2 || conv_bias || name.ends_with("positional_embedding");
    w.i32(dims.len())?;
    w.i32(name.len())?;
    w.i32(if f32_out { 0 } else { 1 })?;
    for d in dims.iter().rev() {
        w.i32(*d)?;
    }
    w.write_all(name.as_bytes())?;
    let (first, count) = (start * row_len, n * row_len);
    if f32_out {
        let mut buf = Vec::with_capacity(count * 4);
        for i in first..first + count {
            buf.extend_from_slice(&value(v, i).to_le_bytes());
        }
        w.write_all(&buf)?;
    } else if v.dtype == CT2_FLOAT16 {
        w.write_all(&v.data[first * 2..(first + count) * 2])?;
    } else {
        let mut buf = Vec::with_capacity(count * 2);
        for i in first..first + count {
            buf.extend_from_slice(&f16::from_f32(value(v, i)).to_le_bytes());
        }
        w.write_all(&buf)?;
    }
    Ok(())
}

struct Counter<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Counter<W> {
    fn i32(&mut self, v: usize) -> std::io::Result<()> {
        let v = i32::try_from(v).map_err(|_| std::io::Error::other("value does not fit the ggml header"))?;
        self.write_all(&v.to_le_bytes())
    }
    fn u32(&mut self, v: u32) -> std::io::Result<()> {
        self.write_all(&v.to_le_bytes())
    }
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: usize = 4;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    /// A variable of f16 values `base + i`.
    fn var(out: &mut Vec<u8>, name: &str, dims: &[usize], base: f32) {
        string(out, name);
        out.push(dims.len() as u8);
        for d in dims {
            out.extend_from_slice(&(*d as u32).to_le_bytes());
        }
        let n: usize = dims.iter().product();
        out.push(CT2_FLOAT16);
        out.extend_from_slice(&((n * 2) as u32).to_le_bytes());
        for i in 0..n {
            out.extend_from_slice(&f16::from_f32(base + i as f32).to_le_bytes());
        }
    }

    /// A tiny whisper in CTranslate2's layout: one layer each side, 4 states, 2 mel bins.
    /// `key_bias`: the value in the key part of the fused biases (zero in a real model).
    fn tiny_model(key_bias: f32) -> Vec<u8> {
        let mut vars: Vec<(String, Vec<usize>, f32)> = Vec::new();
        let mut v = |n: &str, d: &[usize]| vars.push((n.to_string(), d.to_vec(), 0.0));
        v("encoder/conv1/weight", &[STATE, 2, 3]);
        v("encoder/conv1/bias", &[STATE]);
        v("encoder/conv2/weight", &[STATE, STATE, 3]);
        v("encoder/conv2/bias", &[STATE]);
        v("encoder/position_encodings/encodings", &[6, STATE]);
        v("decoder/position_encodings/encodings", &[5, STATE]);
        v("decoder/embeddings/weight", &[3, STATE]);
        for side in ["encoder", "decoder"] {
            for n in ["layer_norm", "layer_0/self_attention/layer_norm", "layer_0/ffn/layer_norm"] {
                v(&format!("{side}/{n}/gamma"), &[STATE]);
                v(&format!("{side}/{n}/beta"), &[STATE]);
            }
            v(&format!("{side}/layer_0/self_attention/linear_0/weight"), &[3 * STATE, STATE]);
            v(&format!("{side}/layer_0/self_attention/linear_1/weight"), &[STATE, STATE]);
            v(&format!("{side}/layer_0/self_attention/linear_1/bias"), &[STATE]);
            v(&format!("{side}/layer_0/ffn/linear_0/weight"), &[2 * STATE, STATE]);
            v(&format!("{side}/layer_0/ffn/linear_0/bias"), &[2 * STATE]);
            v(&format!("{side}/layer_0/ffn/linear_1/weight"), &[STATE, 2 * STATE]);
            v(&format!("{side}/layer_0/ffn/linear_1/bias"), &[STATE]);
        }
        v("decoder/layer_0/attention/layer_norm/gamma", &[STATE]);
        v("decoder/layer_0/attention/layer_norm/beta", &[STATE]);
        v("decoder/layer_0/attention/linear_0/weight", &[STATE, STATE]);
        v("decoder/layer_0/attention/linear_0/bias", &[STATE]);
        v("decoder/layer_0/attention/linear_1/weight", &[2 * STATE, STATE]);
        v("decoder/layer_0/attention/linear_2/weight", &[STATE, STATE]);
        v("decoder/layer_0/attention/linear_2/bias", &[STATE]);
        let mut out = Vec::new();
        out.extend_from_slice(&6u32.to_le_bytes());
        string(&mut out, "WhisperSpec");
        out.extend_from_slice(&3u32.to_le_bytes());
        // Fused biases: query part 1.., key part `key_bias`, value part 100...
        let fused = ["encoder/layer_0/self_attention/linear_0/bias", "decoder/layer_0/self_attention/linear_0/bias"];
        out.extend_from_slice(&((vars.len() + fused.len() + 3) as u32).to_le_bytes());
        for (n, d, b) in &vars {
            var(&mut out, n, d, *b);
        }
        for n in fused {
            string(&mut out, n);
            out.push(1);
            out.extend_from_slice(&((3 * STATE) as u32).to_le_bytes());
            out.push(CT2_FLOAT16);
            out.extend_from_slice(&((3 * STATE * 2) as u32).to_le_bytes());
            for i in 0..3 * STATE {
                let x = if i < STATE {
                    1.0 + i as f32
                } else if i < 2 * STATE {
                    key_bias
                } else {
                    100.0 + i as f32
                };
                out.extend_from_slice(&f16::from_f32(x).to_le_bytes());
            }
        }
        // Cross-attention key and value: key part zero, value part 7.
        string(&mut out, "decoder/layer_0/attention/linear_1/bias");
        out.push(1);
        out.extend_from_slice(&((2 * STATE) as u32).to_le_bytes());
        out.push(CT2_FLOAT16);
        out.extend_from_slice(&((2 * STATE * 2) as u32).to_le_bytes());
        for i in 0..2 * STATE {
            out.extend_from_slice(&f16::from_f32(if i < STATE { 0.0 } else { 7.0 }).to_le_bytes());
        }
        for (n, value) in [("encoder/num_heads", 2u16), ("decoder/num_heads", 2u16)] {
            string(&mut out, n);
            out.push(0);
            out.push(2); // int16
            out.extend_from_slice(&2u32.to_le_bytes());
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&0u32.to_le_bytes()); // no aliases
        out
    }

    fn npz(n_mels: usize, n_fft: usize) -> Vec<u8> {
        let header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({n_mels}, {n_fft}), }}");
        let mut npy = b"\x93NUMPY\x01\x00".to_vec();
        npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
        npy.extend_from_slice(header.as_bytes());
        for i in 0..n_mels * n_fft {
            npy.extend_from_slice(&(i as f32).to_le_bytes());
        }
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file(format!("mel_{n_mels}.npy"), options).unwrap();
        std::io::Write::write_all(&mut zip, &npy).unwrap();
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn a_tiny_model_converts_and_its_fused_projections_are_split() {
        let dir = std::env::temp_dir().join(format!("lotse-ggml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut out = Vec::new();
        let done = convert(&tiny_model(0.0), &npz(2, 5), "YQ== 0\nYg== 1\n= 2\n", &mut out).unwrap();
        assert_eq!((done.encoder_layers, done.decoder_layers, done.n_vocab), (1, 1, 3));
        assert_eq!(done.bytes as usize, out.len());
        let path = dir.join("tiny.bin");
        std::fs::write(&path, &out).unwrap();
        assert_eq!(verify(&path).unwrap(), done.tensors, "the file walks to its end");
        let in_memory = verify_reader(std::io::Cursor::new(&out), out.len() as u64).unwrap();
        assert_eq!(in_memory, done.tensors, "bytes in memory read as the file does");
        // Header: magic, n_vocab 3, n_audio_ctx 6, state 4, heads 2, 1 layer, n_text_ctx 5 …
        let word = |i: usize| i32::from_le_bytes(out[4 * i..4 * i + 4].try_into().unwrap());
        assert_eq!(word(0) as u32, GGML_MAGIC);
        assert_eq!((1..=11).map(word).collect::<Vec<_>>(), [3, 6, 4, 2, 1, 5, 4, 2, 1, 2, 1]);
        // The query bias is the first part of the fused bias, as f32; the key bias is gone,
        // the value bias is the third part.
        let find = |name: &str| {
            let pos = out.windows(name.len()).position(|w| w == name.as_bytes()).unwrap_or_else(|| panic!("{name}"));
            pos + name.len()
        };
        let f32_at = |p: usize| f32::from_le_bytes(out[p..p + 4].try_into().unwrap());
        let q = find("encoder.blocks.0.attn.query.bias");
        assert_eq!((0..STATE).map(|i| f32_at(q + 4 * i)).collect::<Vec<_>>(), [1.0, 2.0, 3.0, 4.0]);
        let v = find("encoder.blocks.0.attn.value.bias");
        assert_eq!(f32_at(v), 108.0);
        assert!(out.windows(30).all(|w| w != b"encoder.blocks.0.attn.key.bias"));
        assert_eq!(f32_at(find("decoder.blocks.0.cross_attn.value.bias")), 7.0);
        // A model whose key bias is not zero cannot be converted without changing it.
        let err = convert(&tiny_model(0.5), &npz(2, 5), "YQ== 0\n", &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("key bias"), "{err}");
        // Damage: truncated, and a dimension that would seek backwards.
        std::fs::write(&path, &out[..out.len() - 3]).unwrap();
        assert!(verify(&path).is_err());
        let mut bad = out.clone();
        let entry = find("encoder.positional_embedding") - "encoder.positional_embedding".len() - 8;
        bad[entry..entry + 4].copy_from_slice(&(-9i32).to_le_bytes());
        std::fs::write(&path, &bad).unwrap();
        assert!(verify(&path).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
