"""The training engines: fast, kernels, gemm.c, keras_fit (Keras), cluster (Dask). Imports datasets, params, infrastructure."""
