"""The L2-regularised, L2-loss (squared hinge) linear SVM of liblinear ``-s 1 -c C -B 1``, one-vs-rest, in torch.

The SoundNet paper scores frozen features with exactly this classifier, so the backbone benchmark needs it;
scikit-learn is not a dependency. ``-s 1`` solves the dual by coordinate descent, ``-s 2`` the primal by a trust
region Newton method: both reach the unique minimiser of

    0.5 ||w||^2 + C sum_i max(0, 1 - y_i w.x_i)^2,    x_i with a constant 1 appended (``-B 1``: a regularised bias),

which is what this module computes, by Newton's method with preconditioned conjugate-gradient steps
(Hessian-vector products, every class at once; the preconditioner is the Cholesky factor of the Hessian with
every sample inside the margin, computed once) and a backtracking line search, to a gradient tolerance
tighter than liblinear's default stopping rule, so it sits at least as close to that minimiser.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LinearSVM:
    """One weight column per class over the features plus the bias feature: ``weights`` (D + 1, K)."""

    weights: torch.Tensor
    bias_feature: float = 1.0

    def decision(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) features -> (N, K) decision values ``w_k . [x, B]``."""
        x = torch.as_tensor(x, dtype=self.weights.dtype)
        return x @ self.weights[:-1] + self.bias_feature * self.weights[-1]  # (N, K)


def _objective(w: torch.Tensor, z: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    """Per-class objective (K,) from weights (D, K), scores z = Xw (N, K) and +-1 targets y (N, K)."""
    margin = (1.0 - y * z).clamp(min=0.0)  # (N, K)
    return 0.5 * (w * w).sum(0) + c * (margin * margin).sum(0)


def fit_linear_svm(x: torch.Tensor, labels: torch.Tensor, n_classes: int, c: float = 0.01, bias: float = 1.0,
                   tol: float = 1e-4, max_newton: int = 100, max_cg: int = 250) -> LinearSVM:
    """One-vs-rest L2-loss linear SVMs on features ``x`` (N, D) with integer ``labels`` (N,) in [0, n_classes).

    ``tol`` is the stopping ratio ||grad|| / ||grad at w = 0|| per class.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    labels = torch.as_tensor(labels, dtype=torch.long)
    if x.ndim != 2 or labels.shape != (x.shape[0],):
        raise ValueError(f"features must be (N, D) and labels (N,), got {tuple(x.shape)} and {tuple(labels.shape)}")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got {int(labels.min())}..{int(labels.max())}")
    xb = torch.cat([x, torch.full((len(x), 1), float(bias), dtype=x.dtype)], 1)  # (N, D + 1)
    y = torch.full((len(x), n_classes), -1.0, dtype=x.dtype)
    y[torch.arange(len(x)), labels] = 1.0  # (N, K) one-vs-rest targets
    w = torch.zeros(xb.shape[1], n_classes, dtype=x.dtype)  # (D + 1, K)
    eye = torch.eye(xb.shape[1], dtype=x.dtype)
    chol = torch.linalg.cholesky(eye + 2.0 * c * xb.T @ xb)  # (D + 1, D + 1): every sample active
    z = xb @ w  # (N, K)
    grad0 = None
    for _ in range(max_newton):
        margin = 1.0 - y * z  # (N, K)
        active = (margin > 0).to(x.dtype)  # (N, K) samples inside the margin, per class
        grad = w - 2.0 * c * xb.T @ (y * margin * active)  # (D + 1, K)
        gnorm = grad.norm(dim=0)  # (K,)
        grad0 = gnorm if grad0 is None else grad0
        if bool((gnorm <= tol * grad0.clamp(min=1e-12)).all()):
            break
        step = _newton_step(xb, active, grad, c, chol, max_cg)  # (D + 1, K)
        zstep = xb @ step  # (N, K)
        f0 = _objective(w, z, y, c)  # (K,)
        slope = (grad * step).sum(0)  # (K,) negative: the step descends
        t = torch.ones(n_classes, dtype=x.dtype)
        for _ in range(30):  # halve each class's step until Armijo holds for it
            bad = _objective(w + t * step, z + t * zstep, y, c) > f0 + 0.01 * t * slope  # (K,)
            if not bool(bad.any()):
                break
            t = torch.where(bad, t * 0.5, t)
        w = w + t * step
        z = z + t * zstep
    return LinearSVM(w, float(bias))


def _newton_step(xb: torch.Tensor, active: torch.Tensor, grad: torch.Tensor, c: float, chol: torch.Tensor,
                 max_cg: int) -> torch.Tensor:
    """Solve (I + 2C X_A^T X_A) d = -grad per class column by preconditioned conjugate gradients."""

    x32, active32 = xb.float(), active.float()  # the products in float32: half the memory traffic

    def hess(v: torch.Tensor) -> torch.Tensor:  # (D + 1, K) -> (D + 1, K)
        return v + 2.0 * c * (x32.T @ (active32 * (x32 @ v.float()))).double()

    d = torch.zeros_like(grad)
    r = -grad  # residual of H d = -grad at d = 0
    zr = torch.cholesky_solve(r, chol)  # (D + 1, K) preconditioned residual
    p = zr.clone()
    rz = (r * zr).sum(0)  # (K,)
    stop = 1e-12 * (r * r).sum(0) + 1e-30  # relative residual 1e-6 per class
    for _ in range(max_cg):
        done = (r * r).sum(0) <= stop  # (K,)
        if bool(done.all()):
            break
        hp = hess(p)
        alpha = rz / (p * hp).sum(0).clamp(min=1e-300)  # (K,)
        alpha = torch.where(done, torch.zeros_like(alpha), alpha)  # converged columns stay put
        d = d + alpha * p
        r = r - alpha * hp
        zr = torch.cholesky_solve(r, chol)
        rz_new = (r * zr).sum(0)
        p = zr + (rz_new / rz.clamp(min=1e-300)) * p
        rz = rz_new
    return d
