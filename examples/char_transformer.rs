//! A small character-level language model (a GPT-style decoder) trained on
//! the Book of Genesis (KJV, `examples/data/genesis.txt`): token and learned
//! positional embeddings, pre-norm transformer blocks with causal
//! self-attention, AdamW with a linear warm-up and a cosine decay, clipped
//! gradients, random training windows. Reports train and held-out loss, saves
//! the weights, reloads them into a fresh model and checks the reloaded model
//! gives the same logits, then samples text.
//!
//! `cargo run --release --example char_transformer` (about a minute).
//!
//! With `TRAIN_STATION_CI=1` it trains for a handful of steps only.

use std::path::PathBuf;
use std::time::Instant;

use train_station::io::{load_module, save_module};
use train_station::nn::loss::{CrossEntropyOptions, cross_entropy};
use train_station::nn::{
    AttnOptions, Embedding, Gelu, LayerNorm, Linear, Module, MultiheadAttention,
    MultiheadAttentionOptions, Sequential,
};
use train_station::optim::{
    AdamW, AdamWConfig, CosineAnnealingLr, LinearLr, LrScheduler, Optimizer, SequentialLr,
    clip_grad_norm,
};
use train_station::{Error, Generator, Result, Tensor, manual_seed, no_grad};

/// Sizes of the model and of the training run.
struct Config {
    /// Context length (tokens per window).
    context: usize,
    /// Width of the residual stream.
    dim: usize,
    heads: usize,
    layers: usize,
    batch: usize,
    steps: usize,
    warmup: usize,
    lr: f32,
    /// Report every this many steps.
    every: usize,
    /// Held-out batches per evaluation.
    eval_batches: usize,
    /// Characters to sample.
    sample: usize,
}

/// One pre-norm transformer block:
/// `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))` with causal self-attention.
/// Parameter names follow PyTorch (`ln_1.weight`, `attn.in_proj_weight`,
/// `attn.out_proj.weight`, `mlp.0.weight`, `mlp.2.bias`, ...).
struct Block {
    ln_1: LayerNorm,
    attn: MultiheadAttention,
    ln_2: LayerNorm,
    /// `Linear(dim, 4 dim)`, `GELU`, `Linear(4 dim, dim)`.
    mlp: Sequential,
}

impl Block {
    fn new(dim: usize, heads: usize) -> Block {
        Block {
            ln_1: LayerNorm::new(&[dim]),
            attn: MultiheadAttention::with_options(
                dim,
                heads,
                MultiheadAttentionOptions {
                    batch_first: true,
                    ..MultiheadAttentionOptions::default()
                },
            ),
            ln_2: LayerNorm::new(&[dim]),
            mlp: Sequential::new()
                .with(Linear::new(dim, 4 * dim))
                .with(Gelu::default())
                .with(Linear::new(4 * dim, dim)),
        }
    }
}

impl Module for Block {
    /// `[batch, time, dim]` to `[batch, time, dim]`.
    fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.ln_1.try_forward(x)?;
        let causal = AttnOptions {
            causal: true,
            need_weights: false,
            ..AttnOptions::default()
        };
        let (a, _) = self.attn.try_forward_attn(&h, &h, &h, &causal)?;
        let x = x.try_add_tensor(&a)?;
        let m = self.mlp.try_forward(&self.ln_2.try_forward(&x)?)?;
        x.try_add_tensor(&m)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        self.ln_1.visit_params(&format!("{prefix}ln_1."), f);
        self.attn.visit_params(&format!("{prefix}attn."), f);
        self.ln_2.visit_params(&format!("{prefix}ln_2."), f);
        self.mlp.visit_params(&format!("{prefix}mlp."), f);
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor)) {
        self.ln_1.visit_params_mut(&format!("{prefix}ln_1."), f);
        self.attn.visit_params_mut(&format!("{prefix}attn."), f);
        self.ln_2.visit_params_mut(&format!("{prefix}ln_2."), f);
        self.mlp.visit_params_mut(&format!("{prefix}mlp."), f);
    }

    fn set_training(&mut self, training: bool) {
        self.attn.set_training(training);
        self.mlp.set_training(training);
    }

    fn is_training(&self) -> bool {
        self.attn.is_training()
    }
}

/// Token ids `[batch, time]` (f32 whole numbers) to next-token logits
/// `[batch, time, vocab]`.
struct CharTransformer {
    tok_emb: Embedding,
    pos_emb: Embedding,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    head: Linear,
}

impl CharTransformer {
    fn new(vocab: usize, cfg: &Config) -> CharTransformer {
        CharTransformer {
            tok_emb: Embedding::new(vocab, cfg.dim),
            pos_emb: Embedding::new(cfg.context, cfg.dim),
            blocks: (0..cfg.layers)
                .map(|_| Block::new(cfg.dim, cfg.heads))
                .collect(),
            ln_f: LayerNorm::new(&[cfg.dim]),
            head: Linear::new(cfg.dim, vocab),
        }
    }
}

impl Module for CharTransformer {
    fn try_forward(&self, ids: &Tensor) -> Result<Tensor> {
        let t = ids.dims()[ids.rank() - 1];
        let positions = Tensor::try_arange(0.0, t as f32, 1.0)?;
        let mut x = self
            .tok_emb
            .try_forward(ids)?
            .try_add_tensor(&self.pos_emb.try_forward(&positions)?)?;
        for b in &self.blocks {
            x = b.try_forward(&x)?;
        }
        self.head.try_forward(&self.ln_f.try_forward(&x)?)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        self.tok_emb.visit_params(&format!("{prefix}tok_emb."), f);
        self.pos_emb.visit_params(&format!("{prefix}pos_emb."), f);
        for (i, b) in self.blocks.iter().enumerate() {
            b.visit_params(&format!("{prefix}blocks.{i}."), f);
        }
        self.ln_f.visit_params(&format!("{prefix}ln_f."), f);
        self.head.visit_params(&format!("{prefix}head."), f);
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor)) {
        self.tok_emb
            .visit_params_mut(&format!("{prefix}tok_emb."), f);
        self.pos_emb
            .visit_params_mut(&format!("{prefix}pos_emb."), f);
        for (i, b) in self.blocks.iter_mut().enumerate() {
            b.visit_params_mut(&format!("{prefix}blocks.{i}."), f);
        }
        self.ln_f.visit_params_mut(&format!("{prefix}ln_f."), f);
        self.head.visit_params_mut(&format!("{prefix}head."), f);
    }

    fn set_training(&mut self, training: bool) {
        for b in &mut self.blocks {
            b.set_training(training);
        }
    }

    fn is_training(&self) -> bool {
        self.blocks.first().is_none_or(|b| b.is_training())
    }
}

/// The text as token ids, with the vocabulary (sorted distinct characters).
struct Corpus {
    vocab: Vec<char>,
    ids: Vec<usize>,
}

impl Corpus {
    fn new(text: &str) -> Corpus {
        let mut vocab: Vec<char> = text.chars().collect();
        vocab.sort_unstable();
        vocab.dedup();
        let ids = text
            .chars()
            .map(|c| vocab.binary_search(&c).expect("in vocab"))
            .collect();
        Corpus { vocab, ids }
    }

    fn encode(&self, s: &str) -> Vec<usize> {
        s.chars()
            .map(|c| self.vocab.binary_search(&c).expect("prompt char in vocab"))
            .collect()
    }
}

/// `batch` random windows of `ids`: inputs and next-token targets, both
/// `[batch, context]`.
fn windows(
    ids: &[usize],
    context: usize,
    batch: usize,
    rng: &mut Generator,
) -> Result<[Tensor; 2]> {
    let (mut x, mut y) = (Vec::with_capacity(batch * context), Vec::new());
    for _ in 0..batch {
        let start = (rng.next_u64() % (ids.len() - context) as u64) as usize;
        x.extend(ids[start..start + context].iter().map(|&i| i as f32));
        y.extend(
            ids[start + 1..start + context + 1]
                .iter()
                .map(|&i| i as f32),
        );
    }
    Ok([
        Tensor::from_vec(x, [batch, context])?,
        Tensor::from_vec(y, [batch, context])?,
    ])
}

/// Mean cross-entropy of next-token prediction over `[batch, time]` windows.
fn lm_loss(model: &dyn Module, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let logits = model.try_forward(x)?;
    let v = logits.dims()[2];
    cross_entropy(
        &logits.try_reshape([x.numel(), v])?,
        &y.try_reshape([y.numel()])?,
        &CrossEntropyOptions::default(),
    )
    .try_mean()
}

/// Mean loss over fixed held-out batches.
fn eval_loss(model: &dyn Module, batches: &[[Tensor; 2]]) -> Result<f32> {
    let mut total = 0.0;
    for [x, y] in batches {
        total += no_grad(|| lm_loss(model, x, y))?.item();
    }
    Ok(total / batches.len() as f32)
}

/// Samples `n` characters after `prompt` at `temperature`, feeding the model
/// the last `context` characters each time.
fn sample(
    model: &CharTransformer,
    corpus: &Corpus,
    prompt: &str,
    n: usize,
    context: usize,
    temperature: f32,
    rng: &mut Generator,
) -> Result<String> {
    let mut ids = corpus.encode(prompt);
    let mut out = String::from(prompt);
    for _ in 0..n {
        let window = &ids[ids.len().saturating_sub(context)..];
        let x = Tensor::from_vec(
            window.iter().map(|&i| i as f32).collect(),
            [1, window.len()],
        )?;
        let logits = no_grad(|| model.try_forward(&x))?;
        let last = logits
            .try_select(1, window.len() - 1)?
            .try_reshape([corpus.vocab.len()])?;
        let probs = last.try_div_scalar(temperature)?.try_softmax(0)?.to_vec();
        let u = rng.uniform();
        let mut acc = 0.0;
        let mut next = probs.len() - 1;
        for (i, p) in probs.iter().enumerate() {
            acc += p;
            if u < acc {
                next = i;
                break;
            }
        }
        ids.push(next);
        out.push(corpus.vocab[next]);
    }
    Ok(out)
}

fn main() -> Result<()> {
    let ci = std::env::var("TRAIN_STATION_CI").is_ok_and(|v| v == "1");
    let cfg = if ci {
        Config {
            context: 32,
            dim: 32,
            heads: 4,
            layers: 2,
            batch: 8,
            steps: 6,
            warmup: 2,
            lr: 3e-3,
            every: 3,
            eval_batches: 2,
            sample: 40,
        }
    } else {
        Config {
            context: 64,
            dim: 64,
            heads: 4,
            layers: 2,
            batch: 16,
            steps: 600,
            warmup: 30,
            lr: 1e-2,
            every: 50,
            eval_batches: 8,
            sample: 300,
        }
    };
    manual_seed(0);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("examples/data/genesis.txt")).map_err(|_| {
        Error::InvalidArgument {
            op: "char_transformer",
            detail: "cannot read examples/data/genesis.txt",
        }
    })?;
    let corpus = Corpus::new(&text);
    let vocab = corpus.vocab.len();
    // The last 10% of the book is held out.
    let split = corpus.ids.len() * 9 / 10;
    let (train_ids, held_ids) = corpus.ids.split_at(split);
    let mut rng = Generator::new(1);
    let held: Vec<[Tensor; 2]> = (0..cfg.eval_batches)
        .map(|_| windows(held_ids, cfg.context, cfg.batch, &mut rng))
        .collect::<Result<_>>()?;

    let mut model = CharTransformer::new(vocab, &cfg);
    let uniform = (vocab as f32).ln();
    println!(
        "genesis.txt: {} characters, vocabulary {vocab} (ln {vocab} = {uniform:.3}), \
         {} train / {} held-out",
        corpus.ids.len(),
        train_ids.len(),
        held_ids.len()
    );
    println!(
        "model: {} blocks, width {}, {} heads, context {}, {} parameters; \
         batch {}, {} steps",
        cfg.layers,
        cfg.dim,
        cfg.heads,
        cfg.context,
        model.num_parameters(),
        cfg.batch,
        cfg.steps
    );

    let mut opt = AdamW::new(
        &model.parameters(),
        AdamWConfig {
            lr: cfg.lr,
            weight_decay: 0.01,
            ..AdamWConfig::default()
        },
    );
    let warmup = LinearLr::new(&mut opt, 0.01, 1.0, cfg.warmup);
    let cosine = CosineAnnealingLr::new(&mut opt, cfg.steps - cfg.warmup, cfg.lr * 0.1);
    let mut schedule = SequentialLr::new(
        &mut opt,
        vec![Box::new(warmup), Box::new(cosine)],
        &[cfg.warmup],
    );

    println!(
        "AdamW (lr {:.0e}, weight decay 0.01): linear warm-up over {} steps, cosine to {:.0e}; \
         gradient norm clipped at 1",
        cfg.lr,
        cfg.warmup,
        cfg.lr * 0.1
    );
    let first_held = eval_loss(&model, &held)?;
    println!("step    0: held-out loss {first_held:.4}");
    let start = Instant::now();
    let (mut sum, mut count) = (0.0f32, 0usize);
    let mut last_held = first_held;
    for step in 1..=cfg.steps {
        let [x, y] = windows(train_ids, cfg.context, cfg.batch, &mut rng)?;
        let loss = lm_loss(&model, &x, &y)?;
        model.zero_grad();
        loss.try_backward()?;
        clip_grad_norm(&model.parameters(), 1.0, 2.0)?;
        opt.step_module(&mut model)?;
        schedule.step(&mut opt);
        sum += loss.item();
        count += 1;
        if step % cfg.every == 0 || step == cfg.steps {
            last_held = eval_loss(&model, &held)?;
            println!(
                "step {step:4}: train loss {:.4}  held-out loss {last_held:.4}  lr {:.2e}  ({:.1} s)",
                sum / count as f32,
                opt.lrs()[0],
                start.elapsed().as_secs_f32()
            );
            (sum, count) = (0.0, 0);
        }
    }

    // The block's PyTorch-style names make the model a plain state dict.
    let dir = root.join("target/char_transformer");
    std::fs::create_dir_all(&dir).map_err(|_| Error::InvalidArgument {
        op: "char_transformer",
        detail: "cannot create target/char_transformer",
    })?;
    let path = dir.join("model.safetensors");
    save_module(&path, &model)?;
    let mut reloaded = CharTransformer::new(vocab, &cfg);
    load_module(&path, &mut reloaded)?;
    let x = &held[0][0];
    let same = no_grad(|| -> Result<bool> {
        let (a, b) = (model.try_forward(x)?, reloaded.try_forward(x)?);
        Ok(a.to_vec()
            .iter()
            .map(|v| v.to_bits())
            .eq(b.to_vec().iter().map(|v| v.to_bits())))
    })?;
    println!(
        "saved {} ({} tensors, e.g. {}); reloaded model's logits bit-identical: {same}",
        path.display(),
        model.state_dict().len(),
        model.named_parameters()[4].0
    );
    assert!(same, "the reloaded model must give the same logits");

    let mut sampler = Generator::new(7);
    let prompt = "And God said";
    let text = sample(
        &model,
        &corpus,
        prompt,
        cfg.sample,
        cfg.context,
        0.8,
        &mut sampler,
    )?;
    println!("sample (seed 7, temperature 0.8):\n{text}");

    assert!(
        last_held < first_held,
        "held-out loss must drop ({first_held:.4} -> {last_held:.4})"
    );
    if !ci {
        assert!(
            last_held < 0.5 * uniform,
            "held-out loss {last_held:.4} is not well below ln(vocab) = {uniform:.4}"
        );
    }
    Ok(())
}
