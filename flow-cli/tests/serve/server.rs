//! `flow serve` started as a child process on a fixture's store.

use crate::fixture::Fixture;
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

impl Fixture {
    /// Starts `flow serve` on a free port with `args`; stopped when dropped.
    pub async fn serve(&self, args: &[&str]) -> Server {
        Server::start(&self.path, args).await
    }
}

/// `flow serve` running as a child process.
pub struct Server {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub url: String,
    /// What it printed on start.
    pub banner: String,
    _child: Child,
}

impl Server {
    async fn start(db: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flow"))
            .arg("--db")
            .arg(db)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .env_remove("FLOW_SERVE_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut banner = String::new();
        BufReader::new(stdout).read_line(&mut banner).await.unwrap();
        let url = banner
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in `{banner}`"))
            .trim_end_matches('/')
            .to_owned();
        Self {
            url,
            banner,
            _child: child,
        }
    }
}
