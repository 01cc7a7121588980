use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

pub struct Offers(pub u32);

#[workflow]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn validate(req: String) -> Result<Offers, Failed> {
        Ok(Offers(req.len() as u32))
    }

    #[step(after = validate, exit)]
    pub async fn search(offers: Offers) -> Result<u32, Failed> {
        Ok(offers.0)
    }
}

fn main() {}
