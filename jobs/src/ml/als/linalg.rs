//! Dense k×k algebra for one row's least-squares system: the packed normal equations, a
//! Cholesky solve, and non-negative least squares for `nonnegative = true`.
//!
//! Everything is `f64` and accumulated in a fixed order, so a row's factor depends only on its
//! ratings — not on which task or executor solved it.

/// `Σ c·y·yᵀ` (upper triangle, packed row by row) and `Σ b·y` over one row's ratings.
#[derive(Debug, Clone)]
pub(crate) struct NormalEquation {
    k: usize,
    ata: Vec<f64>,
    atb: Vec<f64>,
}

impl NormalEquation {
    pub(crate) fn new(k: usize) -> Self {
        Self {
            k,
            ata: vec![0.0; k * (k + 1) / 2],
            atb: vec![0.0; k],
        }
    }

    /// Adds one rating: `c·y·yᵀ` to the left side and `b·y` to the right.
    pub(crate) fn add(&mut self, y: &[f64], b: f64, c: f64) {
        let mut at = 0;
        for i in 0..self.k {
            let cy = c * y[i];
            for &yj in &y[i..self.k] {
                self.ata[at] += cy * yj;
                at += 1;
            }
            self.atb[i] += b * y[i];
        }
    }

    pub(crate) fn reset(&mut self) {
        self.ata.fill(0.0);
        self.atb.fill(0.0);
    }

    /// Solves `(AᵀA + G + reg·I) x = Aᵀb`, `G` being an optional full k×k matrix (YᵀY for
    /// implicit feedback). `None` when the system is not positive definite or the result is not
    /// finite.
    pub(crate) fn solve(&self, reg: f64, gram: Option<&[f64]>, nonnegative: bool) -> Option<Vec<f64>> {
        let k = self.k;
        let mut a = vec![0.0; k * k];
        let mut at = 0;
        for i in 0..k {
            for j in i..k {
                let g = gram.map_or(0.0, |g| g[i * k + j]);
                a[i * k + j] = self.ata[at] + g;
                a[j * k + i] = a[i * k + j];
                at += 1;
            }
            a[i * k + i] += reg;
        }
        let x = if nonnegative {
            nnls(&a, &self.atb, k)
        } else {
            let mut b = self.atb.clone();
            cholesky_solve(&mut a, &mut b, k).then_some(b)?
        };
        x.iter().all(|v| v.is_finite()).then_some(x)
    }
}

/// Solves `a·x = b` in place for a symmetric positive definite `a` (row-major k×k): `a` is
/// overwritten by its Cholesky factor, `b` by `x`. False when `a` is not positive definite.
pub(crate) fn cholesky_solve(a: &mut [f64], b: &mut [f64], k: usize) -> bool {
    for j in 0..k {
        let diagonal = a[j * k + j];
        let d = diagonal - (0..j).map(|p| a[j * k + p] * a[j * k + p]).sum::<f64>();
        // Relative to the diagonal: a pivot lost to rounding means "not positive definite".
        if !(d > diagonal.abs() * 1e-12 && d.is_finite()) {
            return false;
        }
        let d = d.sqrt();
        a[j * k + j] = d;
        for i in j + 1..k {
            let s = a[i * k + j] - (0..j).map(|p| a[i * k + p] * a[j * k + p]).sum::<f64>();
            a[i * k + j] = s / d;
        }
    }
    for i in 0..k {
        let s = b[i] - (0..i).map(|p| a[i * k + p] * b[p]).sum::<f64>();
        b[i] = s / a[i * k + i];
    }
    for i in (0..k).rev() {
        let s = b[i] - (i + 1..k).map(|p| a[p * k + i] * b[p]).sum::<f64>();
        b[i] = s / a[i * k + i];
    }
    true
}

/// Minimises `½xᵀAx − bᵀx` subject to `x ≥ 0` (A symmetric positive definite) by projected
/// coordinate descent: each sweep solves every coordinate exactly and clips it at zero, which
/// converges for positive definite A and needs no factorisation.
pub(crate) fn nnls(a: &[f64], b: &[f64], k: usize) -> Vec<f64> {
    const MAX_SWEEPS: usize = 10_000;
    let mut x = vec![0.0; k];
    for _ in 0..MAX_SWEEPS {
        let mut moved: f64 = 0.0;
        for j in 0..k {
            let diag = a[j * k + j];
            if diag <= 0.0 {
                continue;
            }
            let ax: f64 = (0..k).map(|p| a[j * k + p] * x[p]).sum();
            let next = (x[j] - (ax - b[j]) / diag).max(0.0);
            moved = moved.max((next - x[j]).abs());
            x[j] = next;
        }
        let scale = x.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
        if moved <= 1e-13 * scale {
            break;
        }
    }
    x
}

/// `YᵀY` of `n` factors of length `k` stored one after another, as a full k×k matrix.
pub(crate) fn gram(factors: impl Iterator<Item = impl AsRef<[f64]>>, k: usize) -> Vec<f64> {
    let mut g = vec![0.0; k * k];
    for y in factors {
        let y = y.as_ref();
        for i in 0..k {
            for j in i..k {
                g[i * k + j] += y[i] * y[j];
            }
        }
    }
    for i in 0..k {
        for j in 0..i {
            g[i * k + j] = g[j * k + i];
        }
    }
    g
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Gaussian elimination with partial pivoting: the reference the fast paths are checked
    /// against.
    pub(crate) fn dense_solve(a: &[f64], b: &[f64], k: usize) -> Vec<f64> {
        let mut m: Vec<Vec<f64>> = (0..k)
            .map(|i| {
                let mut row = a[i * k..(i + 1) * k].to_vec();
                row.push(b[i]);
                row
            })
            .collect();
        for c in 0..k {
            let pivot = (c..k)
                .max_by(|&x, &y| m[x][c].abs().total_cmp(&m[y][c].abs()))
                .unwrap();
            m.swap(c, pivot);
            let pivot_row = m[c].clone();
            for (_, row) in m.iter_mut().enumerate().filter(|(r, _)| *r != c) {
                let f = row[c] / pivot_row[c];
                row.iter_mut()
                    .zip(&pivot_row)
                    .skip(c)
                    .for_each(|(x, p)| *x -= f * p);
            }
        }
        (0..k).map(|i| m[i][k] / m[i][i]).collect()
    }

    fn spd(k: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut s = seed;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let rows: Vec<Vec<f64>> = (0..k + 3).map(|_| (0..k).map(|_| next()).collect()).collect();
        let mut a = gram(rows.iter(), k);
        for i in 0..k {
            a[i * k + i] += 0.01;
        }
        let b = (0..k).map(|_| next()).collect();
        (a, b)
    }

    #[test]
    fn cholesky_matches_gaussian_elimination() {
        for (k, seed) in [(1, 1), (3, 2), (10, 3), (25, 4)] {
            let (a, b) = spd(k, seed);
            let expected = dense_solve(&a, &b, k);
            let (mut l, mut x) = (a.clone(), b.clone());
            assert!(cholesky_solve(&mut l, &mut x, k));
            for (x, e) in x.iter().zip(&expected) {
                assert!((x - e).abs() < 1e-9, "k={k}: {x} vs {e}");
            }
        }
    }

    #[test]
    fn cholesky_refuses_a_singular_matrix() {
        let mut a = vec![1.0, 1.0, 1.0, 1.0];
        assert!(!cholesky_solve(&mut a, &mut [1.0, 2.0], 2));
    }

    #[test]
    fn nnls_matches_the_best_feasible_active_set() {
        // The optimum is the unconstrained solve on some set of free coordinates (the others 0):
        // try every set and keep the feasible solution with the lowest objective.
        let k = 4;
        for seed in 0..20 {
            let (a, b) = spd(k, seed);
            let objective = |x: &[f64]| -> f64 {
                let quad: f64 = (0..k)
                    .map(|i| x[i] * (0..k).map(|j| a[i * k + j] * x[j]).sum::<f64>())
                    .sum();
                0.5 * quad - (0..k).map(|i| x[i] * b[i]).sum::<f64>()
            };
            let mut best = vec![0.0; k];
            for mask in 1..(1u32 << k) {
                let free: Vec<usize> = (0..k).filter(|i| mask & (1 << i) != 0).collect();
                let sub: Vec<f64> = free
                    .iter()
                    .flat_map(|&i| free.iter().map(move |&j| (i, j)))
                    .map(|(i, j)| a[i * k + j])
                    .collect();
                let rhs: Vec<f64> = free.iter().map(|&i| b[i]).collect();
                let solved = dense_solve(&sub, &rhs, free.len());
                if solved.iter().any(|v| *v < 0.0) {
                    continue;
                }
                let mut x = vec![0.0; k];
                free.iter().zip(&solved).for_each(|(&i, &v)| x[i] = v);
                if objective(&x) < objective(&best) {
                    best = x;
                }
            }
            let x = nnls(&a, &b, k);
            for (x, e) in x.iter().zip(&best) {
                assert!((x - e).abs() < 1e-7, "seed {seed}: {x} vs {e}");
            }
        }
    }
}
