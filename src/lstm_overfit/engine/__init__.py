"""The training engine (fast, kernels, gemm.c). Imports datasets, params, infrastructure."""
