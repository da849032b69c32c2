//! Child processes of the campaign: output appended to a log file, signalled by pid, and killed
//! when dropped, so a panic or an early return never leaves one running (docs/chaos.md,
//! "Clean-up").

use std::{
    fs::OpenOptions,
    io::Write as _,
    path::PathBuf,
    process::{ExitStatus, Stdio},
    time::Duration,
};

use nix::{sys::signal::Signal, unistd::Pid};

use crate::error::{Context as _, Result, fail};

/// How to start a program.
#[derive(Debug, Clone)]
pub struct Spec {
    /// What `ps` and the report call it, e.g. `students-1` or `nats`.
    pub name: String,
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its whole environment besides `PATH` (nothing else is inherited, so the caller's
    /// `DATABASE_URL` or `RUST_LOG` can't leak into a replica).
    pub env: Vec<(String, String)>,
    /// Where stdout and stderr are appended (kept across restarts).
    pub log: PathBuf,
}

/// A running child process.
#[derive(Debug)]
pub struct Proc {
    child: tokio::process::Child,
    pid: u32,
}

impl Spec {
    /// Starts the program; `banner` is written to the log first, so each incarnation can be
    /// told apart in it.
    pub fn spawn(&self, banner: &str) -> Result<Proc> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .context(format!("open {}", self.log.display()))?;
        writeln!(log, "==== chaos: {banner}").context("write a log banner")?;
        let stderr = log.try_clone().context("clone the log file")?;
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.args)
            .env_clear()
            .envs(std::env::var_os("PATH").map(|path| (std::ffi::OsString::from("PATH"), path)))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .kill_on_drop(true);
        let child =
            command
                .spawn()
                .context(format!("start {} ({})", self.name, self.program.display()))?;
        let Some(pid) = child.id() else {
            return fail(format!("{} exited at once", self.name));
        };
        Ok(Proc { child, pid })
    }
}

impl Proc {
    /// Sends `signal`.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let pid = i32::try_from(self.pid).context("pid")?;
        nix::sys::signal::kill(Pid::from_raw(pid), signal).context(format!("{signal} {pid}"))
    }

    /// The exit status if the process has ended (reaping it), else `None`.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `deadline` for the process to end.
    pub async fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(deadline, self.child.wait())
            .await
            .ok()
            .and_then(std::result::Result::ok)
    }

    /// Sends `signal` and waits up to `deadline` for the end, then SIGKILLs. Returns the exit
    /// status after `signal`, or `None` if it had to be killed.
    pub async fn stop(&mut self, signal: Signal, deadline: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.exited() {
            return Some(status);
        }
        // A stopped process handles SIGTERM only once it runs again.
        let _ = self.signal(Signal::SIGCONT);
        if self.signal(signal).is_ok()
            && let Some(status) = self.wait_exit(deadline).await
        {
            return Some(status);
        }
        self.kill().await;
        None
    }

    /// SIGKILL, then reap.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
