"""The training engine (fast, kernels, gemm.c), also on a Dask cluster (cluster).
Imports datasets, params, infrastructure."""
