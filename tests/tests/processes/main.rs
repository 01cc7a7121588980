//! Tests that start child processes (`src/bin`) and kill them: real crashes of a worker, a
//! step killed in the middle, and many engines on one store killed and paused at random.
//!
//! A binary of their own, so that the children forked here never inherit another test's open
//! files (stores, temporary databases).

mod attempts;
mod crash;
mod fleet;
