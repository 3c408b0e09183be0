//! Attention: [`MultiheadAttention`] (as `torch.nn.MultiheadAttention`) and
//! [`scaled_dot_product_attention`] (as the function of that name in
//! `torch.nn.functional`), with additive and boolean masks.
//!
//! # Masks
//!
//! The library is f32-only, so a boolean mask is an f32 tensor read as
//! "zero / nonzero", and [`AttnMask`] says which meaning it has:
//! - [`AttnMask::Additive`]: added to the attention scores (`-inf` blocks a
//!   position), as PyTorch's float masks;
//! - [`AttnMask::Blocked`]: nonzero = the position may NOT be attended to,
//!   as PyTorch's boolean masks in `nn.MultiheadAttention` (`True` = not
//!   allowed);
//! - [`AttnMask::Allowed`]: nonzero = the position may be attended to, as
//!   PyTorch's boolean masks in `F.scaled_dot_product_attention`.
//!
//! # Fully masked rows
//!
//! A query whose every key is blocked has no defined softmax. As in PyTorch,
//! [`MultiheadAttention`] with `need_weights` (the default, also used by
//! [`Module::forward`]) gives NaN for that query's output and weights;
//! without `need_weights`, and in [`scaled_dot_product_attention`], that
//! query's attention weights are zeros (PyTorch's "safe softmax"), so its
//! output is the output projection's bias (or zeros), with zero gradients.

use super::dropout::dropout;
use super::{Linear, Module, init, module::join};
use crate::error::{Error, Result, unwrap};
use crate::sync::Mutex;
use crate::tensor::{Generator, Shape, Tensor, with_global_rng};

/// An attention mask, broadcast against the scores `[.., L, S]` (query
/// positions by key positions).
///
/// The library is f32-only, so a boolean mask is an f32 tensor read as zero
/// / nonzero, and the variant says which meaning it has: `Blocked` is
/// PyTorch's boolean mask of `nn.MultiheadAttention` (`True` = not
/// allowed), `Allowed` that of `F.scaled_dot_product_attention` (`True` =
/// allowed), `Additive` a float mask.
#[derive(Clone, Debug)]
pub enum AttnMask {
    /// Added to the scores; `-inf` blocks a position.
    Additive(Tensor),
    /// Nonzero entries block a position (PyTorch's `True` in
    /// `nn.MultiheadAttention` masks).
    Blocked(Tensor),
    /// Nonzero entries allow a position, zeros block it (PyTorch's `True` in
    /// `F.scaled_dot_product_attention` masks).
    Allowed(Tensor),
}

impl AttnMask {
    /// The mask's tensor.
    pub fn tensor(&self) -> &Tensor {
        match self {
            AttnMask::Additive(t) | AttnMask::Blocked(t) | AttnMask::Allowed(t) => t,
        }
    }

    /// The same kind of mask over `t`.
    fn with(&self, t: Tensor) -> AttnMask {
        match self {
            AttnMask::Additive(_) => AttnMask::Additive(t),
            AttnMask::Blocked(_) => AttnMask::Blocked(t),
            AttnMask::Allowed(_) => AttnMask::Allowed(t),
        }
    }

    /// The mask reshaped (a view where possible).
    fn reshaped(&self, dims: &[usize]) -> Result<AttnMask> {
        Ok(self.with(self.tensor().try_reshape(dims)?))
    }

    /// `scores` with the mask applied (shapes broadcast; checked by callers).
    fn apply(&self, scores: &Tensor) -> Result<Tensor> {
        match self {
            AttnMask::Additive(m) => scores.try_add_tensor(m),
            AttnMask::Blocked(m) => scores.try_masked_fill(m, f32::NEG_INFINITY),
            AttnMask::Allowed(m) => {
                scores.try_masked_fill(&m.try_eq_scalar(0.0)?, f32::NEG_INFINITY)
            }
        }
    }
}

/// `[l, s]` blocking key `j > i` for query `i` (top-left aligned, as
/// PyTorch's `is_causal`).
fn causal_mask(l: usize, s: usize) -> Result<AttnMask> {
    // Straight into a pool tensor (counted against the budget).
    let m = Tensor::try_from_fill(Shape::new(&[l, s])?, |m| {
        for (i, row) in m.chunks_exact_mut(s.max(1)).enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = if j > i { 1.0 } else { 0.0 };
            }
        }
    })?;
    Ok(AttnMask::Blocked(m))
}

/// Softmax over the last dimension; with `safe`, rows whose scores are all
/// `-inf` give zeros (and zero gradients) instead of NaN.
fn softmax_rows(scores: &Tensor, safe: bool) -> Result<Tensor> {
    if !safe {
        return scores.try_softmax(-1);
    }
    let dead = scores
        .detach()
        .try_max_dims([-1], true)?
        .try_eq_scalar(f32::NEG_INFINITY)?;
    scores
        .try_masked_fill(&dead, 0.0)?
        .try_softmax(-1)?
        .try_masked_fill(&dead, 0.0)
}

/// `softmax(q kᵀ * scale + masks) v` on `[.., L, E]`, `[.., S, E]`,
/// `[.., S, Ev]`, with the masks already shaped to broadcast against the
/// scores `[.., L, S]`. Returns the output and the attention weights
/// (after dropout).
fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    masks: &[AttnMask],
    scale: f32,
    safe: bool,
    drop: Option<(f32, &Mutex<Generator>)>,
) -> Result<(Tensor, Tensor)> {
    let mut scores = q
        .try_mul_scalar(scale)?
        .try_matmul(&k.try_transpose(-1, -2)?)?;
    for m in masks {
        scores = m.apply(&scores)?;
    }
    let mut w = softmax_rows(&scores, safe)?;
    if let Some((p, rng)) = drop
        && p > 0.0
    {
        w = dropout(&w, p, &mut rng.lock())?;
    }
    let out = w.try_matmul(v)?;
    Ok((out, w))
}

/// Whether `mask` broadcasts against `scores` without growing it.
fn fits(mask: &[usize], scores: &[usize]) -> bool {
    mask.len() <= scores.len()
        && mask
            .iter()
            .rev()
            .zip(scores.iter().rev())
            .all(|(&m, &s)| m == s || m == 1)
}

/// Scaled dot-product attention, as
/// `torch.nn.functional.scaled_dot_product_attention` without dropout:
/// `softmax(q kᵀ * scale + mask) v` with `q` `[.., L, E]`, `k` `[.., S, E]`,
/// `v` `[.., S, Ev]` (leading dimensions broadcast) and output `[.., L,
/// Ev]`. `scale` defaults to `1 / sqrt(E)`. `mask` must broadcast to the
/// scores `[.., L, S]`; `causal` additionally blocks key `j > i` for query
/// `i` (PyTorch refuses a mask together with `is_causal`; here both apply).
/// Queries with every key blocked get zero weights (PyTorch's safe softmax).
///
/// # Panics
/// On mismatched shapes; see [`try_scaled_dot_product_attention`].
#[track_caller]
pub fn scaled_dot_product_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&AttnMask>,
    causal: bool,
    scale: Option<f32>,
) -> Tensor {
    unwrap(try_scaled_dot_product_attention(
        q, k, v, mask, causal, scale,
    ))
}

/// [`scaled_dot_product_attention`], or `ShapeMismatch` naming
/// `scaled_dot_product_attention` and the two shapes that do not fit.
pub fn try_scaled_dot_product_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&AttnMask>,
    causal: bool,
    scale: Option<f32>,
) -> Result<Tensor> {
    let op = "scaled_dot_product_attention";
    let err = |a: &Tensor, b: &Tensor, detail| {
        Err(Error::ShapeMismatch {
            op,
            lhs: a.shape().into(),
            rhs: b.shape().into(),
            detail,
        })
    };
    if q.rank() < 2 || k.rank() < 2 || v.rank() < 2 {
        return err(q, k, "query, key and value must have at least 2 dimensions");
    }
    let e = q.dims()[q.rank() - 1];
    if k.dims()[k.rank() - 1] != e {
        return err(q, k, "query and key must have the same last dimension");
    }
    let (l, s) = (q.dims()[q.rank() - 2], k.dims()[k.rank() - 2]);
    if v.dims()[v.rank() - 2] != s {
        return err(k, v, "key and value must have the same number of positions");
    }
    // The scores' shape: the broadcast batch dimensions, then [L, S].
    let (qb, kb) = (&q.dims()[..q.rank() - 2], &k.dims()[..k.rank() - 2]);
    let mut scores = alloc::vec::Vec::with_capacity(qb.len().max(kb.len()) + 2);
    for i in (1..=qb.len().max(kb.len())).rev() {
        let a = qb.len().checked_sub(i).map_or(1, |j| qb[j]);
        let b = kb.len().checked_sub(i).map_or(1, |j| kb[j]);
        scores.push(if a == 1 { b } else { a });
    }
    scores.extend_from_slice(&[l, s]);
    let mut masks = heapless::Vec::<AttnMask, 2>::new();
    if let Some(m) = mask {
        if !fits(m.tensor().dims(), &scores) {
            return err(
                m.tensor(),
                q,
                "the mask must broadcast to the scores [.., L, S]",
            );
        }
        let _ = masks.push(m.clone());
    }
    if causal {
        let _ = masks.push(causal_mask(l, s)?);
    }
    let scale = scale.unwrap_or(1.0 / crate::math::sqrtf(e as f32));
    Ok(attend(q, k, v, &masks, scale, true, None)?.0)
}

// ------------------------------------------------------------ module

/// Options of [`MultiheadAttention`], with PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MultiheadAttentionOptions {
    /// Biases on the input and output projections (default true).
    pub bias: bool,
    /// Inputs and outputs are `[N, L, E]` instead of `[L, N, E]` (default
    /// false, as PyTorch).
    pub batch_first: bool,
    /// Dropout probability on the attention weights in training mode
    /// (default 0).
    pub dropout: f32,
    /// Seed of the dropout generator; `None` draws one from the global
    /// generator.
    pub seed: Option<u64>,
}

impl Default for MultiheadAttentionOptions {
    fn default() -> Self {
        MultiheadAttentionOptions {
            bias: true,
            batch_first: false,
            dropout: 0.0,
            seed: None,
        }
    }
}

/// What [`MultiheadAttention::forward_attn`] masks and returns.
#[derive(Clone, Debug)]
pub struct AttnOptions {
    /// Mask over `[L, S]` (every batch element and head) or `[N * H, L, S]`
    /// (batch-major, head-minor, as PyTorch).
    pub attn_mask: Option<AttnMask>,
    /// Mask over the keys of each batch element, `[N, S]` (`[S]` for
    /// unbatched input), usually [`AttnMask::Blocked`] with nonzero at
    /// padding positions.
    pub key_padding_mask: Option<AttnMask>,
    /// Also block key `j > i` for query `i` (combined with `attn_mask` if
    /// both are given; PyTorch's `is_causal` is only a hint that `attn_mask`
    /// is causal).
    pub causal: bool,
    /// Return the attention weights (default true). Also decides how a fully
    /// masked query is treated, as in PyTorch: NaN with `need_weights`, zero
    /// attention without (see [`MultiheadAttention`]).
    pub need_weights: bool,
    /// Average the returned weights over the heads (default true): `[N, L,
    /// S]` instead of `[N, H, L, S]`.
    pub average_attn_weights: bool,
}

impl Default for AttnOptions {
    fn default() -> Self {
        AttnOptions {
            attn_mask: None,
            key_padding_mask: None,
            causal: false,
            need_weights: true,
            average_attn_weights: true,
        }
    }
}

impl AttnOptions {
    /// Sets the attention mask.
    pub fn attn_mask(mut self, m: AttnMask) -> Self {
        self.attn_mask = Some(m);
        self
    }
    /// Sets the key padding mask.
    pub fn key_padding_mask(mut self, m: AttnMask) -> Self {
        self.key_padding_mask = Some(m);
        self
    }
    /// Sets the causal flag.
    pub fn causal(mut self, on: bool) -> Self {
        self.causal = on;
        self
    }
    /// Sets `need_weights`.
    pub fn need_weights(mut self, on: bool) -> Self {
        self.need_weights = on;
        self
    }
    /// Sets `average_attn_weights`.
    pub fn average_attn_weights(mut self, on: bool) -> Self {
        self.average_attn_weights = on;
        self
    }
}

/// Multi-head attention, as `torch.nn.MultiheadAttention(embed_dim,
/// num_heads)` with `kdim = vdim = embed_dim`.
///
/// Inputs query `[L, N, E]`, key and value `[S, N, E]` (`[N, L, E]` and
/// `[N, S, E]` with `batch_first`, or unbatched `[L, E]`, `[S, E]`); output
/// of the query's shape. The projections are those of PyTorch:
/// `in_proj_weight` `[3E, E]` (rows for q, k, v; Xavier-uniform),
/// `in_proj_bias` `[3E]` (zeros), `out_proj.weight` `[E, E]` (as `Linear`),
/// `out_proj.bias` `[E]` (zeros); each head attends over its `E / H`
/// features with scores scaled by `1 / sqrt(E / H)`.
///
/// [`Module::forward`] is self-attention (`x` as query, key and value,
/// without masks); [`forward_attn`](Self::forward_attn) takes separate
/// inputs, masks ([`AttnOptions`]) and returns the attention weights. Errors
/// name `MultiheadAttention` and the offending shapes.
///
/// A query whose every key is masked has no defined softmax. As in PyTorch,
/// with `need_weights` (the default, also used by `forward`) its output and
/// weights are NaN (and NaN reaches the gradients); without `need_weights`
/// its attention weights are zeros (PyTorch's safe softmax), so its output
/// is the output projection's bias, with zero gradients through it.
pub struct MultiheadAttention {
    /// `[3E, E]`: the query, key and value projections stacked.
    pub in_proj_weight: Tensor,
    /// `[3E]`, if the layer has biases.
    pub in_proj_bias: Option<Tensor>,
    /// The output projection (`out_proj.weight`, `out_proj.bias`).
    pub out_proj: Linear,
    num_heads: usize,
    batch_first: bool,
    dropout: f32,
    rng: Mutex<Generator>,
    training: bool,
}

impl Clone for MultiheadAttention {
    fn clone(&self) -> Self {
        MultiheadAttention {
            in_proj_weight: self.in_proj_weight.clone(),
            in_proj_bias: self.in_proj_bias.clone(),
            out_proj: self.out_proj.clone(),
            num_heads: self.num_heads,
            batch_first: self.batch_first,
            dropout: self.dropout,
            rng: Mutex::new(self.rng.lock().clone()),
            training: self.training,
        }
    }
}

impl core::fmt::Debug for MultiheadAttention {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "MultiheadAttention(embed_dim={}, num_heads={}, batch_first={})",
            self.embed_dim(),
            self.num_heads,
            self.batch_first
        )
    }
}

impl MultiheadAttention {
    /// A layer with PyTorch's defaults (biases, `[L, N, E]` inputs, no
    /// dropout).
    ///
    /// # Panics
    /// If `num_heads` does not divide `embed_dim`; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(embed_dim: usize, num_heads: usize) -> MultiheadAttention {
        unwrap(Self::try_new(
            embed_dim,
            num_heads,
            MultiheadAttentionOptions::default(),
        ))
    }

    /// A layer with the given options.
    ///
    /// # Panics
    /// On invalid arguments; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn with_options(
        embed_dim: usize,
        num_heads: usize,
        opts: MultiheadAttentionOptions,
    ) -> MultiheadAttention {
        unwrap(Self::try_new(embed_dim, num_heads, opts))
    }

    /// A layer initialised as PyTorch does, or `InvalidArgument` naming
    /// `MultiheadAttention` if `num_heads` is 0 or does not divide
    /// `embed_dim`, or `dropout` is outside `[0, 1]`.
    pub fn try_new(
        embed_dim: usize,
        num_heads: usize,
        opts: MultiheadAttentionOptions,
    ) -> Result<MultiheadAttention> {
        let bad = |detail| {
            Err(Error::InvalidArgument {
                op: "MultiheadAttention",
                detail,
            })
        };
        if num_heads == 0 || !embed_dim.is_multiple_of(num_heads) {
            return bad("embed_dim must be divisible by num_heads");
        }
        if !(0.0..=1.0).contains(&opts.dropout) {
            return bad("dropout probability has to be between 0 and 1");
        }
        let mut w = Tensor::try_zeros([3 * embed_dim, embed_dim])?;
        init::xavier_uniform_(&mut w, 1.0)?;
        let in_proj_bias = if opts.bias {
            Some(Tensor::try_zeros([3 * embed_dim])?.with_requires_grad())
        } else {
            None
        };
        let mut out_proj = Linear::try_new(embed_dim, embed_dim, opts.bias)?;
        if let Some(b) = &mut out_proj.bias {
            init::constant_(b, 0.0)?;
        }
        let seed = opts
            .seed
            .unwrap_or_else(|| with_global_rng(|g| g.next_u64()));
        Ok(MultiheadAttention {
            in_proj_weight: w.with_requires_grad(),
            in_proj_bias,
            out_proj,
            num_heads,
            batch_first: opts.batch_first,
            dropout: opts.dropout,
            rng: Mutex::new(Generator::new(seed)),
            training: true,
        })
    }

    /// `embed_dim` (E).
    pub fn embed_dim(&self) -> usize {
        self.in_proj_weight.dims()[1]
    }

    /// `num_heads` (H).
    pub fn num_heads(&self) -> usize {
        self.num_heads
    }

    /// Whether inputs are `[N, L, E]`.
    pub fn batch_first(&self) -> bool {
        self.batch_first
    }

    /// `x Wᵀ + b` for rows `part * E .. (part + n) * E` of the input
    /// projection.
    fn project(&self, x: &Tensor, part: usize, n: usize) -> Result<Tensor> {
        let e = self.embed_dim();
        let w = self.in_proj_weight.try_narrow(0, part * e, n * e)?;
        let y = x.try_matmul(&w.try_t()?)?;
        match &self.in_proj_bias {
            Some(b) => y.try_add_tensor(&b.try_narrow(0, part * e, n * e)?),
            None => Ok(y),
        }
    }

    /// Attention of `query` over `key`/`value` (shapes in the [type
    /// docs](Self)) with the masks in `opts`. Returns the output (the
    /// query's shape) and, if `opts.need_weights`, the attention weights
    /// `[N, L, S]` averaged over heads (`[N, H, L, S]` without
    /// `average_attn_weights`; no `N` for unbatched input), after dropout.
    ///
    /// # Panics
    /// On mismatched shapes; see [`try_forward_attn`](Self::try_forward_attn).
    #[track_caller]
    pub fn forward_attn(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        opts: &AttnOptions,
    ) -> (Tensor, Option<Tensor>) {
        unwrap(self.try_forward_attn(query, key, value, opts))
    }

    /// [`forward_attn`](Self::forward_attn), or `ShapeMismatch` naming
    /// `MultiheadAttention` and two shapes that do not fit.
    pub fn try_forward_attn(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        opts: &AttnOptions,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let op = "MultiheadAttention";
        let err = |a: &Tensor, b: &Shape, detail| {
            Err(Error::ShapeMismatch {
                op,
                lhs: a.shape().into(),
                rhs: (b.clone()).into(),
                detail,
            })
        };
        let (e, h) = (self.embed_dim(), self.num_heads);
        let batched = query.rank() == 3;
        if !batched && query.rank() != 2 {
            return err(
                query,
                self.in_proj_weight.shape(),
                "the query must be [L, N, E], [N, L, E] (batch_first) or [L, E]",
            );
        }
        if key.rank() != query.rank() || value.rank() != query.rank() {
            return err(
                query,
                key.shape(),
                "query, key and value must have the same rank",
            );
        }
        if query.dims()[query.rank() - 1] != e
            || key.dims()[key.rank() - 1] != e
            || value.dims()[value.rank() - 1] != e
        {
            return err(
                query,
                self.in_proj_weight.shape(),
                "query, key and value must end in embed_dim",
            );
        }
        if key.dims() != value.dims() {
            return err(key, value.shape(), "key and value must have the same shape");
        }
        // Batch-first views [N, L, E] and [N, S, E].
        let to_nle = |t: &Tensor| -> Result<Tensor> {
            if !batched {
                t.try_unsqueeze(0)
            } else if self.batch_first {
                Ok(t.clone())
            } else {
                t.try_transpose(0, 1)
            }
        };
        let (q_in, k_in, v_in) = (to_nle(query)?, to_nle(key)?, to_nle(value)?);
        let (n, l, s) = (q_in.dims()[0], q_in.dims()[1], k_in.dims()[1]);
        if k_in.dims()[0] != n {
            return err(
                query,
                key.shape(),
                "query and key must have the same batch size",
            );
        }
        let self_attention = query.id() == key.id() && key.id() == value.id();
        let (q, k, v) = if self_attention {
            let qkv = self.project(&q_in, 0, 3)?;
            (
                qkv.try_narrow(2, 0, e)?,
                qkv.try_narrow(2, e, e)?,
                qkv.try_narrow(2, 2 * e, e)?,
            )
        } else {
            (
                self.project(&q_in, 0, 1)?,
                self.project(&k_in, 1, 1)?,
                self.project(&v_in, 2, 1)?,
            )
        };
        let hd = e / h;
        // [N, T, E] -> [N, H, T, hd]
        let heads = |t: &Tensor, len: usize| -> Result<Tensor> {
            t.try_reshape([n, len, h, hd])?.try_permute([0, 2, 1, 3])
        };
        let (q, k, v) = (heads(&q, l)?, heads(&k, s)?, heads(&v, s)?);
        // Masks shaped to broadcast against the scores [N, H, L, S].
        let mut masks = heapless::Vec::<AttnMask, 3>::new();
        if let Some(m) = &opts.attn_mask {
            let md = m.tensor().dims();
            let m = if md == [l, s] {
                m.clone()
            } else if md == [n * h, l, s] {
                m.reshaped(&[n, h, l, s])?
            } else {
                return err(
                    m.tensor(),
                    &Shape::new(&[n * h, l, s])?,
                    "attn_mask must be [L, S] or [N * num_heads, L, S]",
                );
            };
            let _ = masks.push(m);
        }
        if let Some(m) = &opts.key_padding_mask {
            let want: &[usize] = if batched { &[n, s] } else { &[s] };
            if m.tensor().dims() != want {
                return err(
                    m.tensor(),
                    &Shape::new(want)?,
                    "key_padding_mask must be [N, S] ([S] unbatched)",
                );
            }
            let _ = masks.push(m.reshaped(&[n, 1, 1, s])?);
        }
        if opts.causal {
            let _ = masks.push(causal_mask(l, s)?);
        }
        let drop = (self.training && self.dropout > 0.0).then_some((self.dropout, &self.rng));
        let scale = crate::math::sqrtf(1.0 / hd as f32);
        let (out, w) = attend(&q, &k, &v, &masks, scale, !opts.need_weights, drop)?;
        // [N, H, L, hd] -> [N, L, E] -> output projection.
        let out = out.try_permute([0, 2, 1, 3])?.try_reshape([n, l, e])?;
        let out = self.out_proj.try_forward(&out)?;
        let out = if !batched {
            out.try_squeeze_dim(0)?
        } else if self.batch_first {
            out
        } else {
            out.try_transpose(0, 1)?
        };
        let weights = if opts.need_weights {
            let w = if opts.average_attn_weights {
                w.try_mean_dims([1], false)?
            } else {
                w
            };
            Some(if batched { w } else { w.try_squeeze_dim(0)? })
        } else {
            None
        };
        Ok((out, weights))
    }
}

impl Module for MultiheadAttention {
    /// Self-attention: `x` is query, key and value; no masks.
    fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.try_forward_attn(x, x, x, &AttnOptions::default())?.0)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        f(&join(prefix, "in_proj_weight"), &self.in_proj_weight);
        if let Some(b) = &self.in_proj_bias {
            f(&join(prefix, "in_proj_bias"), b);
        }
        self.out_proj.visit_params(&join(prefix, "out_proj."), f);
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor)) {
        f(&join(prefix, "in_proj_weight"), &mut self.in_proj_weight);
        if let Some(b) = &mut self.in_proj_bias {
            f(&join(prefix, "in_proj_bias"), b);
        }
        self.out_proj
            .visit_params_mut(&join(prefix, "out_proj."), f);
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        // A LoRA adapter on `out_proj` has its own dropout.
        self.out_proj.set_training(training);
    }

    fn is_training(&self) -> bool {
        self.training
    }

    /// `out_proj`, the one `Linear` layer (the input projection is a packed
    /// weight, as in PyTorch), so LoRA can target `"out_proj"` as PEFT can.
    fn visit_linears(&self, prefix: &str, f: &mut dyn FnMut(&str, &Linear)) {
        self.out_proj.visit_linears(&join(prefix, "out_proj."), f);
    }

    fn visit_linears_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Linear)) {
        self.out_proj
            .visit_linears_mut(&join(prefix, "out_proj."), f);
    }

    fn visit_rng_states(&self, prefix: &str, f: &mut dyn FnMut(&str, [u64; 4])) {
        f(&join(prefix, "dropout_rng"), self.rng.lock().state());
    }

    fn set_rng_state(&mut self, name: &str, state: [u64; 4]) -> bool {
        if name != "dropout_rng" {
            return false;
        }
        *self.rng.lock() = Generator::from_state(state);
        true
    }
}
