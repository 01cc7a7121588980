// A routed workflow without the typestate API, with one mistake: one error, and no other about
// the routing handles (which only the typestate API has).
use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow(typestate = false)]
pub mod order {
    use super::*;

    pub enum Size {
        Small(u8),
        Large(u8),
    }

    #[step(entry, routes = Size)]
    pub async fn triage(seats: u8) -> Result<Size, Failed> {
        Ok(if seats > 4 { Size::Large(seats) } else { Size::Small(seats) })
    }

    #[step(after = triage)]
    pub async fn small(seats: u8) -> Result<String, Failed> {
        Ok(format!("small x{seats}"))
    }

    #[step(after = triage)]
    pub async fn large(seats: u8) -> Result<String, Failed> {
        Ok(format!("large x{seats}"))
    }

    #[step(after = small | large | nowhere, exit)]
    pub async fn confirm(text: String) -> Result<String, Failed> {
        Ok(text)
    }
}

fn main() {}
