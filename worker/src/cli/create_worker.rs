//! `taskotron-worker create-worker BASEDIR MASTER_HOST:PORT NAME PASSWORD`, like
//! `buildbot-worker create-worker`: writes the config and the `info/` files the master reads.

use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::agent::config::WorkerConfig;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Base directory of the worker (created if missing).
    pub basedir: PathBuf,
    /// The master's worker port, HOST:PORT.
    pub master: String,
    /// Worker name, as configured on the master.
    pub name: String,
    /// Worker password, as configured on the master.
    pub password: String,
    /// Architecture this worker runs (written to info/arch; the master routes jobs by it).
    #[arg(long, default_value_t = default_arch())]
    pub arch: String,
    /// Seconds between WebSocket pings to the master (a silent master is detected after
    /// keepalive + 10 s).
    #[arg(long, default_value_t = 10.0)]
    pub keepalive: f64,
    /// Longest delay between reconnect attempts, seconds.
    #[arg(long, default_value_t = 30.0)]
    pub maxdelay: f64,
    /// CPU count to report to the master (default: detected).
    #[arg(long)]
    pub numcpus: Option<u64>,
    /// Admin contact written to info/admin.
    #[arg(long)]
    pub admin: Option<String>,
    /// Connect with TLS (wss://), checking the master's certificate against the public web PKI,
    /// or against --tls-ca.
    #[arg(long)]
    pub tls: bool,
    /// CA certificate (PEM) of the master's worker port (implies --tls).
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for a master that asks for one (implies --tls).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Overwrite an existing worker.yaml.
    #[arg(short, long)]
    pub force: bool,
}

fn default_arch() -> String {
    match std::env::consts::ARCH {
        "x86" => "i386".into(),
        "arm" => "armhfp".into(),
        other => other.into(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut cfg = WorkerConfig::new(args.master, args.name, args.password);
    cfg.keepalive = args.keepalive;
    cfg.maxdelay = args.maxdelay;
    cfg.numcpus = args.numcpus;
    if args.tls || args.tls_ca.is_some() || args.tls_cert.is_some() {
        let abs = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| std::path::absolute(p).unwrap_or(p.clone()))
        };
        cfg.tls = Some(crate::agent::config::TlsConfig {
            ca: abs(&args.tls_ca),
            cert: abs(&args.tls_cert),
            key: abs(&args.tls_key),
        });
    }
    cfg.check()
        .map_err(|e| anyhow::anyhow!("invalid argument: {e}"))?;
    if args.arch.trim().is_empty() {
        bail!("invalid argument: --arch must not be empty");
    }
    let conf = args.basedir.join("worker.yaml");
    if conf.exists() && !args.force {
        bail!(
            "{} already exists (use --force to overwrite)",
            conf.display()
        );
    }
    let info = args.basedir.join("info");
    std::fs::create_dir_all(&info).with_context(|| format!("cannot create {}", info.display()))?;
    let yaml = format!(
        "# taskotron-worker configuration (see docs/worker.md)\n{}",
        serde_yaml_ng::to_string(&cfg).context("serialising worker.yaml")?
    );
    std::fs::write(&conf, yaml).with_context(|| format!("cannot write {}", conf.display()))?;
    let admin = args
        .admin
        .unwrap_or_else(|| "Your Name Here <admin@youraddress.invalid>".into());
    for (name, text) in [
        ("admin", admin),
        ("host", hostname()),
        ("arch", args.arch.trim().to_string()),
    ] {
        let path = info.join(name);
        if path.exists() && !args.force {
            continue; // keep what an admin wrote
        }
        std::fs::write(&path, format!("{text}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("worker configured in {}", args.basedir.display());
    Ok(())
}
