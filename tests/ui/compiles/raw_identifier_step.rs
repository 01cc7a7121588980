// A step whose name is a keyword, written as a raw identifier.
use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn r#match(req: String) -> Result<String, Failed> {
        Ok(req)
    }

    #[step(after = r#match, exit)]
    pub async fn r#type(trip: String) -> Result<usize, Failed> {
        Ok(trip.len())
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    let ctx = Ctx::new(());
    assert_eq!(
        trip::Workflow::run(&ctx, "abc".to_owned()).await.unwrap(),
        3
    );
    let flow = trip::Flow::new(&Ctx::new(()), "ab".to_owned())
        .r#match()
        .await
        .unwrap();
    assert_eq!(flow.r#type().await.unwrap(), 2);
}
