//! The Qwen2 decoder (Qwen2.5 and Qwen2.5-Coder GGUF files) written for Lotse's use: the
//! attention cache lives outside the model, so a cached system prompt can be copied into each
//! request, and the cache is allocated once per request instead of grown token by token.
//! candle-transformers' `quantized_qwen2` keeps its cache inside the model and concatenates it
//! at every step, which allows neither.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor, gguf_file};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

/// The model's shape, from the GGUF metadata.
#[derive(Debug, Clone)]
pub struct Config {
    pub n_layer: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub context: usize,
    pub rms_eps: f64,
    pub rope_base: f32,
}

/// A projection whose weights are kept quantized.
struct Linear {
    weight: Arc<QTensor>,
    matmul: QMatMul,
}

/// candle's CPU kernels are fast for the k-quants and Q8_0 (repacked AVX-512/AVX2 paths) but
/// slow for the legacy 4/5-bit types that the small model's file mostly uses (Q5_0: 4.5 tokens/s
/// generation, against 17.6 after this). Such weights are requantized to Q8_0 once at load: more
/// bytes per weight, but the fast kernel.
fn fast_type(t: QTensor) -> Result<QTensor> {
    if matches!(t.dtype(), GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1) {
        QTensor::quantize(&t.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)
    } else {
        Ok(t)
    }
}

impl Linear {
    fn new(t: QTensor) -> Result<Linear> {
        let weight = Arc::new(fast_type(t)?);
        Ok(Linear { matmul: QMatMul::from_arc(weight.clone())?, weight })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.matmul.forward(x)
    }
}

/// Applies several projections of the same input. Projections of one quantization type share
/// one quantization of the input and one parallel region where candle has a fused kernel (a
/// single-token step spends most of its time in these matrix-vector products).
fn project(x: &Tensor, ls: &[&Linear]) -> Result<Vec<Tensor>> {
    let mut out: Vec<Option<Tensor>> = vec![None; ls.len()];
    let mut done = vec![false; ls.len()];
    for i in 0..ls.len() {
        if done[i] {
            continue;
        }
        let group: Vec<usize> =
            (i..ls.len()).filter(|&j| !done[j] && ls[j].weight.dtype() == ls[i].weight.dtype()).collect();
        let weights: Vec<&QTensor> = group.iter().map(|&j| ls[j].weight.as_ref()).collect();
        let fused = if group.len() > 1 { QTensor::gemv_fused_shared_lhs(&weights, x)? } else { None };
        match fused {
            Some(ts) => {
                for (&j, t) in group.iter().zip(ts) {
                    out[j] = Some(t);
                }
            }
            None => {
                for &j in &group {
                    out[j] = Some(ls[j].forward(x)?);
                }
            }
        }
        for &j in &group {
            done[j] = true;
        }
    }
    // Every slot was filled by its group above.
    Ok(out.into_iter().map(|t| t.expect("every projection computed")).collect())
}

struct Layer {
    attn_norm: RmsNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    bq: Tensor,
    bk: Tensor,
    bv: Tensor,
    o: Linear,
    ffn_norm: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// The weights. Immutable after loading, so one model serves every request.
pub struct Qwen2 {
    pub config: Config,
    embed: Arc<QTensor>,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    cos: Tensor,
    sin: Tensor,
    device: Device,
}

/// The attention keys and values of the positions computed so far, one buffer per layer,
/// allocated for `capacity` positions.
pub struct KvCache {
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    len: usize,
    capacity: usize,
}

impl KvCache {
    pub fn new(config: &Config, capacity: usize, device: &Device) -> Result<KvCache> {
        let shape = (1, config.n_kv_head, capacity, config.head_dim);
        let zeros = || Tensor::zeros(shape, DType::F32, device);
        let k = (0..config.n_layer).map(|_| zeros()).collect::<Result<Vec<_>>>()?;
        let v = (0..config.n_layer).map(|_| zeros()).collect::<Result<Vec<_>>>()?;
        Ok(KvCache { k, v, len: 0, capacity })
    }

    /// Positions computed.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// A new cache of `capacity` positions that starts with this one's contents.
    pub fn fork(&self, config: &Config, capacity: usize, device: &Device) -> Result<KvCache> {
        let mut c = KvCache::new(config, capacity.max(self.len), device)?;
        if self.len > 0 {
            for i in 0..self.k.len() {
                c.k[i].slice_set(&self.k[i].narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
                c.v[i].slice_set(&self.v[i].narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
            }
        }
        c.len = self.len;
        Ok(c)
    }
}

fn rope_tables(config: &Config, device: &Device) -> Result<(Tensor, Tensor)> {
    let half = config.head_dim / 2;
    let inv: Vec<f32> =
        (0..half).map(|i| 1.0 / config.rope_base.powf(2.0 * i as f32 / config.head_dim as f32)).collect();
    let mut angles = Vec::with_capacity(config.context * half);
    for p in 0..config.context {
        angles.extend(inv.iter().map(|f| p as f32 * f));
    }
    let angles = Tensor::from_vec(angles, (config.context, half), device)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// An additive causal mask for `n` new positions after `past` cached ones: 0 where a position
/// may attend, minus infinity where it would look ahead.
fn causal_mask(n: usize, past: usize, device: &Device) -> Result<Tensor> {
    let total = past + n;
    let mask: Vec<f32> =
        (0..n).flat_map(|i| (0..total).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 })).collect();
    Tensor::from_vec(mask, (n, total), device)
}

impl Qwen2 {
    /// Reads the model from a GGUF file's content.
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Qwen2> {
        let meta = |key: &str| {
            content.metadata.get(key).ok_or_else(|| candle_core::Error::Msg(format!("GGUF metadata lacks {key}")))
        };
        let n_head = meta("qwen2.attention.head_count")?.to_u32()? as usize;
        let embedding = meta("qwen2.embedding_length")?.to_u32()? as usize;
        let config = Config {
            n_layer: meta("qwen2.block_count")?.to_u32()? as usize,
            n_head,
            n_kv_head: meta("qwen2.attention.head_count_kv")?.to_u32()? as usize,
            head_dim: embedding / n_head,
            // The rope table is built for this many positions; Lotse's prompts are far shorter
            // than the model's 32k, so the table stays small.
            context: (meta("qwen2.context_length")?.to_u32()? as usize).min(8192),
            rms_eps: meta("qwen2.attention.layer_norm_rms_epsilon")?.to_f32()? as f64,
            rope_base: meta("qwen2.rope.freq_base").and_then(|v| v.to_f32()).unwrap_or(10_000.0),
        };
        let mut tensor = |name: &str| content.tensor(reader, name, device);
        let embed = Arc::new(fast_type(tensor("token_embd.weight")?)?);
        let output = match tensor("output.weight") {
            Ok(t) => QMatMul::from_qtensor(t)?,
            // Small Qwen models tie the output projection to the embedding table.
            Err(_) => QMatMul::from_arc(embed.clone())?,
        };
        let norm = RmsNorm::from_qtensor(tensor("output_norm.weight")?, config.rms_eps)?;
        let mut layers = Vec::with_capacity(config.n_layer);
        for i in 0..config.n_layer {
            let mut t = |name: &str| tensor(&format!("blk.{i}.{name}"));
            layers.push(Layer {
                attn_norm: RmsNorm::from_qtensor(t("attn_norm.weight")?, config.rms_eps)?,
                q: Linear::new(t("attn_q.weight")?)?,
                k: Linear::new(t("attn_k.weight")?)?,
                v: Linear::new(t("attn_v.weight")?)?,
                bq: t("attn_q.bias")?.dequantize(device)?,
                bk: t("attn_k.bias")?.dequantize(device)?,
                bv: t("attn_v.bias")?.dequantize(device)?,
                o: Linear::new(t("attn_output.weight")?)?,
                ffn_norm: RmsNorm::from_qtensor(t("ffn_norm.weight")?, config.rms_eps)?,
                gate: Linear::new(t("ffn_gate.weight")?)?,
                up: Linear::new(t("ffn_up.weight")?)?,
                down: Linear::new(t("ffn_down.weight")?)?,
            });
        }
        let (cos, sin) = rope_tables(&config, device)?;
        Ok(Qwen2 { config, embed, layers, norm, output, cos, sin, device: device.clone() })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Computes `tokens` after what `cache` holds, appends their keys and values to it, and
    /// returns the logits of the last token (shape: vocabulary).
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let c = &self.config;
        let n = tokens.len();
        let past = cache.len;
        if n == 0 || past + n > cache.capacity || past + n > c.context {
            candle_core::bail!("{} tokens after {past} do not fit the cache of {}", n, cache.capacity.min(c.context));
        }
        let total = past + n;
        let ids = Tensor::new(tokens, &self.device)?;
        let mut x = self.embed.embedding(&ids)?.unsqueeze(0)?;
        let cos = self.cos.narrow(0, past, n)?;
        let sin = self.sin.narrow(0, past, n)?;
        let mask = if n > 1 { Some(causal_mask(n, past, &self.device)?) } else { None };
        let n_rep = c.n_head / c.n_kv_head;
        let scale = 1.0 / (c.head_dim as f64).sqrt();
        for (i, l) in self.layers.iter().enumerate() {
            let h = l.attn_norm.forward(&x)?;
            let qkv = project(&h, &[&l.q, &l.k, &l.v])?;
            let heads = |t: &Tensor, bias: &Tensor, n_heads: usize| {
                t.broadcast_add(bias)?.reshape((1, n, n_heads, c.head_dim))?.transpose(1, 2)?.contiguous()
            };
            let q = candle_nn::rotary_emb::rope(&heads(&qkv[0], &l.bq, c.n_head)?, &cos, &sin)?;
            let k = candle_nn::rotary_emb::rope(&heads(&qkv[1], &l.bk, c.n_kv_head)?, &cos, &sin)?;
            let v = heads(&qkv[2], &l.bv, c.n_kv_head)?;
            cache.k[i].slice_set(&k, 2, past)?;
            cache.v[i].slice_set(&v, 2, past)?;
            let keys = cache.k[i].narrow(2, 0, total)?.squeeze(0)?;
            let values = cache.v[i].narrow(2, 0, total)?.squeeze(0)?;
            // Grouped-query attention without copying the keys for every query head: the
            // query heads that share a key head are stacked as rows of one matrix.
            let q = q.reshape((c.n_kv_head, n_rep * n, c.head_dim))?;
            let mut att = (q.matmul(&keys.t()?)? * scale)?;
            if let Some(mask) = &mask {
                att = att.reshape((c.n_kv_head, n_rep, n, total))?.broadcast_add(mask)?.reshape((
                    c.n_kv_head,
                    n_rep * n,
                    total,
                ))?;
            }
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            let y = att.matmul(&values)?;
            let y = y.reshape((1, c.n_head, n, c.head_dim))?.transpose(1, 2)?.reshape((1, n, c.n_head * c.head_dim))?;
            x = (x + l.o.forward(&y)?)?;
            let h = l.ffn_norm.forward(&x)?;
            let gu = project(&h, &[&l.gate, &l.up])?;
            let y = l.down.forward(&(candle_nn::ops::silu(&gu[0])? * &gu[1])?)?;
            x = (x + y)?;
        }
        cache.len = total;
        // Only the last position's next token is needed.
        let last = self.norm.forward(&x.narrow(1, n - 1, 1)?)?;
        self.output.forward(&last)?.flatten_all()
    }
}
