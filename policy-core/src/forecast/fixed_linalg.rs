//! The few fixed-size vector and matrix operations Online ARIMA needs
//! (a dot product, a matrix-vector product, a symmetric rank-one update),
//! on plain arrays: no allocation, no dependency, nothing QEMU's licence
//! could object to.

// Vectors are `[f64; N]`, matrices `[[f64; N]; N]` (row-major); no type
// aliases, which cbindgen would try to instantiate.

/// `a · b`.
pub fn dot<const N: usize>(a: &[f64; N], b: &[f64; N]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The identity matrix times `diagonal`.
pub fn scaled_identity<const N: usize>(diagonal: f64) -> [[f64; N]; N] {
    let mut m = [[0.0; N]; N];
    for (i, row) in m.iter_mut().enumerate() {
        row[i] = diagonal;
    }
    m
}

/// `m · v`.
pub fn mul_vector<const N: usize>(m: &[[f64; N]; N], v: &[f64; N]) -> [f64; N] {
    let mut out = [0.0; N];
    for (o, row) in out.iter_mut().zip(m) {
        *o = dot(row, v);
    }
    out
}

/// `m ← m − (u uᵀ) / divisor`: the Sherman–Morrison downdate of an inverse.
pub fn subtract_outer_scaled<const N: usize>(m: &mut [[f64; N]; N], u: &[f64; N], divisor: f64) {
    for (row, ui) in m.iter_mut().zip(u) {
        for (entry, uj) in row.iter_mut().zip(u) {
            *entry -= ui * uj / divisor;
        }
    }
}

/// `v ← v − w · factor`.
pub fn subtract_scaled<const N: usize>(v: &mut [f64; N], w: &[f64; N], factor: f64) {
    for (vi, wi) in v.iter_mut().zip(w) {
        *vi -= wi * factor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_matrix_vector_product() {
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[4.0, -5.0, 6.0]), 12.0);
        let m = [[1.0, 2.0], [3.0, 4.0]];
        assert_eq!(mul_vector(&m, &[1.0, -1.0]), [-1.0, -1.0]);
        assert_eq!(
            mul_vector(&scaled_identity::<2>(3.0), &[2.0, 5.0]),
            [6.0, 15.0]
        );
    }

    #[test]
    fn sherman_morrison_downdate_inverts_a_rank_one_update() {
        // A = 2·I, g = (1, 2): (A + g gᵀ)⁻¹ = A⁻¹ − A⁻¹g gᵀA⁻¹ / (1 + gᵀA⁻¹g).
        let mut a_inverse = scaled_identity::<2>(0.5);
        let g = [1.0, 2.0];
        let a_g = mul_vector(&a_inverse, &g);
        subtract_outer_scaled(&mut a_inverse, &a_g, 1.0 + dot(&g, &a_g));
        // A + g gᵀ = [[3, 2], [2, 6]], whose inverse is [[6, -2], [-2, 3]] / 14.
        let want = [[6.0 / 14.0, -2.0 / 14.0], [-2.0 / 14.0, 3.0 / 14.0]];
        for i in 0..2 {
            for j in 0..2 {
                assert!(
                    (a_inverse[i][j] - want[i][j]).abs() < 1e-12,
                    "{a_inverse:?}"
                );
            }
        }
    }

    #[test]
    fn subtract_scaled_is_axpy() {
        let mut v = [1.0, 1.0];
        subtract_scaled(&mut v, &[2.0, -4.0], 0.5);
        assert_eq!(v, [0.0, 3.0]);
    }
}
