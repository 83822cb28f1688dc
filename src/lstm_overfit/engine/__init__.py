"""Training engines: fast, keras_fit, kernels, gemm.c, cluster. Imports datasets, params, infrastructure."""
