//! Regressions for undefined behaviour that miri found in code reachable from
//! safe calls. Each runs natively in `cargo test` and under miri in CI's `miri`
//! step, where the original defect is reported as UB.

use train_station::Tensor;

/// `A[i, p] * B[p, j]` summed over `p`, from the contiguous data (small
/// integers: exact in any summation order).
fn reference_matmul(a: &Tensor, b: &Tensor) -> Vec<f32> {
    let (m, k, n) = (a.dims()[0], a.dims()[1], b.dims()[1]);
    let (a, b) = (a.to_vec(), b.to_vec());
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
        }
    }
    out
}

/// The GEMM packer's row-major edge panel formed `row.add(j)` for vectors
/// wholly past the last column, reading nothing there. For B's last row that
/// pointer lies past the end of B's allocation: undefined behaviour (pointer
/// offsets must stay inside their allocation), found by miri in the
/// checkpoint tests (`pack_b`, scalar path). B here fills its pool block
/// exactly (`k * n * 4` bytes is a size class), so the last row ends where the
/// allocation does, and `n` leaves a partial last panel.
#[test]
fn matmul_whose_b_ends_at_its_allocation_with_a_partial_panel() {
    for (k, n) in [(1024, 1), (512, 2), (256, 5), (256, 6), (256, 7), (128, 9)] {
        let a = Tensor::from_fn([3, k], |i| ((i[0] + i[1]) % 3) as f32 - 1.0);
        let b = Tensor::from_fn([k, n], |i| ((i[0] * (i[1] + 1)) % 5) as f32 - 2.0);
        assert_eq!(
            a.matmul(&b).to_vec(),
            reference_matmul(&a, &b),
            "3x{k} @ {k}x{n}"
        );
    }
}
