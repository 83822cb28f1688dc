"""One module per DVC stage. Each `main(argv)` only reads its arguments (paths from dvc.yaml)
and params, calls library functions and writes its outputs."""
