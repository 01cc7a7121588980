use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn validate(req: String) -> Result<String, Failed> {
        Ok(req)
    }

    // `Display` but not `Debug`: reported once, at the step's error type.
    pub struct NoFlights;

    impl std::fmt::Display for NoFlights {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("no flights")
        }
    }

    #[step(after = validate, exit)]
    pub async fn search(trip: String) -> Result<u32, NoFlights> {
        Ok(trip.len() as u32)
    }
}

fn main() {}
