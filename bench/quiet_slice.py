"""The tree and rnn rows that decide issues 15 and 21's targets, for a quiet machine: pin the process
to two physical cores (e.g. `taskset -c 0,1 env OMP_NUM_THREADS=2 PYTHONPATH=python python
bench/quiet_slice.py`). RandomForest fit at 100k x 50 with 100 trees (once per side: scikit-learn
takes tens of seconds), predict_proba rows, the compact-file rows, ExtraTrees fit, then the rnn
family. Peers that are not installed are skipped, as in `python -m forgeml bench`."""

import time

from forgeml.bench import header, rnn, tree
from forgeml.bench.harness import Bench

print("# " + "  ".join(f"{k}={v}" for k, v in header().items()), flush=True)
bench = Bench(repeats=3)
t0 = time.time()
models, Xte = tree._fit_case(bench, 100_000, 100, repeats=1)
tree._predict_case(bench, models, Xte)
tree._extra_case(bench, 100_000, 100, repeats=2)
print(f"# tree rows took {time.time() - t0:.0f} s", flush=True)
rnn.run(bench)
print(bench.summary(["tree", "rnn"]))
