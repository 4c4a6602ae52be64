"""Platt scaling and pairwise coupling, as libsvm does for SVC(probability=True).

Platt: P(y = +1 | f) = 1 / (1 + exp(A f + B)), fitted by Newton's method with a backtracking line
search on regularised targets (Lin, Lin & Weng 2007). Coupling: the pairwise estimates r_ij are
combined into class probabilities by Wu, Lin & Weng's (2004) second method."""
from __future__ import annotations

import numpy as np


def _fapb_terms(f, t, A, B):
    z = f * A + B
    # log(1 + exp(z)) - t z, written to avoid overflow on either side
    return np.sum(np.where(z >= 0, t * z + np.log1p(np.exp(-np.abs(z))), (t - 1) * z + np.log1p(np.exp(-np.abs(z)))))


def sigmoid_train(dec, labels, max_iter=100, min_step=1e-10, sigma=1e-12, eps=1e-5):
    """(A, B) for decision values `dec` and labels (> 0 positive)."""
    dec = np.asarray(dec, dtype=np.float64)
    pos = labels > 0
    prior1, prior0 = float(pos.sum()), float((~pos).sum())
    t = np.where(pos, (prior1 + 1) / (prior1 + 2), 1 / (prior0 + 2))
    A, B = 0.0, np.log((prior0 + 1) / (prior1 + 1))
    fval = _fapb_terms(dec, t, A, B)
    for _ in range(max_iter):
        z = dec * A + B
        ez = np.exp(-np.abs(z))
        p = np.where(z >= 0, ez / (1 + ez), 1 / (1 + ez))  # 1 / (1 + exp(z))
        q = 1 - p
        d2 = p * q
        h11 = sigma + np.sum(dec * dec * d2)
        h22 = sigma + np.sum(d2)
        h21 = np.sum(dec * d2)
        d1 = t - p
        g1, g2 = np.sum(dec * d1), np.sum(d1)
        if abs(g1) < eps and abs(g2) < eps:
            break
        det = h11 * h22 - h21 * h21
        dA = -(h22 * g1 - h21 * g2) / det
        dB = -(-h21 * g1 + h11 * g2) / det
        gd = g1 * dA + g2 * dB
        step = 1.0
        while step >= min_step:
            nA, nB = A + step * dA, B + step * dB
            nf = _fapb_terms(dec, t, nA, nB)
            if nf < fval + 1e-4 * step * gd:
                A, B, fval = nA, nB, nf
                break
            step /= 2
        if step < min_step:
            break
    return A, B


def sigmoid_predict(dec, A, B):
    z = dec * A + B
    ez = np.exp(-np.abs(z))
    return np.where(z >= 0, ez / (1 + ez), 1 / (1 + ez))


def couple(r):
    """r (n, k, k) pairwise estimates P(i | i or j) -> (n, k) class probabilities."""
    n, k = r.shape[0], r.shape[1]
    if k == 2:
        return np.stack([r[:, 0, 1], r[:, 1, 0]], axis=1)
    Q = -r.transpose(0, 2, 1) * r  # Q[t, j] = -r[j, t] r[t, j]
    diag = np.sum(r.transpose(0, 2, 1) ** 2, axis=2) - np.einsum("nii->ni", r) ** 2  # sum_{j != t} r[j, t]^2
    idx = np.arange(k)
    Q[:, idx, idx] = diag
    p = np.full((n, k), 1.0 / k)
    eps = 0.005 / k
    active = np.ones(n, dtype=bool)
    for _ in range(max(100, k)):
        Qp = np.einsum("ntj,nj->nt", Q, p)
        pQp = np.sum(p * Qp, axis=1)
        err = np.max(np.abs(Qp - pQp[:, None]), axis=1)
        active &= err >= eps
        if not active.any():
            break
        a = active
        for t in range(k):
            diff = (-Qp[a, t] + pQp[a]) / Q[a, t, t]
            p[a, t] += diff
            pQp[a] = (pQp[a] + diff * (diff * Q[a, t, t] + 2 * Qp[a, t])) / (1 + diff) ** 2
            Qp[a] = (Qp[a] + diff[:, None] * Q[a, t, :]) / (1 + diff)[:, None]
            p[a] /= (1 + diff)[:, None]
    return p
