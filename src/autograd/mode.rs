//! Whether operations are recorded for autograd (per thread under `std`,
//! global without it).

crate::sync::thread_cell! {
    /// Nesting depth of no-grad scopes on this thread.
    static NO_GRAD_DEPTH: usize = 0;
}

/// Whether operations on tensors that require grad are being recorded.
#[inline]
pub fn is_grad_enabled() -> bool {
    NO_GRAD_DEPTH.get() == 0
}

/// Runs `f` without recording operations (results do not require grad), e.g.
/// for evaluation or an optimizer's parameter update. Nests.
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _g = NoGradGuard::new();
    f()
}

/// Turns recording off until dropped (RAII form of [`no_grad`]).
#[must_use = "recording is off only while the guard lives"]
pub struct NoGradGuard {
    _private: (),
}

impl NoGradGuard {
    /// Turns recording off on this thread until the guard is dropped.
    pub fn new() -> NoGradGuard {
        NO_GRAD_DEPTH.set(NO_GRAD_DEPTH.get() + 1);
        NoGradGuard { _private: () }
    }
}

impl Default for NoGradGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        NO_GRAD_DEPTH.set(NO_GRAD_DEPTH.get() - 1);
    }
}
