//! `loadgen`: a load generator for Buildbot-protocol masters (ours and a stock Buildbot 4.3).
//!
//! It opens N simulated workers speaking `msgpack_experimental_v7` (they answer every command
//! at once with plausible updates and rc 0), submits M jobs through `/change_hook/base` the way
//! Taskotron's trigger does, and reports jobs/s, submit→start latency (start = the job's first
//! `shell` command reaching a worker), master CPU seconds and peak RSS from /proc.
//! Nothing in it is specific to one master, so the same command line measures both.
//! See docs/performance.md for the method and scripts/bench-vs-buildbot for a full run.

mod procstat;
mod shared;
mod worker;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use futures_util::StreamExt;
use shared::{Flood, Shared};

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = "Simulated msgpack_experimental_v7 workers + change-hook submitter; measures a master"
)]
struct Args {
    /// WebSocket URL of the master's worker port, e.g. ws://127.0.0.1:9989/
    #[arg(long)]
    worker_url: String,
    /// Change hook URL, e.g. http://127.0.0.1:8010/change_hook/base
    #[arg(long)]
    hook_url: String,
    /// Value of the Authorization header for the change hook ("Bearer TOKEN" or "Basic ...");
    /// `user:password` is turned into Basic.
    #[arg(long)]
    hook_auth: Option<String>,
    /// Number of simulated workers (named PREFIX0000, PREFIX0001, ...).
    #[arg(long, default_value_t = 50)]
    workers: usize,
    #[arg(long, default_value = "lg")]
    name_prefix: String,
    #[arg(long, default_value = "pw")]
    worker_password: String,
    /// Jobs to submit and wait for.
    #[arg(long, default_value_t = 0)]
    jobs: usize,
    /// Concurrent change-hook POSTs.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Submit one job at a time and wait for it to finish (latency on an idle fleet).
    #[arg(long)]
    sequential: bool,
    /// Log-flood jobs submitted first; each streams --flood-mb MiB of stdout. The measured jobs
    /// run while they stream.
    #[arg(long, default_value_t = 0)]
    flood_jobs: usize,
    #[arg(long, default_value_t = 50)]
    flood_mb: u64,
    /// With --sequential and --flood-jobs: stop submitting once every flood job has finished,
    /// so each measured job is dispatched while the flood runs (--jobs is then the maximum).
    #[arg(long)]
    stop_after_flood: bool,
    /// With --jobs 0: keep the workers connected this many seconds and report idle CPU/RSS.
    #[arg(long, default_value_t = 0.0)]
    hold: f64,
    /// Do not submit: the jobs of --run-id are already queued on the master; just run them.
    #[arg(long)]
    no_submit: bool,
    /// Uuid prefix of this run's jobs (default: random).
    #[arg(long)]
    run_id: Option<String>,
    /// Leave out `revision` (Taskotron's exact form). By default each change carries its uuid as
    /// revision, so Buildbot gives every change its own source stamp.
    #[arg(long)]
    no_revision: bool,
    #[arg(long, default_value = "x86_64")]
    category: String,
    #[arg(long, default_value = "demo")]
    task: String,
    /// Master pid for CPU/RSS; default: the process listening on the hook URL's port.
    #[arg(long)]
    master_pid: Option<u32>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600.0)]
    timeout: f64,
    /// Simultaneous connection attempts while the fleet logs in.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Print one JSON object with the results (for scripts).
    #[arg(long)]
    json: bool,
    #[arg(long, short)]
    verbose: bool,
}

pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn port_of(url: &str) -> Option<u16> {
    let rest = url.split("://").nth(1)?;
    let hostport = rest.split('/').next()?;
    hostport.rsplit(':').next()?.parse().ok()
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn change_body(args: &Args, uuid: &str, n: usize) -> String {
    let item = format!("loadgen-{n}-1.fc40");
    let props = serde_json::json!({
        "taskname": args.task, "item": item, "item_type": "koji_build",
        "arch": args.category, "uuid": uuid,
    });
    let mut fields = vec![
        ("project", "rpmcheck".to_string()),
        ("category", args.category.clone()),
        ("repository", String::new()),
        ("author", "taskotron".to_string()),
        ("comments", format!("loadgen job {uuid}")),
        ("properties", props.to_string()),
    ];
    if !args.no_revision {
        fields.push(("revision", uuid.to_string()));
    }
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// POSTs job `n`; retries a refused connection briefly. Ok(false) if the master said no.
async fn submit(
    client: &reqwest::Client,
    args: &Args,
    auth: Option<&str>,
    shared: &Shared,
    n: usize,
) -> bool {
    let body = change_body(args, &shared.uuid(n), n);
    shared.mark_submit(n);
    let mut req = client
        .post(&args.hook_url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => true,
        Ok(r) => {
            if args.verbose {
                let s = r.status();
                eprintln!("job {n}: HTTP {s}: {}", r.text().await.unwrap_or_default());
            }
            false
        }
        Err(e) => {
            if args.verbose {
                eprintln!("job {n}: {e}");
            }
            false
        }
    }
}

/// Keeps one worker connected; reconnects (with a short jittered pause) until the run ends.
async fn keep_worker(
    shared: Arc<Shared>,
    sem: Arc<tokio::sync::Semaphore>,
    i: usize,
    name: String,
) {
    let mut first = true;
    loop {
        let permit = if first {
            sem.clone().acquire_owned().await.ok()
        } else {
            None
        };
        first = false;
        let res = worker::serve(shared.clone(), i, name.clone());
        let res = {
            // The permit only bounds the connection attempt, not the session.
            let s = shared.clone();
            let fut = tokio::spawn(res);
            drop_after_attach(&s, permit).await;
            fut.await
        };
        if shared.verbose {
            if let Ok(Err(e)) = res {
                eprintln!("worker {name}: {e}");
            }
        }
        let jitter = (i as u64 * 7919) % 400;
        tokio::time::sleep(Duration::from_millis(100 + jitter)).await;
    }
}

async fn drop_after_attach(_s: &Shared, permit: Option<tokio::sync::OwnedSemaphorePermit>) {
    // Hold the permit for a moment so at most `connect_concurrency` handshakes overlap.
    if permit.is_some() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(permit);
}

#[derive(Default)]
struct Sampler {
    peak_rss_kib: std::sync::atomic::AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    procstat::raise_nofile();
    if args.no_submit && args.run_id.is_none() {
        bail!("--no-submit needs --run-id (the uuid prefix of the queued jobs)");
    }
    let run_id = args.run_id.clone().unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("lg{:x}", t & 0xffff_ffff)
    });
    let hook_auth = args.hook_auth.as_ref().map(|a| {
        if a.starts_with("Bearer ") || a.starts_with("Basic ") {
            a.clone()
        } else {
            let (u, p) = a.split_once(':').unwrap_or((a, ""));
            basic_auth(u, p)
        }
    });
    let master_pid = match args.master_pid {
        Some(p) => Some(p),
        None => port_of(&args.hook_url).and_then(procstat::pid_listening_on),
    };
    if master_pid.is_none() {
        eprintln!("loadgen: master pid not found (pass --master-pid); no CPU/RSS figures");
    }
    // The flood streams' own runtime; it lives until the process exits.
    let flood_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("flood")
        .enable_all()
        .build()
        .context("cannot start the flood runtime")?;
    let shared = Arc::new(Shared::new(
        args.worker_url.clone(),
        args.worker_password.clone(),
        run_id.clone(),
        args.jobs,
        Flood {
            jobs: args.flood_jobs,
            bytes_per_job: args.flood_mb << 20,
            runtime: flood_runtime.handle().clone(),
        },
        args.verbose,
    ));
    // Dropping a runtime inside another one panics; this one is dropped nowhere.
    std::mem::forget(flood_runtime);
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout);
    let within = |what: &'static str| async move {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("timed out: {what}")
        }
        Ok::<Duration, anyhow::Error>(left)
    };

    // 1. Log the fleet in.
    let t_connect = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(args.connect_concurrency.max(1)));
    for i in 0..args.workers {
        let name = format!("{}{i:04}", args.name_prefix);
        tokio::spawn(keep_worker(shared.clone(), sem.clone(), i, name));
    }
    let n = args.workers;
    let left = within("fleet login").await?;
    tokio::time::timeout(
        left,
        shared.wait_until(|s| s.attached.load(Ordering::Relaxed) >= n),
    )
    .await
    .with_context(|| {
        format!(
            "only {} of {n} workers attached before the timeout",
            shared.attached.load(Ordering::Relaxed)
        )
    })?;
    let attach_s = t_connect.elapsed().as_secs_f64();
    // Let the setup sequence (listdir, mkdir, per-builder prints) settle: 1 s without requests.
    loop {
        let quiet = shared.now_ns() - shared.last_setup_ns.load(Ordering::Relaxed);
        // With --no-submit the queued jobs start at once, so commands never go quiet.
        if quiet > 1_000_000_000 || n == 0 || args.no_submit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !args.json {
        println!("{n} workers attached in {attach_s:.2} s");
    }

    // 2. Measure from here.
    let sampler = Arc::new(Sampler::default());
    if let Some(pid) = master_pid {
        let s = sampler.clone();
        tokio::spawn(async move {
            loop {
                if let Some((rss, _)) = procstat::rss_kib(pid) {
                    s.peak_rss_kib.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    let cpu0 = master_pid.and_then(procstat::cpu_seconds);
    let t_run = Instant::now();
    let run0_ns = shared.now_ns();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(1))
        .timeout(Duration::from_secs(120))
        .build()?;
    let mut submit_errors = 0usize;

    if args.jobs == 0 && args.flood_jobs == 0 {
        tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    }

    // 3. Log-flood jobs first; the measured jobs run while they stream.
    if args.flood_jobs > 0 {
        let fl: Vec<bool> = futures_util::stream::iter(args.jobs..args.jobs + args.flood_jobs)
            .map(|j| submit(&client, &args, hook_auth.as_deref(), &shared, j))
            .buffer_unordered(args.concurrency.max(1))
            .collect()
            .await;
        submit_errors += fl.iter().filter(|ok| !**ok).count();
        let f = args.flood_jobs;
        let left = within("flood jobs to start").await?;
        tokio::time::timeout(
            left,
            shared.wait_until(|s| s.flood_started.load(Ordering::Relaxed) >= f),
        )
        .await
        .context("flood jobs did not all start")?;
    }

    // 4. The measured jobs.
    let t_jobs = Instant::now();
    let mut submitted = args.jobs;
    if args.jobs > 0 && !args.no_submit {
        if args.sequential {
            for j in 0..args.jobs {
                if args.stop_after_flood
                    && shared.flood_finished.load(Ordering::Relaxed) >= args.flood_jobs
                {
                    submitted = j;
                    break;
                }
                if !submit(&client, &args, hook_auth.as_deref(), &shared, j).await {
                    submit_errors += 1;
                    continue;
                }
                let left = within("sequential job").await?;
                tokio::time::timeout(
                    left,
                    shared.wait_until(|s| s.end_ns[j].load(Ordering::Relaxed) != 0),
                )
                .await
                .with_context(|| format!("job {j} did not finish"))?;
            }
        } else {
            let oks: Vec<bool> = futures_util::stream::iter(0..args.jobs)
                .map(|j| submit(&client, &args, hook_auth.as_deref(), &shared, j))
                .buffer_unordered(args.concurrency.max(1))
                .collect()
                .await;
            submit_errors += oks.iter().filter(|ok| !**ok).count();
        }
    }
    let submit_s = t_jobs.elapsed().as_secs_f64();
    let want = submitted - submit_errors.min(submitted);
    if args.jobs > 0 {
        let left = within("jobs to finish").await?;
        let progress = async {
            while shared.finished.load(Ordering::Relaxed) < want {
                let _ = tokio::time::timeout(
                    Duration::from_secs(5),
                    shared.wait_until(|s| s.finished.load(Ordering::Relaxed) >= want),
                )
                .await;
                if args.verbose {
                    eprintln!(
                        "{:.0} s: {} started, {} finished of {want}",
                        t_jobs.elapsed().as_secs_f64(),
                        shared.started.load(Ordering::Relaxed),
                        shared.finished.load(Ordering::Relaxed)
                    );
                }
            }
        };
        if tokio::time::timeout(left, progress).await.is_err() {
            eprintln!(
                "loadgen: timed out with {} of {want} jobs finished",
                shared.finished.load(Ordering::Relaxed)
            );
        }
    }
    // The flood jobs too: their figures (and a test reading their logs) need them finished.
    if args.flood_jobs > 0 {
        let f = args.flood_jobs;
        let left = within("flood jobs to finish").await?;
        let done = shared.wait_until(|s| s.flood_finished.load(Ordering::Relaxed) >= f);
        if tokio::time::timeout(left, done).await.is_err() {
            eprintln!(
                "loadgen: timed out with {} of {f} flood jobs finished",
                shared.flood_finished.load(Ordering::Relaxed)
            );
        }
    }
    let wall_s = t_run.elapsed().as_secs_f64();
    let cpu_s = match (cpu0, master_pid.and_then(procstat::cpu_seconds)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let rss = master_pid.and_then(procstat::rss_kib);
    let peak = sampler
        .peak_rss_kib
        .load(Ordering::Relaxed)
        .max(rss.map(|r| r.0).unwrap_or(0));

    // 5. Figures. Throughput: measured jobs over first submit → last job end.
    let mut lat: Vec<f64> = Vec::new();
    let mut first_submit = u64::MAX;
    let mut last_end = 0u64;
    for j in 0..args.jobs {
        let s = shared.submit_ns[j].load(Ordering::Relaxed);
        let st = shared.start_ns[j].load(Ordering::Relaxed);
        let e = shared.end_ns[j].load(Ordering::Relaxed);
        let s = if args.no_submit { run0_ns } else { s };
        if s != 0 {
            first_submit = first_submit.min(s);
        }
        if s != 0 && st != 0 {
            lat.push(st.saturating_sub(s) as f64 / 1e6);
        }
        last_end = last_end.max(e);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    // The flood's span: first flood job started → last one finished; and the measured jobs
    // submitted inside it (only those show what a flood does to dispatch).
    let flood = args.jobs..args.jobs + args.flood_jobs;
    let flood_start = flood
        .clone()
        .map(|j| shared.start_ns[j].load(Ordering::Relaxed))
        .filter(|&t| t != 0)
        .min();
    let flood_end = flood
        .map(|j| shared.end_ns[j].load(Ordering::Relaxed))
        .max()
        .filter(|&t| t != 0);
    let mut lat_flood: Vec<f64> = (0..args.jobs)
        .filter_map(|j| {
            let s = shared.submit_ns[j].load(Ordering::Relaxed);
            let st = shared.start_ns[j].load(Ordering::Relaxed);
            (s != 0 && st != 0 && flood_end.is_some_and(|e| s < e))
                .then(|| st.saturating_sub(s) as f64 / 1e6)
        })
        .collect();
    lat_flood.sort_by(|a, b| a.total_cmp(b));
    let flood_s = match (flood_start, flood_end) {
        (Some(a), Some(b)) if b > a => Some((b - a) as f64 / 1e9),
        _ => None,
    };
    let finished = shared.finished.load(Ordering::Relaxed);
    let span_s = if last_end > first_submit && first_submit != u64::MAX {
        (last_end - first_submit) as f64 / 1e9
    } else {
        f64::NAN
    };
    let jobs_per_s = finished as f64 / span_s;
    let report = serde_json::json!({
        "workers": n,
        "jobs": args.jobs,
        "finished": finished,
        "flood_jobs": args.flood_jobs,
        "flood_finished": shared.flood_finished.load(Ordering::Relaxed),
        "flood_s": flood_s,
        "jobs_during_flood": lat_flood.len(),
        "lat_during_flood_p50_ms": percentile(&lat_flood, 0.50),
        "lat_during_flood_p99_ms": percentile(&lat_flood, 0.99),
        "lat_during_flood_max_ms": percentile(&lat_flood, 1.0),
        "attach_s": attach_s,
        "submit_s": submit_s,
        "span_s": span_s,
        "jobs_per_s": jobs_per_s,
        "lat_p50_ms": percentile(&lat, 0.50),
        "lat_p99_ms": percentile(&lat, 0.99),
        "lat_max_ms": percentile(&lat, 1.0),
        "submit_errors": submit_errors,
        "command_errors": shared.command_errors.load(Ordering::Relaxed),
        "restarts": shared.restarts.load(Ordering::Relaxed),
        "attached_end": shared.attached.load(Ordering::Relaxed),
        "wall_s": wall_s,
        "master_pid": master_pid,
        "cpu_s": cpu_s,
        "cpu_pct": cpu_s.map(|c| 100.0 * c / wall_s),
        "rss_peak_mib": peak as f64 / 1024.0,
        "rss_end_mib": rss.map(|r| r.0 as f64 / 1024.0),
        "rss_hwm_mib": rss.map(|r| r.1 as f64 / 1024.0),
        "run_id": run_id,
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "jobs: {finished}/{} finished in {span_s:.2} s = {jobs_per_s:.1} jobs/s; submit→start p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            args.jobs,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            percentile(&lat, 1.0)
        );
        if args.flood_jobs > 0 {
            println!(
                "flood: {} jobs streamed for {} s; {} jobs submitted meanwhile: submit→start p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                shared.flood_finished.load(Ordering::Relaxed),
                flood_s.map(|s| format!("{s:.1}")).unwrap_or("?".into()),
                lat_flood.len(),
                percentile(&lat_flood, 0.5),
                percentile(&lat_flood, 0.99),
                percentile(&lat_flood, 1.0)
            );
        }
        println!(
            "master: {} CPU s over {wall_s:.1} s ({} %), peak RSS {:.1} MiB",
            cpu_s.map(|c| format!("{c:.2}")).unwrap_or("?".into()),
            cpu_s
                .map(|c| format!("{:.1}", 100.0 * c / wall_s))
                .unwrap_or("?".into()),
            peak as f64 / 1024.0
        );
        println!(
            "errors: {submit_errors} submit, {} command; {} repeated starts",
            shared.command_errors.load(Ordering::Relaxed),
            shared.restarts.load(Ordering::Relaxed)
        );
    }
    let flood_done = shared.flood_finished.load(Ordering::Relaxed) >= args.flood_jobs;
    std::process::exit(if finished < want || !flood_done { 1 } else { 0 });
}
