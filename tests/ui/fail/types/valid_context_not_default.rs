use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

/// What the rules need to know: not `Default`, so `Valid::new`, which validates with a default
/// context, cannot make one: rustc asks for `Default` (and offers the derive).
pub struct Limits {
    pub max: usize,
}

fn short_enough(from: &str, limits: &Limits) -> garde::Result {
    if from.len() > limits.max {
        return Err(garde::Error::new("too long"));
    }
    Ok(())
}

#[derive(Clone, serde::Serialize, serde::Deserialize, garde::Validate)]
#[garde(context(Limits))]
pub struct Trip {
    #[garde(length(min = 3), custom(short_enough))]
    pub from: String,
}

#[workflow]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn receive(req: Trip) -> Result<Valid<Trip>, Failed> {
        Valid::new(req).map_err(|_| Failed)
    }

    #[step(after = receive, exit)]
    pub async fn search(trip: Valid<Trip>) -> Result<usize, Failed> {
        Ok(trip.from.len())
    }
}

fn main() {}
