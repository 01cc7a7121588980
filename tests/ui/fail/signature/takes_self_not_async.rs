use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod trip {
    use super::*;

    fn helper(s: &str) -> u32 { s.len() as u32 }

    #[step(entry)]
    pub async fn validate(req: String) -> Result<String, Failed> {
        Ok(req)
    }

    #[step(after = validate, exit)]
    pub fn search(&self, trip: String) -> impl std::future::Future<Output = Result<u32, Failed>> {
        async move { Ok(self::helper(&trip)) }
    }
}

fn main() {}
