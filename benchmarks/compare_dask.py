"""What cattn.dask costs over calling cattn directly, on this machine.

    python benchmarks/compare_dask.py           (needs pip install ".[dask]")
    python benchmarks/compare_dask.py --write-docs   # also docs/_data/...

For a few float32 self-attention sizes: the direct call (all cores in one
kernel call) against cattn.dask with the local threaded scheduler and with
a dask.distributed LocalCluster on loopback (2 worker processes x 1
thread, each task one OpenMP thread), with the query chunked along the
batch and the keys into chunks of `key_chunk`.  The Dask side includes
building the graph and gathering the result; the inputs are NumPy arrays
wrapped with da.from_array (the cluster case ships them to the workers
once per run).  Ratios are time(Dask) / time(direct): the overhead.
"""
import sys

import numpy as np

import cattn
from benchmarks.common import compare, write_docs_table

# (B, H, L=S, E, query batch chunk, key chunk)
SIZES = [(8, 8, 256, 64, 2, 256), (4, 8, 1024, 64, 1, 512),
         (1, 8, 4096, 64, 1, 1024)]


def main():
    import dask.array as da
    import distributed

    import cattn.dask as cd
    print(f"cattn {cattn.__version__}, dask {__import__('dask').__version__}"
          f", distributed {distributed.__version__}")
    print(f"{'case':<40} {'direct':>9} {'threads':>9} {'cluster':>9} "
          f"{'ratio thr':>10} {'ratio clu':>10}")
    rows = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                  processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        for B, H, L, E, bc, kc in SIZES:
            x = np.random.default_rng(0).standard_normal(
                (B, H, L, E), dtype=np.float32)
            q = da.from_array(x, chunks=(bc, H, L, E))
            kv = da.from_array(x, chunks=(bc, H, kc, E))

            def lazy():
                return cd.scaled_dot_product_attention(q, kv, kv)

            def direct():
                return cattn.scaled_dot_product_attention(x, x, x)
            # cattn's one method: interleaved batched samples, best ones.
            threads = compare(direct, lambda: lazy().compute(
                scheduler="threads"), pairs=3)
            cluster = compare(direct, lambda: client.compute(
                lazy()).result(), pairs=3)
            t_direct = min(threads.ours + cluster.ours)
            t_threads, t_cluster = min(threads.peer), min(cluster.peer)
            case = (f"B{B} H{H} L=S={L} E{E}, chunks b{bc} k{kc} "
                    f"({B // bc * (L // kc)} pair tasks)")
            print(f"{case:<40} {t_direct * 1e3:>7.1f}ms "
                  f"{t_threads * 1e3:>7.1f}ms {t_cluster * 1e3:>7.1f}ms "
                  f"{t_threads / t_direct:>10.2f} "
                  f"{t_cluster / t_direct:>10.2f}", flush=True)
            rows.append((f"B{B} H{H} L=S={L} E{E}", f"{bc} x {kc}",
                         f"{t_direct * 1e3:.1f}", f"{t_threads * 1e3:.1f}",
                         f"{t_cluster * 1e3:.1f}",
                         f"{t_threads / t_direct:.2f}",
                         f"{t_cluster / t_direct:.2f}"))
    if "--write-docs" in sys.argv:
        write_docs(rows)


def write_docs(rows):
    """docs/_data/dask_overhead.rst: the table the Dask page includes."""
    write_docs_table("dask_overhead", (
        "size", "chunks (batch x keys)", "direct ms", "threads ms",
        "cluster ms", "threads / direct", "cluster / direct"), rows)


if __name__ == "__main__":
    main()
