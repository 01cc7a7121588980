//! Joins the typestate and the runner must both get right whatever the branches' types and
//! whatever the join does next. Kept apart from `fan_out.rs` because each case here was found
//! not to compile: one broken expansion would otherwise hide every fan-out test.

use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("join test failed")]
pub struct Never;

/// Branches declared `count`, `name`, joined as `[name, count]`: the join's parameters follow
/// its `after` list, so `name: String` comes first.
#[workflow]
pub mod reordered {
    use super::*;

    #[step(entry)]
    pub async fn fork(n: u32) -> Result<u32, Never> {
        Ok(n)
    }

    #[step(after = fork)]
    pub async fn count(n: u32) -> Result<u32, Never> {
        Ok(n * 2)
    }

    #[step(after = fork)]
    pub async fn name(n: u32) -> Result<String, Never> {
        Ok(format!("n{n}"))
    }

    #[step(after = [name, count], exit)]
    pub async fn join(name: String, count: u32) -> Result<String, Never> {
        Ok(format!("{name}:{count}"))
    }
}

/// A join that routes back before the fan-out with a bounded back-edge.
#[workflow]
pub mod retry_join {
    use super::*;

    pub enum Again {
        #[to(fork, max = 2, exhausted = give_up)]
        Retry(u32),
        Done(u32),
    }

    #[step(entry)]
    pub async fn fork(n: u32) -> Result<u32, Never> {
        Ok(n)
    }

    #[step(after = fork)]
    pub async fn a(n: u32) -> Result<u32, Never> {
        Ok(n + 1)
    }

    #[step(after = fork)]
    pub async fn b(n: u32) -> Result<u32, Never> {
        Ok(n + 2)
    }

    #[step(after = [a, b], routes = Again)]
    pub async fn join(a: u32, b: u32) -> Result<Again, Never> {
        Ok(if a + b > 100 {
            Again::Done(a + b)
        } else {
            Again::Retry(a + b)
        })
    }

    #[step(after = join, exit)]
    pub async fn done(n: u32) -> Result<String, Never> {
        Ok(format!("done {n}"))
    }

    #[step(after = join, exit)]
    pub async fn give_up(e: LoopExhausted<u32>) -> Result<String, Never> {
        Ok(format!("gave up after {}: {}", e.iterations, e.last))
    }
}

#[tokio::test]
async fn a_join_with_reordered_branches_of_different_types_runs() {
    let ctx = Ctx::new(());
    assert_eq!(reordered::Workflow::run(&ctx, 3).await.unwrap(), "n3:6");
    // Another run, so another context, which `resume` below continues.
    let ctx = Ctx::new(());
    let flow = reordered::Flow::new(&ctx, 4)
        .fork()
        .await
        .unwrap()
        .count()
        .await
        .unwrap();
    let state = flow.into_state();
    let reordered::FlowState::Join { count, name, .. } = &state else {
        panic!("{state:?}")
    };
    assert_eq!((*count, name.as_deref()), (Some(8), None));
    assert_eq!(
        reordered::Workflow::resume(&ctx, state).await.unwrap(),
        "n4:8"
    );
}

#[tokio::test]
async fn a_join_can_route_back_with_a_bounded_loop() {
    // 1 → 2 + 3 = 5 → Retry → 6 + 7 = 13 → Retry → 14 + 15 = 29 → Retry: exhausted after 2.
    assert_eq!(
        retry_join::Workflow::run(&Ctx::new(()), 1).await.unwrap(),
        "gave up after 2: 29"
    );
    // 30 → 31 + 32 = 63 → Retry → 64 + 65 = 129 → Done.
    assert_eq!(
        retry_join::Workflow::run(&Ctx::new(()), 30).await.unwrap(),
        "done 129"
    );
}
