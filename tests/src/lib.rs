//! Tests live under `tests/`.
