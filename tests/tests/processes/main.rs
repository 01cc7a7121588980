//! Tests that start child processes (`src/bin`) and kill them: real crashes of a worker, and
//! a step killed in the middle.
//!
//! A binary of their own: a child is forked with a copy of every open file of this process,
//! and an engine lock is a lock on an open file, so a child forked while another test's engine
//! held a lock kept that lock until it ran its program, and an engine started just after was
//! refused. The tests of `durable`, which start engines one after another on one file, run
//! where nothing is forked.

mod attempts;
mod crash;
