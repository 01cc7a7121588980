// Two routers return the same enum, and their routes converge on the same steps: one `VFlow`
// serves both.
use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};
#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod w {
    use super::*;
    #[derive(Debug, Serialize, Deserialize)]
    pub enum U {
        R1(String),
        R2(String),
    }
    #[derive(Debug, Serialize, Deserialize)]
    pub enum V {
        X(String),
        Y(String),
    }
    #[step(entry, routes = U)]
    pub async fn e(x: String) -> Result<U, Failed> {
        Ok(if x.len() > 2 { U::R1(x) } else { U::R2(x) })
    }
    #[step(after = e, routes = V)]
    pub async fn r1(x: String) -> Result<V, Failed> {
        Ok(V::X(x))
    }
    #[step(after = e, routes = V)]
    pub async fn r2(x: String) -> Result<V, Failed> {
        Ok(V::Y(x))
    }
    #[step(after = r1 | r2, exit)]
    pub async fn x(s: String) -> Result<String, Failed> {
        Ok(format!("x {s}"))
    }
    #[step(after = r1 | r2, exit)]
    pub async fn y(s: String) -> Result<String, Failed> {
        Ok(format!("y {s}"))
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    // A context is one run: each run builds its own.
    let ctx = || Ctx::new(());
    assert_eq!(
        w::Workflow::run(&ctx(), "abcd".into()).await.unwrap(),
        "x abcd"
    );
    assert_eq!(w::Workflow::run(&ctx(), "a".into()).await.unwrap(), "y a");
    let out = match w::Flow::new(&ctx(), "a".into()).e().await.unwrap() {
        w::UFlow::R1(f) => match f.r1().await.unwrap() {
            w::VFlow::X(f) => f.x().await.unwrap(),
            w::VFlow::Y(f) => f.y().await.unwrap(),
        },
        w::UFlow::R2(f) => match f.r2().await.unwrap() {
            w::VFlow::X(f) => f.x().await.unwrap(),
            w::VFlow::Y(f) => f.y().await.unwrap(),
        },
    };
    assert_eq!(out, "y a");
}
