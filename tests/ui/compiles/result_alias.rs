// Steps that return an alias of `Result` with a parameter: flow reads the output and error
// through the alias (`Fallible<T>`, `std::io::Result<T>`).
use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct MyErr;

pub type Fallible<T> = Result<T, MyErr>;

#[workflow]
pub mod search {
    use super::*;

    #[step(entry)]
    pub async fn validate(query: String) -> Fallible<String> {
        Ok(query)
    }

    #[step(after = validate)]
    pub async fn count(query: String) -> std::io::Result<usize> {
        Ok(query.len())
    }

    #[step(after = count, exit)]
    pub async fn report(hits: usize) -> Fallible<String> {
        Ok(format!("{hits} hits"))
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    let out = search::Workflow::run(&Ctx::new(()), "abc".to_owned()).await;
    assert_eq!(out.unwrap(), "3 hits");
}
