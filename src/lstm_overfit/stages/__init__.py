"""One module per DVC stage: main(argv) wires paths and params to the parts. Imports any part."""
