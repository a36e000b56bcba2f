//! Maximum likelihood in log space: L-BFGS with a backtracking (Armijo) line search inside
//! a box, the standard errors from a numerical Hessian of the analytic gradient, and
//! boundary parameters named rather than hidden.
//!
//! The box (each log-parameter within ±[`LOG_BOUND`]) turns a likelihood that keeps rising
//! as a parameter goes to 0 or infinity (BG/NBD's `a` on Online Retail) into a solution on
//! the box's face: the coordinate is held there (its gradient points outward), the others
//! converge, and the parameter is reported as at the boundary.

/// Each log-parameter stays within ±this (values from about 1e-13 to 1e13).
pub const LOG_BOUND: f64 = 30.0;
/// A parameter that ends more than this many natural-log units (five orders of
/// magnitude) from its start, which is on the data's scale, is reported as at the boundary
/// (0 or infinity): the likelihood still rose, by less than f64 can tell, as it ran off.
const BOUNDARY_LOG: f64 = 11.5;
/// A flat optimum: the value fell by less than this (relative) over [`STALL`] iterations...
const STALL_REL: f64 = 1e-13;
const STALL: usize = 10;
/// ...while the largest free gradient component is below this: converged at f64's floor
/// (a likelihood that rises ever more slowly toward a boundary). Above it: not converged.
const FLAT_GTOL: f64 = 1e-4;
const MEMORY: usize = 8;
const MAX_ITER: usize = 2_000;

/// What an objective evaluation returns: the value and the gradient, both of the function
/// to minimise (a negative mean log-likelihood), or `None` where it is not finite.
pub type Objective<'a> = dyn Fn(&[f64]) -> Option<(f64, Vec<f64>)> + Sync + 'a;

/// The optimum found.
#[derive(Debug, Clone, PartialEq)]
pub struct Optimum {
    /// The log-parameters.
    pub theta: Vec<f64>,
    /// The objective there.
    pub value: f64,
    /// Iterations taken.
    pub iterations: usize,
    /// Per parameter: `Some(-1)` held at the lower face (value 0), `Some(1)` at the upper,
    /// `None` interior.
    pub boundary: Vec<Option<i8>>,
}

/// Why no optimum was found.
#[derive(Debug, Clone, PartialEq)]
pub enum OptimError {
    /// The objective is not finite at the starting point.
    BadStart,
    /// The iteration limit came first; the largest free gradient component then.
    NotConverged {
        /// Iterations taken.
        iterations: usize,
        /// Largest free gradient component at the end.
        gradient: f64,
    },
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Coordinates held on a face of the box: at it, with the descent direction `-g`
/// pointing outward.
fn held(x: &[f64], g: &[f64]) -> Vec<bool> {
    x.iter().zip(g).map(|(&xi, &gi)| (xi <= -LOG_BOUND && gi > 0.0) || (xi >= LOG_BOUND && gi < 0.0)).collect()
}

/// Minimises `f` from `start` (log-parameters). Converged when every free gradient
/// component is below `gtol`, or on a flat optimum (see [`STALL_REL`]).
pub fn minimize(f: &Objective<'_>, start: &[f64], gtol: f64) -> Result<Optimum, OptimError> {
    let mut x: Vec<f64> = start.iter().map(|v| v.clamp(-LOG_BOUND, LOG_BOUND)).collect();
    let (mut fx, mut g) = f(&x).ok_or(OptimError::BadStart)?;
    let mut hist: Vec<(Vec<f64>, Vec<f64>, f64)> = Vec::new(); // (s, y, 1/(y.s))
    let mut was_held = held(&x, &g);
    let mut recent = std::collections::VecDeque::with_capacity(STALL + 1);
    for it in 0..MAX_ITER {
        let hold = held(&x, &g);
        if hold != was_held {
            hist.clear();
            was_held = hold.clone();
        }
        let free_g: Vec<f64> = g.iter().zip(&hold).map(|(&gi, &h)| if h { 0.0 } else { gi }).collect();
        let gmax = free_g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if gmax < gtol {
            return Ok(finish(x, fx, it, start));
        }
        recent.push_back(fx);
        if recent.len() > STALL {
            let old = recent.pop_front().expect("full");
            if old - fx <= STALL_REL * fx.abs().max(1.0) && gmax < FLAT_GTOL {
                return Ok(finish(x, fx, it, start));
            }
        }
        // Two-loop recursion on the free coordinates.
        let mut d: Vec<f64> = free_g.iter().map(|v| -v).collect();
        let mut alphas = Vec::with_capacity(hist.len());
        for (s, y, rho) in hist.iter().rev() {
            let a = rho * dot(s, &d);
            d.iter_mut().zip(y).for_each(|(di, yi)| *di -= a * yi);
            alphas.push(a);
        }
        if let Some((s, y, _)) = hist.last() {
            let scale = dot(s, y) / dot(y, y);
            d.iter_mut().for_each(|di| *di *= scale);
        } else {
            // First step: at most 1 in log space.
            let scale = 1.0 / gmax.max(1.0);
            d.iter_mut().for_each(|di| *di *= scale);
        }
        for ((s, y, rho), a) in hist.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &d);
            d.iter_mut().zip(s).for_each(|(di, si)| *di += (a - b) * si);
        }
        d.iter_mut().zip(&hold).for_each(|(di, &h)| {
            if h {
                *di = 0.0
            }
        });
        let mut slope = dot(&free_g, &d);
        if slope >= 0.0 {
            // Not a descent direction (curvature lost): restart along the gradient.
            hist.clear();
            let scale = 1.0 / gmax.max(1.0);
            d = free_g.iter().map(|v| -v * scale).collect();
            slope = dot(&free_g, &d);
        }
        // Backtracking on the projected path.
        let mut step = 1.0;
        let mut accepted = None;
        for _ in 0..40 {
            let xn: Vec<f64> = x.iter().zip(&d).map(|(xi, di)| (xi + step * di).clamp(-LOG_BOUND, LOG_BOUND)).collect();
            if let Some((fnew, gnew)) = f(&xn) {
                let moved: Vec<f64> = xn.iter().zip(&x).map(|(a, b)| a - b).collect();
                if fnew <= fx + 1e-4 * dot(&g, &moved) {
                    accepted = Some((xn, fnew, gnew));
                    break;
                }
            }
            step *= 0.5;
        }
        let Some((xn, fnew, gnew)) = accepted else {
            // No decrease along a descent direction: the value is at f64's floor.
            if gmax < FLAT_GTOL {
                return Ok(finish(x, fx, it, start));
            }
            if hist.is_empty() {
                return Err(OptimError::NotConverged { iterations: it, gradient: gmax });
            }
            hist.clear();
            continue;
        };
        let s: Vec<f64> = xn.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gnew.iter().zip(&g).map(|(a, b)| a - b).collect();
        let ys = dot(&y, &s);
        if ys > 1e-12 * dot(&y, &y).sqrt() * dot(&s, &s).sqrt() {
            if hist.len() == MEMORY {
                hist.remove(0);
            }
            hist.push((s, y, 1.0 / ys));
        }
        x = xn;
        fx = fnew;
        g = gnew;
    }
    let hold = held(&x, &g);
    let gmax = g.iter().zip(&hold).filter(|(_, h)| !**h).fold(0.0f64, |m, (v, _)| m.max(v.abs()));
    Err(OptimError::NotConverged { iterations: MAX_ITER, gradient: gmax })
}

fn finish(theta: Vec<f64>, value: f64, iterations: usize, start: &[f64]) -> Optimum {
    let boundary = theta
        .iter()
        .zip(start)
        .map(|(&t, &s)| {
            if t - s <= -BOUNDARY_LOG || t <= -LOG_BOUND {
                Some(-1)
            } else if t - s >= BOUNDARY_LOG || t >= LOG_BOUND {
                Some(1)
            } else {
                None
            }
        })
        .collect();
    Optimum { theta, value, iterations, boundary }
}

/// Standard errors of the parameters (not their logs) at an optimum of a negative
/// log-likelihood whose total weight is `total`: the inverse of the Hessian in log space
/// (central differences of the analytic gradient, symmetrised), mapped by the delta method
/// (`se(p) = p se(log p)`). Parameters at a boundary get none and are left out of the
/// Hessian; a Hessian that is not positive definite gives none at all.
pub fn standard_errors(f: &Objective<'_>, opt: &Optimum, total: f64) -> Vec<Option<f64>> {
    let free: Vec<usize> = (0..opt.theta.len()).filter(|&i| opt.boundary[i].is_none()).collect();
    let k = free.len();
    let mut h = vec![vec![0.0; k]; k];
    let eps = 1e-4;
    for (a, &i) in free.iter().enumerate() {
        let mut plus = opt.theta.clone();
        let mut minus = opt.theta.clone();
        plus[i] += eps;
        minus[i] -= eps;
        let (Some((_, gp)), Some((_, gm))) = (f(&plus), f(&minus)) else {
            return vec![None; opt.theta.len()];
        };
        for (b, &j) in free.iter().enumerate() {
            h[a][b] = (gp[j] - gm[j]) / (2.0 * eps) * total;
        }
    }
    let h: Vec<Vec<f64>> = (0..k).map(|a| (0..k).map(|b| 0.5 * (h[a][b] + h[b][a])).collect()).collect();
    let Some(inv_diag) = cholesky_inverse_diagonal(&h) else {
        return vec![None; opt.theta.len()];
    };
    let mut se = vec![None; opt.theta.len()];
    for (a, &i) in free.iter().enumerate() {
        let v = inv_diag[a];
        if v.is_finite() && v > 0.0 {
            se[i] = Some(opt.theta[i].exp() * v.sqrt());
        }
    }
    se
}

/// The diagonal of `m`'s inverse, when `m` is symmetric positive definite.
fn cholesky_inverse_diagonal(m: &[Vec<f64>]) -> Option<Vec<f64>> {
    let n = m.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s = m[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            if i == j {
                if s.is_nan() || s <= 0.0 || s.is_infinite() {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    // (L L^T)^-1 diagonal: column j of L^-1 by forward substitution; diag_i = Σ_k (L^-1)_{k i}^2.
    let mut diag = vec![0.0; n];
    for (j, d) in diag.iter_mut().enumerate() {
        let mut col = vec![0.0; n];
        for i in 0..n {
            let rhs = if i == j { 1.0 } else { 0.0 };
            let s = rhs - (0..i).map(|k| l[i][k] * col[k]).sum::<f64>();
            col[i] = s / l[i][i];
        }
        // col = L^-1 e_j: the j-th column of L^-1; (L^-T L^-1)_{jj} = Σ_i (L^-1)_{i j}^2.
        *d = col.iter().map(|v| v * v).sum();
    }
    Some(diag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_rosenbrock_minimum_and_holds_a_parameter_that_runs_off() {
        let rosen = |x: &[f64]| {
            let (a, b) = (x[0], x[1]);
            let f = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
            Some((f, vec![-2.0 * (1.0 - a) - 400.0 * a * (b - a * a), 200.0 * (b - a * a)]))
        };
        let o = minimize(&rosen, &[-1.2, 1.0], 1e-10).unwrap();
        assert!((o.theta[0] - 1.0).abs() < 1e-6 && (o.theta[1] - 1.0).abs() < 1e-6, "{:?}", o.theta);
        // exp(x) keeps falling as x goes to -infinity: held at the lower face.
        let run = |x: &[f64]| Some((x[0].exp() + (x[1] - 2.0).powi(2), vec![x[0].exp(), 2.0 * (x[1] - 2.0)]));
        let o = minimize(&run, &[0.0, 0.0], 1e-10).unwrap();
        assert_eq!(o.boundary, vec![Some(-1), None]);
        assert!((o.theta[1] - 2.0).abs() < 1e-6, "{:?}", o.theta);
        // A likelihood that keeps rising, ever more slowly, as a parameter runs off
        // (1 / (1 + e^x) has no minimum): stopped at f64's floor, reported at the boundary.
        let slow = |x: &[f64]| {
            let e = x[0].exp();
            Some((1.0 / (1.0 + e) + (x[1] - 1.0).powi(2), vec![-e / ((1.0 + e) * (1.0 + e)), 2.0 * (x[1] - 1.0)]))
        };
        let o = minimize(&slow, &[0.0, 0.0], 1e-12).unwrap();
        assert_eq!(o.boundary, vec![Some(1), None], "{:?}", o.theta);
        // Within what the flat-optimum stop allows (gradient below FLAT_GTOL).
        assert!((o.theta[1] - 1.0).abs() < FLAT_GTOL, "{:?}", o.theta);
    }

    #[test]
    fn inverse_diagonal_of_a_known_matrix() {
        // [[4, 2], [2, 3]]^-1 = [[3, -2], [-2, 4]] / 8.
        let d = cholesky_inverse_diagonal(&[vec![4.0, 2.0], vec![2.0, 3.0]]).unwrap();
        assert!((d[0] - 3.0 / 8.0).abs() < 1e-15 && (d[1] - 0.5).abs() < 1e-15);
        assert!(cholesky_inverse_diagonal(&[vec![1.0, 2.0], vec![2.0, 1.0]]).is_none());
    }
}
