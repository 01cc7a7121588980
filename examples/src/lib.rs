//! Shared nothing: each example is a file under `examples/`.
