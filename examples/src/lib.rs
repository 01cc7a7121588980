//! The `flow` examples. Each one is a single self-contained file in `examples/`, runnable with
//! no setup:
//!
//! ```text
//! cargo run --example book_flight   # the main example: validate → search → choose → book → confirm
//! cargo run --example triage        # routing: an enum return picks the next step
//! cargo run --example research      # parallelization: a fan-out to three branches and a join
//! cargo run --example orchestrator  # orchestrator-workers: one step per item, three at a time
//! cargo run --example evaluator     # evaluator-optimizer: a bounded loop back to an earlier step
//! ```
//!
//! This library is empty: the examples share nothing, so each can be read on its own.
