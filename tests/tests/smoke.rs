use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("boom")]
pub struct Boom;

#[workflow]
pub mod all {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    pub enum Kind {
        Fan(u32),
        Work(Vec<u32>),
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub enum Verdict {
        #[to(draft, max = 2, exhausted = give_up)]
        Again(u32),
        Publish(u32),
    }

    #[step(entry, routes = Kind)]
    pub async fn start(x: u32) -> Result<Kind, Boom> {
        Ok(if x % 2 == 0 { Kind::Fan(x) } else { Kind::Work(vec![x, x + 1, x + 2]) })
    }

    #[step(after = start)]
    pub async fn fan(x: u32) -> Result<u32, Boom> {
        Ok(x)
    }

    #[step(after = fan)]
    pub async fn left(x: u32) -> Result<u32, Boom> {
        Ok(x * 10)
    }

    #[step(after = fan)]
    pub async fn right(x: u32) -> Result<String, Boom> {
        Ok(x.to_string())
    }

    #[step(after = [left, right])]
    pub async fn join(l: u32, r: String) -> Result<u32, Boom> {
        Ok(l + r.len() as u32)
    }

    #[step(after = join)]
    pub async fn draft(x: u32) -> Result<u32, Boom> {
        Ok(x + 1)
    }

    #[step(after = draft, routes = Verdict)]
    pub async fn review(x: u32) -> Result<Verdict, Boom> {
        Ok(if x > 1000 { Verdict::Publish(x) } else { Verdict::Again(x) })
    }

    #[step(after = review, exit)]
    pub async fn publish(x: u32) -> Result<u32, Boom> {
        Ok(x)
    }

    #[step(after = review, exit)]
    pub async fn give_up(e: LoopExhausted<u32>) -> Result<u32, Boom> {
        Ok(e.last + 1_000_000)
    }

    #[step(after = start, workers = 2)]
    pub async fn work(ctx: &Ctx, x: u32) -> Result<u32, Boom> {
        let _ = ctx;
        Ok(x * 2)
    }

    #[step(after = work, exit)]
    pub async fn sum(xs: Vec<u32>) -> Result<u32, Boom> {
        Ok(xs.iter().sum())
    }
}

#[tokio::test]
async fn smoke() {
    let ctx = Ctx::new(());
    assert_eq!(all::Workflow::run(&ctx, 1).await.unwrap(), 12);
    let out = all::Workflow::run(&ctx, 2).await.unwrap();
    assert_eq!(out, 1_000_024);
    let f = all::Flow::new(&ctx, 2);
    let all::KindFlow::Fan(f) = f.start().await.unwrap() else { panic!() };
    let f = f.fan().await.unwrap();
    let f = f.right().await.unwrap();
    let f = f.left().await.unwrap();
    let f = f.join().await.unwrap();
    let f = f.draft().await.unwrap();
    match f.review().await.unwrap() {
        all::VerdictFlow::Again(f) => println!("{f:?}"),
        all::VerdictFlow::AgainExhausted(f) => println!("{f:?}"),
        all::VerdictFlow::Publish(f) => println!("{f:?}"),
    }
    println!("{}", all::MERMAID);
}
