"""NuSVC (scikit-learn's API): libsvm's nu-SVC per pair of classes on forgeml's SMO core."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval

from ..ops import svm as ops
from ..ops.device import is_cupy
from . import _kernels
from ._svc import SVC

__all__ = ["NuSVC"]


def _fill(C, total):
    """libsvm's start point: the bounds filled in order until they hold `total`."""
    before = np.concatenate([[0.0], np.cumsum(C)[:-1]])
    return np.clip(total - before, 0.0, C)


class NuSVC(SVC):
    """Nu-Support Vector Classification (scikit-learn's ``sklearn.svm.NuSVC`` API).

    nu in (0, 1] bounds the fraction of margin errors and of support vectors. Each pair of classes
    is libsvm's nu-SVC dual (sum_i alpha_i = nu l, labels balanced) solved by forgeml's SMO in its
    nu mode; the solution is rescaled by 1 / r as libsvm does, so dual_coef_ and intercept_ match
    scikit-learn's."""

    _parameter_constraints: dict = {
        **{k: v for k, v in SVC._parameter_constraints.items() if k != "C"},
        "nu": [Interval(Real, 0.0, 1.0, closed="right")],
    }

    def __init__(
        self,
        *,
        nu=0.5,
        kernel="rbf",
        degree=3,
        gamma="scale",
        coef0=0.0,
        shrinking=True,
        probability=False,
        tol=1e-3,
        cache_size=200,
        class_weight=None,
        verbose=False,
        max_iter=-1,
        decision_function_shape="ovr",
        break_ties=False,
        random_state=None,
    ):
        super().__init__(
            kernel=kernel,
            degree=degree,
            gamma=gamma,
            coef0=coef0,
            shrinking=shrinking,
            probability=probability,
            tol=tol,
            cache_size=cache_size,
            class_weight=class_weight,
            verbose=verbose,
            max_iter=max_iter,
            decision_function_shape=decision_function_shape,
            break_ties=break_ties,
            random_state=random_state,
        )
        del self.C
        self.nu = nu

    def _cost_scale(self):
        return 1.0

    def _one_class_left_message(self):
        # libsvm's answer when one class has no weight left, and why
        return "specified nu is infeasible: all samples with positive weights belong to the same class."

    def _solve_pairs(self, Xk, members, Ck):
        nu = float(self.nu)
        k = len(members)
        for a in range(k):  # libsvm's feasibility test, on the weighted class sizes
            for b in range(a + 1, k):
                na, nb = Ck[members[a]].sum(), Ck[members[b]].sum()
                if nu * (na + nb) / 2 > min(na, nb):
                    raise ValueError("specified nu is infeasible")
        gpu = is_cupy(Xk)  # from _svc_cuda.fit: the kept rows on the device, solved there
        pre = (self.kernel if gpu else getattr(self, "_solver_kernel", self.kernel)) == "precomputed"
        xp = _device_module() if gpu else np
        out = []
        for a, b in self._pairs(k):
            idx = xp.asarray(np.concatenate([members[a], members[b]]))
            Xp = Xk[xp.ix_(idx, idx)] if pre else Xk[idx]
            Ca, Cb = Ck[members[a]], Ck[members[b]]
            total = nu * (Ca.sum() + Cb.sum()) / 2
            y = np.r_[np.ones(Ca.size), -np.ones(Cb.size)]
            alpha0 = np.r_[_fill(Ca, total), _fill(Cb, total)]
            alpha, rho, r, _obj, it, ok = (ops.svm_solve_cuda if gpu else ops.svm_solve)(
                xp.ascontiguousarray(Xp, dtype=np.float32) if gpu else _kernels.rows32(Xp),
                y,
                np.zeros(y.size),
                np.r_[Ca, Cb],
                alpha0,
                "precomputed" if pre else self.kernel,
                gamma=self._gamma,
                coef0=self.coef0,
                degree=self.degree,
                tol=self.tol,
                **({} if gpu else {"shrinking": self.shrinking}),
                cache_size=self.cache_size,
                max_iter=self.max_iter,
                nu=True,
            )
            out.append((y * alpha / r, rho / r, it, ok))
        return out


def _device_module():
    import cupy

    return cupy
