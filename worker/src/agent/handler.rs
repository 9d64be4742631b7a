//! Answers each master → worker op, like buildbot-worker's `BuildbotWebSocketClientProtocol`:
//! `print`, `keepalive`, `get_worker_info`, `set_worker_settings`, `start_command`,
//! `interrupt_command`, `shutdown`; anything else gets `"Command <op> does not exist."`.

use std::path::Path;
use std::sync::Arc;

use taskotron_common::protocol::{CommandArgs, Op, Request, Response, Value};

use super::config::WorkerConfig;
use super::info;
use super::lines::OutputSettings;
use super::peer::Peer;
use super::state::AgentState;
use crate::commands::{self, output::Output, Ctx};

pub enum Verdict {
    Continue,
    Shutdown,
    /// Stopping with nothing left to run: end the session (see [`Handler::handle`]).
    Stopped,
}

pub struct Handler<'a> {
    pub cfg: &'a WorkerConfig,
    pub basedir: &'a Path,
    pub state: &'a Arc<AgentState>,
    pub peer: Peer,
    /// Distinguishes this connection's command ids from an earlier connection's (a restarted
    /// Buildbot master counts command ids from 0 again).
    pub session: u64,
    /// From `set_worker_settings`; Buildbot 4.3's values until the master sends its own.
    pub settings: OutputSettings,
}

impl Handler<'_> {
    pub fn handle(&mut self, req: Request) -> Verdict {
        let seq = req.seq_number;
        let ok = |peer: &Peer| peer.reply(Response::ok(seq, Value::Nil));
        match req.op {
            Op::Print { message } => {
                tracing::info!(message = %message, "message from master");
                ok(&self.peer);
            }
            Op::Keepalive => ok(&self.peer),
            Op::GetWorkerInfo => {
                let info = info::collect(self.basedir, self.cfg);
                self.peer.reply(Response::ok(seq, info.to_value()));
            }
            Op::SetWorkerSettings(s) => {
                self.settings = OutputSettings::new(&s);
                ok(&self.peer);
            }
            Op::StartCommand { .. } if self.state.stopping() && self.state.running_count() == 0 => {
                // Stopping (SIGTERM fallback) and idle: leave instead of refusing. A refused
                // `start_command` fails the build for good (EXCEPTION); a worker that is gone
                // makes the master retry the build elsewhere (RETRY), on Buildbot and ours.
                tracing::info!("stopping: a new command arrived; disconnecting so the master retries the build elsewhere");
                return Verdict::Stopped;
            }
            Op::StartCommand {
                command_id,
                command_name,
                args,
                builder_name,
            } => {
                let reply = self.start(&command_id, &command_name, &args, builder_name);
                self.peer.reply(match reply {
                    Ok(()) => Response::ok(seq, Value::Nil),
                    Err(e) => Response::exception(seq, e),
                });
            }
            Op::InterruptCommand {
                command_id, why, ..
            } => {
                if !self.state.interrupt(&self.key(&command_id), &why) {
                    tracing::info!(command_id = %command_id, "interrupt for a command that is not running");
                }
                ok(&self.peer);
            }
            Op::Shutdown => {
                tracing::info!("master asked us to shut down");
                ok(&self.peer);
                return Verdict::Shutdown;
            }
            other => {
                tracing::warn!(op = other.name(), "unknown op from the master");
                self.peer.reply(Response::unknown_op(seq, other.name()));
            }
        }
        Verdict::Continue
    }

    fn key(&self, command_id: &str) -> String {
        format!("{}/{command_id}", self.session)
    }

    fn start(
        &self,
        command_id: &str,
        command_name: &str,
        args: &Value,
        builder_name: Option<String>,
    ) -> Result<(), String> {
        if self.state.stopping() {
            return Err("worker is shutting down; no new commands".into());
        }
        let parsed = CommandArgs::parse(command_name, args).map_err(|e| e.to_string())?;
        let interrupt = self
            .state
            .register(&self.key(command_id))
            .ok_or_else(|| format!("command {command_id} is already running"))?;
        tracing::info!(
            command_id,
            command = command_name,
            builder = builder_name.as_deref().unwrap_or(""),
            "starting command"
        );
        let ctx = Ctx {
            out: Output::new(
                self.peer.clone(),
                command_id.to_string(),
                self.settings.clone(),
            ),
            basedir: self.basedir.to_path_buf(),
            interrupt,
        };
        let state = Arc::clone(self.state);
        let id = self.key(command_id);
        tokio::spawn(async move {
            commands::run(parsed, ctx).await;
            state.finished(&id);
        });
        Ok(())
    }
}
