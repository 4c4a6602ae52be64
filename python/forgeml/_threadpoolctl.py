"""Make threadpoolctl see and limit forgeml's thread pool, as it does OpenBLAS and OpenMP.

threadpoolctl (>= 3.5) finds libraries among the loaded shared objects by file name prefix and
talks to them through C symbols; forgeml._cpu exports three (csrc/bind/threadpoolctl_abi.cpp).
The user API is "openmp": forgeml's pool replaced the OpenMP runtime the kernels used to run on,
so code that limits OpenMP threads (scikit-learn does, in nested parallelism) limits it too.
threadpoolctl is optional; without it (or with an older one) nothing is registered.
"""

from __future__ import annotations

import ctypes

_SYMBOL = "forgeml_threadpool_get_num_threads"


def register() -> bool:
    try:
        import threadpoolctl
    except ImportError:
        return False
    base = getattr(threadpoolctl, "LibController", None)
    if base is None or not hasattr(threadpoolctl, "register"):
        return False

    class ForgemlController(base):
        user_api = "openmp"
        internal_api = "forgeml"
        filename_prefixes = ("_cpu",)
        check_symbols = (_SYMBOL, "forgeml_threadpool_set_num_threads", "forgeml_threadpool_version")

        def get_num_threads(self):
            return self.dynlib.forgeml_threadpool_get_num_threads()

        def set_num_threads(self, num_threads):
            return self.dynlib.forgeml_threadpool_set_num_threads(ctypes.c_int(max(1, int(num_threads))))

        def get_version(self):
            fn = self.dynlib.forgeml_threadpool_version
            fn.restype = ctypes.c_char_p
            return fn().decode()

    if not any(getattr(c, "internal_api", None) == "forgeml" for c in getattr(threadpoolctl, "_ALL_CONTROLLERS", ())):
        threadpoolctl.register(ForgemlController)
    return True
