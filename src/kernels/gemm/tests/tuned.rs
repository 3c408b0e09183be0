//! The hand-scheduled k loops (`Simd::accumulate_tuned`: AVX-512 `6 x 64`,
//! AVX2 `6 x 16`, NEON `8 x 12`) give the bits of the generic loop they
//! replace.

use super::*;
use crate::kernels::gemm::kernel::accumulate;
use crate::kernels::gemm::simd::Simd;

/// A's layouts: row-major read in place, a packed panel, column-major read
/// in place.
const A_LAYOUTS: [&str; 3] = ["row-major", "packed", "column-major"];

/// Runs the tuned and the generic loop of a full `MR x NV` tile on the same
/// panels and accumulators, for each of [`A_LAYOUTS`] (strides `(k + 3,
/// 1)`, `(1, MR)`, `(1, MR + 7)`), B packed (row stride `NV * W`) and read
/// in place (a wider row), and k lengths around the loops' unrolling by
/// four; asserts that the tuned loop is taken for exactly the layouts in
/// `taken` and that every accumulator then has the same bits.
#[cfg_attr(
    any(miri, not(any(target_arch = "x86_64", target_arch = "aarch64"))),
    allow(dead_code)
)]
fn tuned_matches_generic<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    what: &str,
    taken: &[&str],
) {
    let nr = NV * S::W;
    for kc in [1, 2, 3, 4, 5, 7, 8, 9, 16, 63, 64, 65, 256, 259] {
        let mut rng = Rng(kc as u64 + 11);
        for (layout, (a_rs, a_cs)) in A_LAYOUTS
            .into_iter()
            .zip([(kc + 3, 1), (1, MR), (1, MR + 7)])
        {
            for b_rs in [nr, nr + 5] {
                let a = rng.vec(MR * a_rs.max(1) + kc * a_cs);
                let b = rng.vec(kc * b_rs + nr);
                let init = rng.vec(MR * nr);
                let load = |acc: &mut [[S::V; NV]; MR]| {
                    for (i, row) in acc.iter_mut().enumerate() {
                        for (v, r) in row.iter_mut().enumerate() {
                            // SAFETY: `init` holds MR * nr values.
                            *r = unsafe { s.load(init.as_ptr().add(i * nr + v * S::W)) };
                        }
                    }
                };
                let bits = |acc: &[[S::V; NV]; MR]| {
                    let mut out = vec![0.0f32; MR * nr];
                    for (i, row) in acc.iter().enumerate() {
                        for (v, r) in row.iter().enumerate() {
                            // SAFETY: `out` holds MR * nr values.
                            unsafe { s.store(out.as_mut_ptr().add(i * nr + v * S::W), *r) };
                        }
                    }
                    out.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                };
                let (mut tuned, mut generic) = ([[s.zero(); NV]; MR], [[s.zero(); NV]; MR]);
                load(&mut tuned);
                load(&mut generic);
                // SAFETY: A[i, p] at i * a_rs + p * a_cs and B[p, j] at
                // p * b_rs + j lie inside `a` and `b` for i < MR, p < kc,
                // j < nr.
                let took = unsafe {
                    s.accumulate_tuned::<MR, NV>(
                        &mut tuned,
                        kc,
                        a.as_ptr(),
                        a_rs,
                        a_cs,
                        b.as_ptr(),
                        b_rs,
                    )
                };
                assert_eq!(
                    took,
                    taken.contains(&layout),
                    "{what}: tuned loop taken for {layout} A"
                );
                if !took {
                    continue;
                }
                // The two forms of the generic loop: A's rows adjacent or not.
                let (ap, bp, none) = (a.as_ptr(), b.as_ptr(), core::ptr::null_mut());
                // SAFETY: as above; no packing (null destination).
                unsafe {
                    match a_rs {
                        1 => accumulate::<S, MR, NV, true, false>(
                            s,
                            &mut generic,
                            kc,
                            ap,
                            1,
                            a_cs,
                            bp,
                            b_rs,
                            none,
                        ),
                        _ => accumulate::<S, MR, NV, false, false>(
                            s,
                            &mut generic,
                            kc,
                            ap,
                            a_rs,
                            a_cs,
                            bp,
                            b_rs,
                            none,
                        ),
                    }
                }
                assert_eq!(
                    bits(&tuned),
                    bits(&generic),
                    "{what}: kc {kc}, {layout} A ({a_rs}, {a_cs}), B row stride {b_rs}"
                );
            }
        }
    }
}

#[test]
#[cfg(all(target_arch = "x86_64", not(miri)))]
fn avx2_tuned_loop_gives_the_bits_of_the_generic_loop() {
    if let Some(s) = super::super::avx2::Avx2::new() {
        tuned_matches_generic::<_, 6, 2>(s, "AVX2", &A_LAYOUTS);
    }
}

#[test]
#[cfg(all(target_arch = "x86_64", not(miri)))]
fn avx512_tuned_loop_gives_the_bits_of_the_generic_loop() {
    if let Some(s) = super::super::avx512::Avx512::new() {
        tuned_matches_generic::<_, 6, 4>(s, "AVX-512", &A_LAYOUTS);
    }
}

#[test]
#[cfg(all(target_arch = "aarch64", target_feature = "neon", not(miri)))]
fn neon_tuned_loop_gives_the_bits_of_the_generic_loop() {
    if let Some(s) = super::super::neon::Neon::new() {
        tuned_matches_generic::<_, 8, 3>(s, "NEON", &["packed", "column-major"]);
    }
}
