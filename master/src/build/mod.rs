//! The step sequence of one Taskotron job, driven only with standard remote commands so a stock
//! buildbot-worker can run it:
//!
//! 0. `worker_preparation` (print "ping", like Buildbot)
//! 1. `clean`: `rmdir` + `mkdir` of `<builddir>/build` and `<builddir>/artifacts`
//! 2. `download task`: `download_file` of the pinned task snapshot (tar.gz made by the mirror)
//! 3. `unpack`: shell `tar xzf task.tar.gz`
//! 4. `runtask`: shell `runtask -i ITEM -t TYPE -a ARCH -j BUILDER/NUMBER --uuid UUID
//!    --artifactsdir <builddir>/artifacts runtask.yml`, following `taskotron.log`
//! 5. `upload artifacts`: `upload_directory` of `<artifactsdir>/<uuid>` into
//!    `<data_dir>/artifacts/<uuid>/` (runs even when runtask failed)
//!
//! A lost worker ends the build as RETRY and re-queues its request; `stop` ends it CANCELLED.

mod command;
pub mod transfer;

use std::collections::BTreeMap;
use std::sync::Arc;

use taskotron_common::protocol::{
    CommandArgs, CommandLine, DownloadFileArgs, EnvValue, LogfileSpec, MkdirArgs, Paths, RmdirArgs,
    ShellArgs, UploadDirectoryArgs,
};
use tokio::sync::watch;

use crate::db::{results, BuildRef, Interrupted, PendingRequest};
use crate::state::{Master, RunningBuild};
use crate::workers::Conn;
use command::{Outcome, StepLogs};
use transfer::Transfer;

/// What a finished step means for the rest of the build.
enum Flow {
    Continue(i64),
    Lost,
    Cancelled,
}

struct Ctx<'a> {
    master: &'a Master,
    conn: &'a Arc<Conn>,
    build: BuildRef,
    req: &'a PendingRequest,
    stop: watch::Receiver<Option<String>>,
    step_no: i64,
    /// Build slot on the worker: slot 0 uses `build`/`artifacts`, slot n `build.n`/`artifacts.n`.
    slot: usize,
}

impl Ctx<'_> {
    /// Runs one step made of one or more commands; stops at the first that fails.
    async fn step(
        &mut self,
        name: &str,
        done: &str,
        commands: Vec<(CommandArgs, Option<Transfer>)>,
    ) -> Flow {
        let stepid = match self
            .master
            .db
            .add_step(self.build.buildid, self.step_no, name)
        {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(uuid = %self.req.uuid, "cannot record step: {e}");
                return Flow::Continue(results::EXCEPTION);
            }
        };
        self.step_no += 1;
        let _ = self.master.db.set_build_state(self.build.buildid, name);
        let mut logs = StepLogs::new(&self.master.db, stepid);
        let mut result = results::SUCCESS;
        let mut flow = None;
        let mut state = done.to_string();
        for (args, mut transfer) in commands {
            let outcome = command::run(
                self.conn,
                &self.req.buildername,
                args,
                &mut logs,
                transfer.as_mut(),
                &mut self.stop,
            )
            .await;
            result = outcome.result();
            match outcome {
                Outcome::Rc(0) => continue,
                Outcome::Rc(rc) => state = format!("{done} (failure: exit code {rc})"),
                Outcome::Failed(e) => {
                    state = format!("{done} (exception)");
                    tracing::warn!(uuid = %self.req.uuid, step = name, "step failed: {e}");
                }
                Outcome::Cancelled(why) => {
                    state = format!("cancelled ({why})");
                    flow = Some(Flow::Cancelled);
                }
                Outcome::Lost => {
                    state = "worker lost".into();
                    flow = Some(Flow::Lost);
                }
            }
            break;
        }
        logs.finish();
        let _ = self.master.db.finish_step(stepid, result, &state);
        flow.unwrap_or(Flow::Continue(result))
    }

    /// A step that failed on the master side before any command ran.
    fn failed_step(&mut self, name: &str, msg: &str) -> i64 {
        if let Ok(stepid) = self
            .master
            .db
            .add_step(self.build.buildid, self.step_no, name)
        {
            let mut logs = StepLogs::new(&self.master.db, stepid);
            logs.stdio('h', &format!("{msg}\n"));
            logs.finish();
            let _ = self.master.db.finish_step(
                stepid,
                results::EXCEPTION,
                &format!("{name} (exception)"),
            );
        }
        self.step_no += 1;
        results::EXCEPTION
    }
}

/// Runs the build on `conn`; always releases the worker slot and wakes the scheduler.
pub async fn run(
    master: Arc<Master>,
    conn: Arc<Conn>,
    slot: usize,
    build: BuildRef,
    req: PendingRequest,
) {
    let (stop_tx, stop_rx) = watch::channel(None);
    let running = Arc::new(RunningBuild {
        buildid: build.buildid,
        brid: build.brid,
        worker: conn.name.clone(),
        stop: stop_tx,
    });
    master.running_builds().insert(build.buildid, running);
    tracing::info!(uuid = %req.uuid, worker = %conn.name, buildid = build.buildid, priority = req.priority,
        attempt = req.attempts + 1, "build started");

    let mut ctx = Ctx {
        master: &master,
        conn: &conn,
        build,
        req: &req,
        stop: stop_rx,
        step_no: 0,
        slot,
    };
    let (result, state) = match steps(&mut ctx).await {
        Flow::Continue(r) => {
            let state = if r == results::SUCCESS {
                "build successful".to_string()
            } else {
                format!("failed ({})", results::name(r))
            };
            (Some(r), state)
        }
        Flow::Cancelled => (Some(results::CANCELLED), "cancelled".to_string()),
        Flow::Lost => (None, String::new()),
    };
    master
        .metrics
        .build_finished(result.unwrap_or(results::RETRY));
    match result {
        Some(r) => {
            if let Err(e) = master.db.finish_build(build, r, &state) {
                tracing::error!(uuid = %req.uuid, "cannot record build end: {e}");
            }
            tracing::info!(uuid = %req.uuid, worker = %conn.name, result = results::name(r), "build finished");
        }
        None => match master
            .db
            .interrupt_build(build, "worker lost", master.cfg.retry.max_attempts)
        {
            Ok(Interrupted::Requeued) => {
                tracing::warn!(uuid = %req.uuid, worker = %conn.name, "worker lost: build RETRY, request re-queued")
            }
            Ok(Interrupted::GaveUp) => {
                tracing::warn!(uuid = %req.uuid, worker = %conn.name, "worker lost: attempts used up, EXCEPTION")
            }
            Err(e) => tracing::error!(uuid = %req.uuid, "cannot record interrupted build: {e}"),
        },
    }
    master.running_builds().remove(&build.buildid);
    master.workers.release(&conn, slot);
    if master.workers.is_idle_stopping(&conn.name) {
        let c = conn.clone();
        tokio::spawn(async move {
            let _ = c
                .request(
                    taskotron_common::protocol::Op::Shutdown,
                    std::time::Duration::from_secs(10),
                )
                .await;
        });
    }
    master.build_ended.notify_waiters();
    master.wake.notify_one();
}

async fn steps(ctx: &mut Ctx<'_>) -> Flow {
    let req = ctx.req;
    let basedir = ctx.conn.basedir();
    let builddir = format!("{}/{}", basedir.trim_end_matches('/'), req.buildername);
    let suffix = if ctx.slot == 0 {
        String::new()
    } else {
        format!(".{}", ctx.slot)
    };
    let workdir = format!("{builddir}/build{suffix}");
    let artdir = format!("{builddir}/artifacts{suffix}");

    // 0. worker_preparation
    let prep = ctx
        .conn
        .request(
            taskotron_common::protocol::Op::Print {
                message: "ping".into(),
            },
            std::time::Duration::from_secs_f64(ctx.master.cfg.heartbeat.timeout),
        )
        .await;
    let stepid = ctx
        .master
        .db
        .add_step(ctx.build.buildid, 0, "worker_preparation")
        .ok();
    ctx.step_no = 1;
    if let Some(id) = stepid {
        let (r, s) = if prep.is_ok() {
            (results::SUCCESS, format!("worker {} ready", ctx.conn.name))
        } else {
            (results::RETRY, "worker lost".to_string())
        };
        let _ = ctx.master.db.finish_step(id, r, &s);
    }
    if prep.is_err() {
        return Flow::Lost;
    }

    // 1. clean
    let clean = vec![
        (
            CommandArgs::Rmdir(RmdirArgs {
                paths: Paths::List(vec![workdir.clone(), artdir.clone()]),
                log_environ: None,
                timeout: Some(120.0),
                max_time: None,
            }),
            None,
        ),
        (
            CommandArgs::Mkdir(MkdirArgs {
                paths: Paths::List(vec![workdir.clone(), artdir.clone()]),
            }),
            None,
        ),
    ];
    match ctx.step("clean", "clean build directory", clean).await {
        Flow::Continue(results::SUCCESS) => {}
        Flow::Continue(r) => return Flow::Continue(r),
        other => return other,
    }

    // 2. download the pinned snapshot
    let mirrors = ctx.master.mirrors.clone();
    let (key, sha) = (req.task_key.clone(), req.sha.clone());
    let snapshot = tokio::task::spawn_blocking(move || mirrors.snapshot(&key, &sha)).await;
    let snapshot = match snapshot {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            return Flow::Continue(ctx.failed_step(
                "download task",
                &format!("snapshot of {}@{}: {e}", req.task_key, req.sha),
            ))
        }
        Err(e) => {
            return Flow::Continue(
                ctx.failed_step("download task", &format!("snapshot task failed: {e}")),
            )
        }
    };
    let transfer = match Transfer::download(&snapshot) {
        Ok(t) => t,
        Err(e) => return Flow::Continue(ctx.failed_step("download task", &e)),
    };
    let dl = CommandArgs::DownloadFile(DownloadFileArgs {
        path: format!("{workdir}/task.tar.gz"),
        workdir: Some(format!("build{suffix}")),
        workerdest: Some("task.tar.gz".into()),
        maxsize: None,
        blocksize: 65536,
        mode: None,
    });
    match ctx
        .step(
            "download task",
            &format!("downloading {}@{}", req.taskname, short(&req.sha)),
            vec![(dl, Some(transfer))],
        )
        .await
    {
        Flow::Continue(results::SUCCESS) => {}
        Flow::Continue(r) => return Flow::Continue(r),
        other => return other,
    }

    // 3. unpack
    let mut tar = ShellArgs::new(
        workdir.clone(),
        CommandLine::Argv(vec!["tar".into(), "xzf".into(), "task.tar.gz".into()]),
    );
    tar.log_environ = false;
    tar.timeout = Some(300.0);
    match ctx
        .step(
            "unpack",
            "unpack task",
            vec![(CommandArgs::Shell(tar), None)],
        )
        .await
    {
        Flow::Continue(results::SUCCESS) => {}
        Flow::Continue(r) => return Flow::Continue(r),
        other => return other,
    }

    // 4. runtask
    let cfg = &ctx.master.cfg;
    let timeout = cfg
        .task(&req.taskname)
        .and_then(|t| t.timeout)
        .unwrap_or(cfg.build.timeout);
    let mut argv = cfg.runtask.command.argv();
    let jobid = format!("{}/{}", req.buildername, ctx.build.number);
    for (flag, v) in [
        ("-i", &req.item),
        ("-t", &req.item_type),
        ("-a", &req.arch),
        ("-j", &jobid),
        ("--uuid", &req.uuid),
        ("--artifactsdir", &artdir),
    ] {
        argv.push(flag.to_string());
        argv.push(v.to_string());
    }
    argv.push("runtask.yml".into());
    let mut shell = ShellArgs::new(workdir.clone(), CommandLine::Argv(argv));
    shell.timeout = Some(timeout as f64);
    shell.sigterm_time = Some(300.0_f64.min(timeout as f64 / 4.0));
    shell.env = Some(
        cfg.runtask
            .env
            .iter()
            .map(|(k, v)| (k.clone(), Some(EnvValue::Text(v.clone()))))
            .collect(),
    );
    let mut logfiles = BTreeMap::new();
    logfiles.insert(
        "taskotron.log".to_string(),
        LogfileSpec::Name(format!("{artdir}/{}/taskotron/taskotron.log", req.uuid)),
    );
    shell.logfiles = Some(logfiles);
    let done = format!("{} on {} ({})", req.taskname, req.item, req.arch);
    let runtask = match ctx
        .step("runtask", &done, vec![(CommandArgs::Shell(shell), None)])
        .await
    {
        Flow::Continue(r) => r,
        other => return other,
    };

    // 5. upload artifacts (always)
    let dest = cfg.artifacts_dir().join(&req.uuid);
    let up = match Transfer::upload(dest, cfg.build.max_artifacts_bytes, true) {
        Ok(t) => t,
        Err(e) => {
            return Flow::Continue(results::worst(
                runtask,
                ctx.failed_step("upload artifacts", &e),
            ))
        }
    };
    let ul = CommandArgs::UploadDirectory(UploadDirectoryArgs {
        path: format!("{artdir}/{}", req.uuid),
        workdir: Some(builddir.clone()),
        workersrc: Some(format!("artifacts{suffix}/{}", req.uuid)),
        maxsize: Some(cfg.build.max_artifacts_bytes),
        blocksize: 65536,
        compress: Some("gz".into()),
    });
    match ctx
        .step(
            "upload artifacts",
            "uploading artifacts",
            vec![(ul, Some(up))],
        )
        .await
    {
        Flow::Continue(r) => Flow::Continue(results::worst(runtask, r)),
        other => other,
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
