//! Arguments that do not fit panic with a message naming the problem, and
//! the overlap rule behind C's check.

use super::super::*;

#[test]
#[should_panic(expected = "inner dimensions differ")]
fn mismatched_inner_dimension_panics() {
    let (a, b, mut c) = ([0.0; 6], [0.0; 6], [0.0; 4]);
    sgemm(
        1.0,
        MatRef::row_major(&a, 2, 3),
        MatRef::row_major(&b, 2, 3),
        0.0,
        MatMut::row_major(&mut c, 2, 2),
    );
}

#[test]
#[should_panic(expected = "B slice has 5 elements")]
fn short_slice_panics() {
    let (a, b, mut c) = ([0.0; 6], [0.0; 5], [0.0; 4]);
    sgemm(
        1.0,
        MatRef::row_major(&a, 2, 3),
        MatRef::row_major(&b, 3, 2),
        0.0,
        MatMut::row_major(&mut c, 2, 2),
    );
}

#[test]
#[should_panic(expected = "share memory")]
fn overlapping_c_panics() {
    let (a, b, mut c) = ([0.0; 6], [0.0; 6], [0.0; 4]);
    let cm = MatMut::new(&mut c, 2, 2, 1, 1);
    sgemm(
        1.0,
        MatRef::row_major(&a, 2, 3),
        MatRef::row_major(&b, 3, 2),
        0.0,
        cm,
    );
}

#[test]
#[should_panic(expected = "share memory")]
fn overlapping_batches_panic() {
    let (a, b, mut c) = ([0.0; 6], [0.0; 6], [0.0; 8]);
    let batch = Batch {
        count: 2,
        a_stride: 0,
        b_stride: 0,
        c_stride: 2,
    };
    let (ar, br) = (MatRef::row_major(&a, 2, 3), MatRef::row_major(&b, 3, 2));
    sgemm_batched(
        batch,
        1.0,
        ar,
        br,
        0.0,
        MatMut::row_major(&mut c, 2, 2),
        Epilogue::NONE,
    );
}

#[test]
#[should_panic(expected = "bias has 3 values")]
fn wrong_bias_length_panics() {
    let (a, b, mut c) = ([0.0; 6], [0.0; 6], [0.0; 4]);
    let ep = Epilogue {
        bias: Some(&[0.0; 3]),
        relu: false,
    };
    let (ar, br) = (MatRef::row_major(&a, 2, 3), MatRef::row_major(&b, 3, 2));
    sgemm_fused(1.0, ar, br, 0.0, MatMut::row_major(&mut c, 2, 2), ep);
}

#[test]
fn distinct_layouts() {
    assert!(distinct(&mut [(2, 3), (3, 1), (1, 0)]));
    assert!(!distinct(&mut [(2, 2), (3, 1), (1, 0)]));
    assert!(distinct(&mut [(2, 1), (3, 2), (1, 0)]));
    assert!(!distinct(&mut [(2, 0), (3, 1), (1, 0)]));
    // Interleaved batch: 4 rows of 2 heads x 3 values.
    assert!(distinct(&mut [(4, 6), (3, 1), (2, 3)]));
    assert!(distinct(&mut [(1, 0), (1, 0), (1, 0)]));
}
