// Workflows that share module names (in different parents) and step names (as siblings) do
// not collide: everything generated lives inside each workflow's own module.
use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

mod a {
    use super::*;

    #[workflow]
    pub mod one {
        use super::*;

        #[step(entry)]
        pub async fn start(x: u32) -> Result<u32, Failed> {
            Ok(x + 1)
        }

        #[step(after = start, exit)]
        pub async fn finish(x: u32) -> Result<u32, Failed> {
            Ok(x * 10)
        }
    }
}

mod b {
    use super::*;

    #[workflow]
    pub mod one {
        use super::*;

        #[step(entry)]
        pub async fn start(x: String) -> Result<String, Failed> {
            Ok(x)
        }

        #[step(after = start, exit)]
        pub async fn finish(x: String) -> Result<usize, Failed> {
            Ok(x.len())
        }
    }

    // A sibling with the same step names and the same fan-out shape.
    #[workflow]
    pub mod two {
        use super::*;

        #[step(entry)]
        pub async fn start(x: u8) -> Result<u8, Failed> {
            Ok(x)
        }

        #[step(after = start)]
        pub async fn left(x: u8) -> Result<u8, Failed> {
            Ok(x)
        }

        #[step(after = start)]
        pub async fn right(x: u8) -> Result<u8, Failed> {
            Ok(x)
        }

        #[step(after = [left, right], exit)]
        pub async fn finish(l: u8, r: u8) -> Result<u16, Failed> {
            Ok(u16::from(l) + u16::from(r))
        }
    }

    #[workflow]
    pub mod three {
        use super::*;

        #[step(entry)]
        pub async fn start(x: u8) -> Result<u8, Failed> {
            Ok(x)
        }

        #[step(after = start)]
        pub async fn left(x: u8) -> Result<u8, Failed> {
            Ok(x)
        }

        #[step(after = start)]
        pub async fn right(x: u8) -> Result<u8, Failed> {
            Ok(x)
        }

        #[step(after = [left, right], exit)]
        pub async fn finish(l: u8, r: u8) -> Result<u8, Failed> {
            Ok(l.max(r))
        }
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    // A context is one run: each run builds its own.
    let ctx = || Ctx::new(());
    assert_eq!(a::one::Workflow::run(&ctx(), 1).await.unwrap(), 20);
    assert_eq!(
        b::one::Workflow::run(&ctx(), "abc".to_owned())
            .await
            .unwrap(),
        3
    );
    assert_eq!(b::two::Workflow::run(&ctx(), 4).await.unwrap(), 8);
    assert_eq!(b::three::Workflow::run(&ctx(), 4).await.unwrap(), 4);
    assert_ne!(a::one::NAME, "");
    assert_ne!(a::one::FINGERPRINT, b::one::FINGERPRINT);

    let flow = b::two::Flow::new(&ctx(), 2).start().await.unwrap();
    let flow = flow.left().await.unwrap().right().await.unwrap();
    assert_eq!(flow.finish().await.unwrap(), 4);
}
