//! Protocol-level tests of taskotron-worker against a scripted master (worker_support::
//! fake_master): Buildbot's setup sequence, answers to bad input, transfers with a master that
//! follows the spec (non-empty downloads, keepstamp), shell limits and interrupts, and the
//! process lifecycle (SIGTERM with a master that cannot drain finishes the running command,
//! SIGINT twice aborts, `shutdown`).

mod util;
mod worker_support;

use std::time::Duration;

use taskotron_common::protocol::{
    CommandArgs, CommandLine, DownloadFileArgs, Message, Op, Paths, Response, ShellArgs,
    UpdateItem, UploadDirectoryArgs, UploadFileArgs, Value, WorkerInfo, WorkerSettings,
};
use tokio_tungstenite::tungstenite::Message as Ws;
use worker_support::fake_master::{map, Conn, FakeMaster};
use worker_support::OurWorker;

/// Starts a worker against a fresh fake master and runs Buildbot's setup handshake.
async fn setup(tmp: &std::path::Path) -> (FakeMaster, OurWorker, Conn) {
    let (fm, worker, mut conn) = FakeMaster::with_attached_worker(tmp, "").await;
    let r = conn
        .call(Op::SetWorkerSettings(WorkerSettings::default()))
        .await;
    assert!(!r.is_exception);
    (fm, worker, conn)
}

fn shell(workdir: &str, cmd: CommandLine) -> ShellArgs {
    ShellArgs::new(workdir, cmd)
}

fn sh(script: &str) -> CommandLine {
    CommandLine::Shell(script.into())
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_sequence_answers_like_buildbot_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let (_fm, worker, mut conn) = setup(tmp.path()).await;
    // HTTP Basic auth in the upgrade request: base64("w1:s3cret").
    assert_eq!(conn.auth.as_deref(), Some("Basic dzE6czNjcmV0"));

    let info = conn.call(Op::GetWorkerInfo).await;
    let info = WorkerInfo::from_value(&info.result).unwrap();
    let basedir = worker.basedir.display().to_string();
    assert_eq!(info.basedir, basedir);
    assert_eq!(info.system, "posix");
    assert_eq!(info.text("arch"), Some("x86_64\n"));
    assert!(info.text("host").is_some_and(|h| h.ends_with('\n')));
    assert!(info.text("admin").is_some());
    assert!(info.numcpus >= 1);
    assert_eq!(info.worker_commands.len(), 14);
    assert!(info.worker_commands.values().all(|v| v == "3.3"));
    assert!(info.environ.contains_key("PATH"));
    assert!(info.extra.keys().any(|k| k.starts_with("os_")));

    let t = conn
        .run_command(
            "0",
            "listdir",
            map(&[("path", Value::from(basedir.as_str()))]),
        )
        .await;
    assert_eq!(t.failure, None);
    assert_eq!(t.rc(), Some(0));
    let files = t.updates.iter().find_map(|u| match u {
        UpdateItem::Files(f) => Some(f.clone()),
        _ => None,
    });
    let mut files = files.expect("files update");
    files.sort();
    assert_eq!(files, ["info", "worker.yaml"]);
    assert!(t.has("elapsed"));

    let dirs = vec![format!("{basedir}/b1"), format!("{basedir}/b2/x")];
    let args = CommandArgs::Mkdir(taskotron_common::protocol::MkdirArgs {
        paths: Paths::List(dirs.clone()),
    });
    let t = conn.run_command("1", "mkdir", args.to_value()).await;
    assert_eq!(t.rc(), Some(0));
    assert!(dirs.iter().all(|d| std::path::Path::new(d).is_dir()));
    assert_eq!(conn.call(Op::Keepalive).await.result, Value::Nil);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_buildbot_answers_and_the_connection_survives() {
    let tmp = tempfile::tempdir().unwrap();
    let (_fm, _worker, mut conn) = setup(tmp.path()).await;
    // Garbage, text frames, maps without op/seq_number: dropped silently.
    conn.send_raw(Ws::Binary(vec![0xc1, 0xff, 0x00].into()))
        .await;
    conn.send_raw(Ws::Text("hello".into())).await;
    conn.send_raw(Ws::Binary(vec![0x81, 0xa2, b'o', b'p', 0xa1, b'x'].into()))
        .await;
    // Unknown op: Buildbot's exception text.
    let r = conn
        .call(Op::Unknown {
            op: "frobnicate".into(),
            fields: vec![],
        })
        .await;
    assert!(r.is_exception);
    assert_eq!(
        r.error_text().as_deref(),
        Some("Command frobnicate does not exist.")
    );
    // A known op with a field of the wrong type: an exception reply, not a crash.
    let seq = 1000;
    let bad = map(&[
        ("op", Value::from("set_worker_settings")),
        ("args", Value::from("not a map")),
        ("seq_number", Value::from(seq)),
    ]);
    let mut buf = Vec::new();
    rmpv::encode::write_value(&mut buf, &bad).unwrap();
    conn.send_raw(Ws::Binary(buf.into())).await;
    let reply = loop {
        match conn.recv().await.expect("open") {
            Message::Response(r) if r.seq_number == seq => break r,
            _ => {}
        }
    };
    assert!(reply.is_exception, "{reply:?}");
    // Unknown command and missing required args.
    let t = conn.run_command("9", "frob", map(&[])).await;
    assert!(t.start_reply.as_ref().is_some_and(|r| r.is_exception));
    let t = conn
        .run_command("10", "shell", map(&[("workdir", Value::from("/tmp"))]))
        .await;
    let err = t.start_reply.unwrap().error_text().unwrap();
    assert!(err.contains("command"), "{err}");
    // Interrupting a command that is not running is harmless.
    let r = conn
        .call(Op::InterruptCommand {
            command_id: "404".into(),
            why: "x".into(),
            builder_name: None,
        })
        .await;
    assert!(!r.is_exception);
    assert_eq!(conn.call(Op::Keepalive).await.result, Value::Nil);
}

#[tokio::test(flavor = "multi_thread")]
async fn transfers_follow_the_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let (_fm, worker, mut conn) = setup(tmp.path()).await;
    let base = worker.basedir.display().to_string();

    // download_file: a spec-following master answers with bytes, in blocksize pieces.
    let content: Vec<u8> = (0..100u8).collect();
    conn.download = content.clone();
    let dest = format!("{base}/b/build/sub/dl.bin");
    let args = CommandArgs::DownloadFile(DownloadFileArgs {
        path: dest.clone(),
        workdir: Some("build".into()),
        workerdest: Some("sub/dl.bin".into()),
        maxsize: None,
        blocksize: 16,
        mode: Some(0o640),
    });
    let t = conn
        .run_command("1", "download_file", args.to_value())
        .await;
    assert_eq!(t.failure, None);
    assert_eq!(t.rc(), Some(0));
    assert_eq!(std::fs::read(&dest).unwrap(), content);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let reads = t
        .ops
        .iter()
        .filter(|o| matches!(o, Op::ReadFile { length: 16, .. }))
        .count();
    assert_eq!(
        reads, 8,
        "100 bytes in 16-byte reads (6 full, 1 of 4 bytes), then the empty EOF read"
    );
    assert!(matches!(t.ops.last(), Some(Op::ReadFileClose { .. })));

    // maxsize truncates with rc 1.
    conn.download = content.clone();
    let args = CommandArgs::DownloadFile(DownloadFileArgs {
        path: format!("{base}/b/build/small.bin"),
        workdir: None,
        workerdest: None,
        maxsize: Some(10),
        blocksize: 16,
        mode: None,
    });
    let t = conn
        .run_command("2", "download_file", args.to_value())
        .await;
    assert_eq!(t.rc(), Some(1));
    assert!(t.text("stderr").contains("Maximum filesize reached"));
    assert_eq!(
        std::fs::read(format!("{base}/b/build/small.bin"))
            .unwrap()
            .len(),
        10
    );

    // upload_file with keepstamp: blocks, close, then utime with the file's times.
    let src = format!("{base}/b/build/up.txt");
    std::fs::write(&src, "line1\nline2\n").unwrap();
    let args = CommandArgs::UploadFile(UploadFileArgs {
        path: src.clone(),
        workdir: None,
        workersrc: None,
        maxsize: None,
        blocksize: 5,
        keepstamp: true,
    });
    let t = conn.run_command("3", "upload_file", args.to_value()).await;
    assert_eq!((t.failure.as_deref(), t.rc()), (None, Some(0)));
    let data: Vec<u8> = t
        .ops
        .iter()
        .filter_map(|o| match o {
            Op::UploadFileWrite { data, .. } => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(data, b"line1\nline2\n");
    let mtime = std::fs::metadata(&src).unwrap().modified().unwrap();
    let mtime = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    match t.ops.last() {
        Some(Op::UploadFileUtime { modified_time, .. }) => {
            assert!((modified_time - mtime).abs() < 1e-3)
        }
        other => panic!("expected utime last, got {other:?}"),
    }
    // A missing file: rc 1 and close still sent.
    let args = CommandArgs::UploadFile(UploadFileArgs {
        path: format!("{base}/nope"),
        workdir: None,
        workersrc: None,
        maxsize: None,
        blocksize: 5,
        keepstamp: false,
    });
    let t = conn.run_command("4", "upload_file", args.to_value()).await;
    assert_eq!(t.rc(), Some(1));
    assert!(t.text("stderr").contains("Cannot open file"));
    assert!(matches!(t.ops.last(), Some(Op::UploadFileClose { .. })));

    // upload_directory with bz2: a tar stream the system tar unpacks.
    std::fs::create_dir_all(format!("{base}/b/build/d/e")).unwrap();
    std::fs::write(format!("{base}/b/build/d/e/f"), "deep\n").unwrap();
    let args = CommandArgs::UploadDirectory(UploadDirectoryArgs {
        path: format!("{base}/b/build/d"),
        workdir: None,
        workersrc: None,
        maxsize: None,
        blocksize: 64,
        compress: Some("bz2".into()),
    });
    let t = conn
        .run_command("5", "upload_directory", args.to_value())
        .await;
    assert_eq!((t.failure.as_deref(), t.rc()), (None, Some(0)));
    let tarball: Vec<u8> = t
        .ops
        .iter()
        .filter_map(|o| match o {
            Op::UploadDirectoryWrite { data, .. } => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(matches!(
        t.ops.last(),
        Some(Op::UploadDirectoryUnpack { .. })
    ));
    let out = tmp.path().join("unpacked");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(tmp.path().join("d.tar.bz2"), &tarball).unwrap();
    let st = std::process::Command::new("tar")
        .arg("-xjf")
        .arg(tmp.path().join("d.tar.bz2"))
        .arg("-C")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(std::fs::read_to_string(out.join("e/f")).unwrap(), "deep\n");

    // stat / glob / rmfile / rmdir / cpdir.
    let t = conn
        .run_command("6", "stat", map(&[("path", Value::from(src.as_str()))]))
        .await;
    assert_eq!(t.rc(), Some(0));
    assert!(t
        .updates
        .iter()
        .any(|u| matches!(u, UpdateItem::Stat(s) if s.len() == 10 && s[6] == 12)));
    let t = conn
        .run_command(
            "7",
            "stat",
            map(&[("path", Value::from(format!("{base}/missing")))]),
        )
        .await;
    assert_eq!(t.rc(), Some(2));
    assert!(t
        .text("header")
        .contains("stat: No such file or directory:"));
    let pattern = format!("{base}/b/build/*.txt");
    let t = conn
        .run_command("8", "glob", map(&[("path", Value::from(pattern))]))
        .await;
    assert!(t.updates.contains(&UpdateItem::Files(vec![src.clone()])));
    let t = conn
        .run_command(
            "9",
            "cpdir",
            map(&[
                ("from_path", Value::from(format!("{base}/b/build/d"))),
                ("to_path", Value::from(format!("{base}/b/copy/d2"))),
                ("timeout", Value::from(120)),
            ]),
        )
        .await;
    assert_eq!(t.rc(), Some(0));
    assert!(t.text("header").contains("cp -R -P -p -v"));
    assert_eq!(
        std::fs::read_to_string(format!("{base}/b/copy/d2/e/f")).unwrap(),
        "deep\n"
    );
    let t = conn
        .run_command("10", "rmfile", map(&[("path", Value::from(src.as_str()))]))
        .await;
    assert_eq!(t.rc(), Some(0));
    assert!(!std::path::Path::new(&src).exists());
    let t = conn
        .run_command(
            "11",
            "rmdir",
            map(&[(
                "paths",
                Value::Array(vec![Value::from(format!("{base}/b/copy"))]),
            )]),
        )
        .await;
    assert_eq!(t.rc(), Some(0));
    assert!(!std::path::Path::new(&format!("{base}/b/copy")).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn shell_limits_env_and_interrupts() {
    let tmp = tempfile::tempdir().unwrap();
    let (_fm, worker, mut conn) = setup(tmp.path()).await;
    let wd = format!("{}/b/build", worker.basedir.display());

    // Lines, stderr, initial_stdin, want_stderr, a long line split at max_line_length.
    let mut a = shell(
        &wd,
        sh("printf 'a\\r\\nb'; echo; cat; echo err >&2; head -c 5000 /dev/zero | tr '\\0' x; echo"),
    );
    a.initial_stdin = Some("from-stdin\n".into());
    a.want_stderr = false;
    let t = conn
        .run_command("1", "shell", CommandArgs::Shell(a).to_value())
        .await;
    assert_eq!(t.rc(), Some(0));
    let out = t.text("stdout");
    assert!(out.starts_with("a\nb\nfrom-stdin\n"), "{out}");
    assert!(out.contains(&format!("\n{}\n{}\n", "x".repeat(4096), "x".repeat(904))));
    assert_eq!(t.text("stderr"), "");
    for u in &t.updates {
        if let UpdateItem::Stdout(c) = u {
            assert_eq!(c.newlines.len(), c.timestamps.len());
        }
    }

    // timeout without output.
    let mut a = shell(&wd, CommandLine::Argv(vec!["sleep".into(), "30".into()]));
    a.timeout = Some(1.0);
    let t = conn
        .run_command("2", "shell", CommandArgs::Shell(a).to_value())
        .await;
    assert_eq!(t.rc(), Some(-1));
    assert!(t
        .updates
        .contains(&UpdateItem::FailureReason("timeout_without_output".into())));
    assert!(t.text("header").contains("1 seconds without output"));

    // interrupt with sigtermTime: the process gets SIGTERM first and may clean up.
    let mut a = shell(
        &wd,
        sh("trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done"),
    );
    a.sigterm_time = Some(10.0);
    let seq = conn
        .send(CommandArgs::Shell(a).start_command("3", Some("b".into())))
        .await;
    let _ = seq;
    // Wait for "ready" (buffer_timeout is 5 s, so the first update may take that long).
    let mut early = Vec::new();
    loop {
        match conn.recv().await.expect("open") {
            Message::Request(r) => {
                conn.answer(&r).await;
                let ready = matches!(&r.op, Op::Update { args, .. } if args.iter().any(|u| matches!(u, UpdateItem::Stdout(c) if c.text.contains("ready"))));
                early.push(r);
                if ready {
                    break;
                }
            }
            Message::Response(_) => {}
        }
    }
    conn.send(Op::InterruptCommand {
        command_id: "3".into(),
        why: "test".into(),
        builder_name: None,
    })
    .await;
    let t = conn.collect("3", None, |_| {}).await;
    assert!(t
        .text("header")
        .contains("command interrupted, attempting to kill"));
    assert!(t.text("stdout").contains("got-term"));
    assert_eq!(t.rc(), Some(7));
    assert!(
        !t.has("elapsed"),
        "no elapsed after an interrupt, as buildbot-worker"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_running_command_then_exits() {
    let tmp = tempfile::tempdir().unwrap();
    let (_fm, mut worker, mut conn) = setup(tmp.path()).await;
    let wd = format!("{}/b/build", worker.basedir.display());
    let marker = tmp.path().join("started");
    let script = format!("touch {}; sleep 2; echo finished", marker.display());
    conn.send(CommandArgs::Shell(shell(&wd, sh(&script))).start_command("1", None))
        .await;
    util::wait_for("command to start", Duration::from_secs(30), || {
        marker.exists().then_some(())
    });
    worker.proc.signal(libc::SIGTERM);
    // The worker first asks to be drained (`graceful_shutdown`, our extension); this master
    // answers like a stock Buildbot master, so the worker falls back (tests/worker_graceful.rs
    // covers the other answers).
    let ask = conn.next_request(|op| *op == Op::GracefulShutdown).await;
    conn.reply(Response::unknown_op(ask.seq_number, "graceful_shutdown"))
        .await;
    // Handled asynchronously: wait until the worker says it no longer takes commands.
    util::wait_for("worker to fall back", Duration::from_secs(30), || {
        worker
            .log_text()
            .contains("finishing running commands, then exiting")
            .then_some(())
    });
    // New commands are refused while draining.
    let r = conn
        .call(CommandArgs::Shell(shell(&wd, sh("true"))).start_command("2", None))
        .await;
    assert!(
        r.error_text().is_some_and(|e| e.contains("shutting down")),
        "{r:?}"
    );
    let t = conn.collect("1", None, |_| {}).await;
    assert_eq!(t.rc(), Some(0));
    assert!(t.text("stdout").contains("finished"));
    let status = worker.proc.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    assert!(conn.recv().await.is_none(), "connection closed after exit");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_twice_aborts_running_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let (_fm, mut worker, mut conn) = setup(tmp.path()).await;
    let wd = format!("{}/b/build", worker.basedir.display());
    let pidfile = tmp.path().join("pid");
    let script = format!("echo $$ > {}; exec sleep 120", pidfile.display());
    conn.send(CommandArgs::Shell(shell(&wd, sh(&script))).start_command("1", None))
        .await;
    let pid: i32 = util::wait_for("pid file", Duration::from_secs(30), || {
        std::fs::read_to_string(&pidfile).ok()?.trim().parse().ok()
    });
    worker.proc.signal(libc::SIGINT);
    // Signals sent back to back can coalesce into one; send the second after the first is seen.
    util::wait_for("first SIGINT handled", Duration::from_secs(30), || {
        worker
            .log_text()
            .contains("Ctrl-C again to abort")
            .then_some(())
    });
    worker.proc.signal(libc::SIGINT);
    let status = worker.proc.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1));
    util::wait_for("sleep to be killed", Duration::from_secs(30), || {
        // kill(pid, 0) fails once the process is gone (it is reaped by the worker's exit).
        let alive = unsafe { libc::kill(pid, 0) } == 0
            && std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| !s.contains(") Z "))
                .unwrap_or(false);
        (!alive).then_some(())
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_op_stops_the_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let (_fm, mut worker, mut conn) = setup(tmp.path()).await;
    let r = conn.call(Op::Shutdown).await;
    assert_eq!(r.result, Value::Nil);
    let status = worker.proc.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
}
