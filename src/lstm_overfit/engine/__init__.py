"""The training engine: fast, kernels, gemm.c, cluster (Dask). Imports datasets, params, infrastructure."""
