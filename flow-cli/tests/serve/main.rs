//! `flow serve` against an SQLite file populated by running real workflows under an engine:
//! its HTTP pages and API (`http`), and its pages in a real browser (`browser`: Debian's
//! chromium through chromedriver, driven by fantoccini).
#![allow(
    unreachable_pub,
    clippy::missing_errors_doc,
    clippy::missing_panics_doc,
    reason = "test workflows and helpers, public as `#[workflow]` needs its modules' items"
)]

mod browser;
#[path = "../fixture/mod.rs"]
mod fixture;
mod http;
mod server;
