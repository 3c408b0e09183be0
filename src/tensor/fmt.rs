//! `Display` and `Debug` printed as PyTorch prints tensors
//! (`torch/_tensor_str.py` with the default print options: precision 4,
//! threshold 1000 elements, 3 edge items, line width 80).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use super::Tensor;

const PRECISION: usize = 4;
const THRESHOLD: usize = 1000;
const EDGE: usize = 3;
const LINE_WIDTH: usize = 80;

/// How every element of one tensor is printed (PyTorch's `_Formatter`).
struct Style {
    int_mode: bool,
    sci_mode: bool,
    width: usize,
}

/// `{:.4e}` as Python writes it: `1.2345e+03`.
fn sci(v: f32, prec: usize) -> String {
    let mut s = String::new();
    let _ = write!(s, "{:.*e}", prec, v);
    match s.find('e') {
        Some(i) => {
            let (mant, exp) = s.split_at(i);
            let exp = &exp[1..];
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            let mut out = String::from(mant);
            let _ = write!(out, "e{sign}{digits:0>2}");
            out
        }
        None => s,
    }
}

fn special(v: f32) -> Option<&'static str> {
    if v.is_nan() {
        Some("nan")
    } else if v == f32::INFINITY {
        Some("inf")
    } else if v == f32::NEG_INFINITY {
        Some("-inf")
    } else {
        None
    }
}

impl Style {
    fn new(values: &[f32]) -> Style {
        let mut st = Style {
            int_mode: true,
            sci_mode: false,
            width: 1,
        };
        let finite: Vec<f32> = values
            .iter()
            .copied()
            .filter(|v| v.is_finite() && *v != 0.0)
            .collect();
        // As PyTorch, only nonzero finite values set the mode and the width.
        if finite.is_empty() {
            return st;
        }
        let abs_min = finite.iter().fold(f32::INFINITY, |m, v| m.min(v.abs()));
        let abs_max = finite.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        st.int_mode = finite.iter().all(|v| *v == libm::ceilf(*v));
        let ratio = abs_max / abs_min;
        st.sci_mode = if st.int_mode {
            ratio > 1000.0 || abs_max > 1.0e8
        } else {
            ratio > 1000.0 || abs_max > 1.0e8 || abs_min < 1.0e-4
        };
        let mut w = 1;
        for &v in &finite {
            w = w.max(st.render(v).len());
        }
        st.width = w;
        st
    }

    fn plain(v: f32, int_mode: bool) -> String {
        if let Some(s) = special(v) {
            return String::from(s);
        }
        let mut s = String::new();
        if int_mode {
            let _ = write!(s, "{v:.0}.");
        } else {
            let _ = write!(s, "{v:.PRECISION$}");
        }
        s
    }

    fn render(&self, v: f32) -> String {
        if self.sci_mode {
            match special(v) {
                Some(s) => String::from(s),
                None => sci(v, PRECISION),
            }
        } else {
            Style::plain(v, self.int_mode)
        }
    }

    fn format(&self, v: f32) -> String {
        let s = self.render(v);
        let mut out = String::new();
        for _ in s.len()..self.width {
            out.push(' ');
        }
        out.push_str(&s);
        out
    }
}

/// Indices shown along a dimension of size `n`.
fn shown(n: usize, summarize: bool) -> impl Iterator<Item = Option<usize>> {
    let elide = summarize && n > 2 * EDGE;
    let head = if elide { EDGE } else { n };
    (0..head)
        .map(Some)
        .chain(elide.then_some(None))
        .chain((if elide { n - EDGE..n } else { 0..0 }).map(Some))
}

impl Tensor {
    fn shown_values(&self, summarize: bool, out: &mut Vec<f32>) {
        if self.rank() == 0 {
            out.push(self.get(&[]));
            return;
        }
        for i in shown(self.dims()[0], summarize).flatten() {
            self.select(0, i).shown_values(summarize, out);
        }
    }

    fn write_body(
        &self,
        f: &mut dyn Write,
        indent: usize,
        summarize: bool,
        st: &Style,
    ) -> fmt::Result {
        match self.rank() {
            0 => f.write_str(&st.format(self.get(&[]))),
            1 => {
                let per_line = ((LINE_WIDTH.saturating_sub(indent)) / (st.width + 2)).max(1);
                let items: Vec<String> = shown(self.dims()[0], summarize)
                    .map(|i| match i {
                        Some(i) => st.format(self.get(&[i])),
                        None => String::from(" ..."),
                    })
                    .collect();
                f.write_str("[")?;
                for (li, line) in items.chunks(per_line).enumerate() {
                    if li > 0 {
                        f.write_str(",\n")?;
                        for _ in 0..indent + 1 {
                            f.write_char(' ')?;
                        }
                    }
                    f.write_str(&line.join(", "))?;
                }
                f.write_str("]")
            }
            r => {
                f.write_str("[")?;
                for (k, i) in shown(self.dims()[0], summarize).enumerate() {
                    if k > 0 {
                        f.write_char(',')?;
                        for _ in 0..r - 1 {
                            f.write_char('\n')?;
                        }
                        for _ in 0..indent + 1 {
                            f.write_char(' ')?;
                        }
                    }
                    match i {
                        Some(i) => self.select(0, i).write_body(f, indent + 1, summarize, st)?,
                        None => f.write_str("...")?,
                    }
                }
                f.write_str("]")
            }
        }
    }
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const PREFIX: &str = "tensor(";
        let mut body = String::new();
        let mut suffixes: Vec<String> = Vec::new();
        if self.numel() == 0 {
            body.push_str("[]");
            if self.rank() != 1 {
                let mut s = String::from("size=(");
                for (i, d) in self.dims().iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    let _ = write!(s, "{d}");
                }
                s.push(')');
                suffixes.push(s);
            }
        } else {
            let summarize = self.numel() > THRESHOLD;
            let mut vals = Vec::new();
            self.shown_values(summarize, &mut vals);
            let st = Style::new(&vals);
            self.write_body(&mut body, PREFIX.len(), summarize, &st)?;
        }
        self.extra_suffixes(&mut suffixes);
        f.write_str(PREFIX)?;
        f.write_str(&body)?;
        let mut last_line = PREFIX.len() + body.len() - body.rfind('\n').map_or(0, |i| i + 1);
        for s in &suffixes {
            if last_line + s.len() + 2 > LINE_WIDTH {
                f.write_str(",\n")?;
                for _ in 0..PREFIX.len() {
                    f.write_char(' ')?;
                }
                last_line = PREFIX.len() + s.len();
            } else {
                f.write_str(", ")?;
                last_line += s.len() + 2;
            }
            f.write_str(s)?;
        }
        f.write_str(")")
    }
}

/// Same as `Display` (as PyTorch's `repr`).
impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Tensor {
    /// Suffixes after the values (autograd adds `requires_grad=True` here).
    fn extra_suffixes(&self, out: &mut Vec<String>) {
        match self.grad_fn_name() {
            Some(name) => out.push(alloc::format!("grad_fn=<{name}>")),
            None if self.requires_grad() => out.push(String::from("requires_grad=True")),
            None => {}
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Tensor {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "Tensor{{shape={=[?]}}}", self.dims())
    }
}
