//! probe
use flow_runtime::prelude::*;
use std::convert::Infallible;

#[workflow]
pub mod lin {
    use super::*;
    #[step(entry)]
    pub async fn s1(x: u64) -> Result<u64, Infallible> { Ok(x + 1) }
    #[step(after = s1)]
    pub async fn s2(x: u64) -> Result<u64, Infallible> { Ok(x + 1) }
    #[step(after = s2, exit)]
    pub async fn s3(x: u64) -> Result<u64, Infallible> { Ok(x + 1) }
}
fn main() {}
