use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Reminder(pub String);

#[workflow]
pub mod trial {
    use super::*;

    #[step(entry)]
    pub async fn signup(email: String) -> Result<Sleep<Reminder>, Failed> {
        Ok(Sleep::new(std::time::Duration::from_secs(60), Reminder(email)))
    }

    #[step(after = signup, exit)]
    pub async fn remind(reminder: Sleep<Reminder>) -> Result<String, Failed> {
        let _ = reminder;
        Ok(String::new())
    }
}

fn main() {}
