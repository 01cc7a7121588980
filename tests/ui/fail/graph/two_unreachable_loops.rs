use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

// Two loops that nothing reaches: two mistakes, two errors.
#[workflow]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn validate(req: String) -> Result<String, Failed> {
        Ok(req)
    }

    #[step(after = validate, exit)]
    pub async fn book(trip: String) -> Result<String, Failed> {
        Ok(trip)
    }

    #[step(after = retry)]
    pub async fn search(trip: String) -> Result<String, Failed> {
        Ok(trip)
    }

    #[step(after = search)]
    pub async fn retry(trip: String) -> Result<String, Failed> {
        Ok(trip)
    }

    #[step(after = undo)]
    pub async fn redo(trip: String) -> Result<String, Failed> {
        Ok(trip)
    }

    #[step(after = redo)]
    pub async fn undo(trip: String) -> Result<String, Failed> {
        Ok(trip)
    }
}

fn main() {}
