// `#[workflow(crate = path)]`: the runtime reached through an explicit path or a re-export.
use flow_runtime::prelude::{Ctx, workflow};

pub mod reexport {
    pub use ::flow_runtime as runtime;
}

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow(crate = ::flow_runtime)]
pub mod absolute {
    use super::*;

    #[step(entry)]
    pub async fn start(x: u32) -> Result<u32, Failed> {
        Ok(x)
    }

    #[step(after = start, exit)]
    pub async fn finish(x: u32) -> Result<u32, Failed> {
        Ok(x + 1)
    }
}

#[workflow(crate = crate::reexport::runtime)]
pub mod renamed {
    use super::*;

    #[step(entry)]
    pub async fn start(x: u32) -> Result<u32, Failed> {
        Ok(x)
    }

    #[step(after = start, exit)]
    pub async fn finish(x: u32) -> Result<u32, Failed> {
        Ok(x + 2)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // A context is one run: each run builds its own.
    let ctx = || Ctx::new(());
    assert_eq!(absolute::Workflow::run(&ctx(), 1).await.unwrap(), 2);
    assert_eq!(renamed::Workflow::run(&ctx(), 1).await.unwrap(), 3);
    let flow = renamed::Flow::new(&ctx(), 5).start().await.unwrap();
    assert_eq!(flow.finish().await.unwrap(), 7);
}
