//! The loop skeleton shared by the hand-scheduled x86 k loops (AVX2 `6 x 16`,
//! AVX-512 `6 x 64`).

/// Defines a hand-scheduled k loop of a full tile, `acc[i * NV + v] +=
/// sum_p A[i, p] * B[p, v * W ..]`, unrolled by 4 steps with the remainder
/// one step at a time. Two forms:
/// - `cs [d1, d2, d3, d4]`: `unsafe fn $name(acc, kc, a, a_rs, b, b_rs)`
///   for a constant A column stride of CS elements (`d1..d3` = 4 * CS *
///   1..3 bytes, `d4` = 4 * CS * 4): the 4 steps are addressed by
///   displacement (A) and index registers (B), so they cost two pointer
///   updates and one branch;
/// - `cs_reg`: `unsafe fn $name(acc, kc, a, a_rs, a_cs, b, b_rs)` for any
///   column stride, each step advancing both pointers.
///
/// `$step` is one step's assembly: the `cs` form's takes the B row's index
/// expression and A's displacement, the `cs_reg` form's nothing (it adds
/// `{as}` and `{bs}` itself). A's rows are `{a}`, `{a} + {r1}`, `{a} +
/// {r1} * 2`, `{a} + {r3}`, `{a} + {r1} * 4`, `{a} + {r5}`. The trailing
/// `[[reg => index, ...], [scratch reg, ...]]` names the accumulator
/// registers (in `acc` order) and the step's scratch registers. Each path
/// defines its three loops with one `k_loops!`.
macro_rules! k_loop {
    (
        $(#[$m:meta])* $name:ident, $features:literal, $v:ty, $n:literal, $step:ident,
        cs [$d1:literal, $d2:literal, $d3:literal, $d4:literal], $regs:tt
    ) => {
        $(#[$m])*
        ///
        /// # Safety
        /// The CPU supports the features enabled here; `A[i, p]` at `a + i *
        /// a_rs + p * CS` for `i < 6`, `p < kc` and the tile's columns of
        /// `B[p, ..]` at `b + p * b_rs` are readable.
        #[target_feature(enable = $features)]
        #[inline]
        unsafe fn $name(acc: &mut [$v; $n], kc: usize, a: *const f32, a_rs: usize, b: *const f32, b_rs: usize) {
            let (r1, bs) = (a_rs * 4, b_rs * 4);
            k_loop!(@asm acc, a, b, kc, r1, $regs,
                [
                    $step!("", "0"),
                    $step!(" + {bs}", $d1),
                    $step!(" + {bs} * 2", $d2),
                    $step!(" + {bs3}", $d3),
                    concat!("add {a}, ", $d4),
                    "add {b}, {bs4}"
                ],
                [$step!("", "0"), concat!("add {a}, ", $d1), "add {b}, {bs}"],
                bs = in(reg) bs,
                bs3 = in(reg) 3 * bs,
                bs4 = in(reg) 4 * bs,
            );
        }
    };
    (
        $(#[$m:meta])* $name:ident, $features:literal, $v:ty, $n:literal, $step:ident,
        cs_reg, $regs:tt
    ) => {
        $(#[$m])*
        ///
        /// # Safety
        /// The CPU supports the features enabled here; `A[i, p]` at `a + i *
        /// a_rs + p * a_cs` for `i < 6`, `p < kc` and the tile's columns of
        /// `B[p, ..]` at `b + p * b_rs` are readable.
        #[target_feature(enable = $features)]
        #[inline]
        unsafe fn $name(acc: &mut [$v; $n], kc: usize, a: *const f32, a_rs: usize, a_cs: usize, b: *const f32, b_rs: usize) {
            let r1 = a_rs * 4;
            k_loop!(@asm acc, a, b, kc, r1, $regs,
                [$step!(), $step!(), $step!(), $step!()],
                [$step!()],
                as = in(reg) a_cs * 4,
                bs = in(reg) b_rs * 4,
            );
        }
    };
    (
        @asm $acc:ident, $a:ident, $b:ident, $kc:ident, $r1:ident,
        [[$($reg:tt => $i:tt),* $(,)?], [$($tmp:tt),* $(,)?]],
        [$($body4:expr),*], [$($body1:expr),*], $($extra:tt)*
    ) => {
        // SAFETY: reads only the panels the caller vouches for (the pointers
        // end one step past them, not dereferenced there); writes only the
        // listed registers; no stack use.
        unsafe {
            core::arch::asm!(
                "mov {t}, {k}",
                "shr {k}, 2",
                "jz 3f",
                "2:",
                $($body4,)*
                "dec {k}",
                "jnz 2b",
                "3:",
                "and {t}, 3",
                "jz 5f",
                "4:",
                $($body1,)*
                "dec {t}",
                "jnz 4b",
                "5:",
                a = inout(reg) $a => _,
                b = inout(reg) $b => _,
                k = inout(reg) $kc => _,
                t = out(reg) _,
                r1 = in(reg) $r1,
                r3 = in(reg) 3 * $r1,
                r5 = in(reg) 5 * $r1,
                $($extra)*
                $(inout($reg) $acc[$i],)*
                $(out($tmp) _,)*
                options(nostack, readonly),
            );
        }
    };
}

/// Defines a path's three k loops through `k_loop!`: `$cs1` for A with
/// unit column stride (row-major A read in place), `$cs6` for column stride
/// 6 (a packed panel, `a_rs` 1) and `$any` for any stride, with the
/// accumulator and scratch registers `$regs` (see `k_loop!`).
macro_rules! k_loops {
    (
        $tile:literal, $features:literal, $v:ty, $n:literal, $step_at:ident, $step:ident,
        [$cs1:ident, $cs6:ident, $any:ident], $regs:tt $(,)?
    ) => {
        k_loop!(
            #[doc = concat!("The ", $tile, " k loop for A with unit column stride (row-major A read in place).")]
            $cs1, $features, $v, $n, $step_at, cs ["4", "8", "12", "16"], $regs
        );
        k_loop!(
            #[doc = concat!("The ", $tile, " k loop for A with column stride 6: a packed panel (then `a_rs` is 1).")]
            $cs6, $features, $v, $n, $step_at, cs ["24", "48", "72", "96"], $regs
        );
        k_loop!(
            #[doc = concat!("The ", $tile, " k loop for any A column stride.")]
            $any, $features, $v, $n, $step, cs_reg, $regs
        );
    };
}

/// `Simd::accumulate_tuned` for a path whose full `MR x NV` tile has `$n`
/// accumulator registers of type `$v`: A with column stride 1 (row-major,
/// read in place) goes to `$cs1`, a packed panel (column stride `MR`) to
/// `$cs6`, other strides (A column-major, read in place) to `$other`, which
/// takes the stride in a register. Other tile shapes take the generic loop.
macro_rules! accumulate_tuned {
    ($v:ty, $n:literal, $cs1:ident, $cs6:ident, $other:ident) => {
        #[inline(always)]
        unsafe fn accumulate_tuned<const R: usize, const N: usize>(
            self,
            acc: &mut [[$v; N]; R],
            kc: usize,
            a: *const f32,
            a_rs: usize,
            a_cs: usize,
            b: *const f32,
            b_rs: usize,
        ) -> bool {
            if R != MR || N != NV {
                return false;
            }
            // SAFETY: R * N == $n, so `acc` is $n consecutive registers'
            // worth of `$v`; the panels are readable as the caller
            // guarantees.
            unsafe {
                let acc = &mut *acc.as_mut_ptr().cast::<[$v; $n]>();
                match a_cs {
                    // Row-major A read in place, or a packed panel: the k
                    // offsets of A are constants, so the loop is unrolled
                    // with displacements.
                    1 => $cs1(acc, kc, a, a_rs, b, b_rs),
                    MR => $cs6(acc, kc, a, a_rs, b, b_rs),
                    _ => $other(acc, kc, a, a_rs, a_cs, b, b_rs),
                }
            }
            true
        }
    };
}
