// Orchestrator-workers: `split` returns a Vec, `research` runs once per item, `merge` gets the Vec.
use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod fan {
    use super::*;

    #[step(entry)]
    pub async fn split(text: String) -> Result<Vec<String>, Failed> {
        Ok(text.split(' ').map(str::to_owned).collect())
    }

    #[step(after = split, workers = 2)]
    pub async fn research(ctx: &Ctx, word: String) -> Result<usize, Failed> {
        let _ = ctx.run_id();
        Ok(word.len())
    }

    #[step(after = research, exit)]
    pub async fn merge(lengths: Vec<usize>) -> Result<Vec<usize>, Failed> {
        Ok(lengths)
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    let ctx = Ctx::new(());
    assert_eq!(
        fan::Workflow::run(&ctx, "a bb ccc".to_owned())
            .await
            .unwrap(),
        [1, 2, 3]
    );

    let flow = fan::Flow::new(&Ctx::new(()), "dd e".to_owned())
        .split()
        .await
        .unwrap();
    let flow = flow.research().await.unwrap();
    assert_eq!(flow.input(), &[2, 1]);
    assert_eq!(flow.merge().await.unwrap(), [2, 1]);
}
