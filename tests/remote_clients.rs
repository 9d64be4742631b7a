//! The remote clients of the koji/bodhi/distgit directives (worker `runtask::remote`) against
//! the loopback stand-ins: checksums, retries, truncation, timeouts, the cache, faults.
//! (The directives themselves run end to end under `runtask` in remote_formulas.rs.)

mod remote_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use remote_support::server::{Data, Knobs, Server};
use taskotron_worker::runtask::remote::{
    arches, bodhi, distgit,
    http::{self, RemoteError, Settings},
    koji::Hub,
    kojifetch::{Koji, Selection},
};

/// Writes fake package files (content is irrelevant to Koji) and registers them as a build.
fn fake_build(
    data: &mut Data,
    dir: &Path,
    nvr: (&str, &str, &str),
    subs: &[(&str, &str, usize)],
    tags: &[&str],
) {
    let (n, v, r) = nvr;
    let mut files = Vec::new();
    for (i, (name, arch, size)) in subs.iter().enumerate() {
        let p = dir.join(format!("{name}-{v}-{r}.{arch}.rpm"));
        let content: Vec<u8> = (0..*size).map(|b| (b * 31 + i * 7) as u8).collect();
        std::fs::write(&p, content).unwrap();
        files.push(p);
    }
    remote_support::add_build(data, n, v, r, tags, &files);
}

fn settings(cache: Option<PathBuf>) -> Settings {
    Settings {
        timeout: Duration::from_secs(1),
        retries: 2,
        parallel: 4,
        cache_dir: cache,
        backoff: Duration::from_millis(20),
    }
}

fn sel(arches: &[&str], src: bool) -> Selection {
    let req: Vec<String> = arches.iter().map(|s| s.to_string()).collect();
    Selection {
        arches: arches::compute(
            &req,
            &[],
            src,
            &["x86_64".to_string(), "armhfp".to_string()],
        ),
        debuginfo: false,
    }
}

/// Runs `f` with a Koji client for `koji_url` (any URL, for "hub down").
fn with_koji<T: Send, Fut: std::future::Future<Output = T> + Send>(
    koji_url: &str,
    pkg_url: &str,
    s: &Settings,
    f: impl FnOnce(Koji) -> Fut + Send,
) -> T {
    let koji = Koji {
        hub: Hub {
            url: koji_url.to_string(),
            client: http::client(s).unwrap(),
            settings: s.clone(),
        },
        pkg_url: pkg_url.to_string(),
    };
    http::block_on(f(koji)).unwrap()
}

fn standard(dir: &Path) -> Data {
    let mut data = Data::default();
    data.hub.checksums = true;
    fake_build(
        &mut data,
        dir,
        ("foo", "1.0", "2.fc27"),
        &[
            ("foo", "x86_64", 70_000),
            ("foo-libs", "x86_64", 30_000),
            ("foo-debuginfo", "x86_64", 10_000),
            ("foo", "armv7hl", 60_000),
            ("foo-doc", "noarch", 5_000),
            ("foo", "src", 40_000),
            ("foo", "ppc64le", 1_000),
        ],
        &["f27-updates-testing"],
    );
    data
}

fn names(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn downloads_selected_arches_verified_against_hub_checksums() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(standard(tmp.path()));
    let dest = &tmp.path().join("out");
    let s = settings(None);
    let (build, files) = with_koji(&srv.koji_url(), &srv.pkg_url(), &s, |k| async move {
        k.download_build("foo-0:1.0-2.fc27", &sel(&["all"], true), dest)
            .await
    })
    .unwrap();
    assert_eq!(build.nvr, "foo-1.0-2.fc27");
    assert_eq!(
        names(&files),
        [
            "foo-1.0-2.fc27.armv7hl.rpm",
            "foo-1.0-2.fc27.src.rpm",
            "foo-1.0-2.fc27.x86_64.rpm",
            "foo-doc-1.0-2.fc27.noarch.rpm",
            "foo-libs-1.0-2.fc27.x86_64.rpm",
        ]
    );
    for f in &files {
        let served = std::fs::read(tmp.path().join(f.file_name().unwrap())).unwrap();
        assert_eq!(std::fs::read(f).unwrap(), served, "{}", f.display());
    }
    let calls = srv.stats().calls;
    assert!(
        calls.contains(&"system.multicall:getRPMChecksums".to_string()),
        "{calls:?}"
    );
    assert!(!dest.read_dir().unwrap().any(|e| e
        .unwrap()
        .path()
        .extension()
        .is_some_and(|x| x == "part")));
}

#[test]
fn unknown_build_names_the_nvr_and_unknown_tag_is_a_koji_fault() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(standard(tmp.path()));
    let s = settings(None);
    let dest = &tmp.path().join("out");
    let e = with_koji(&srv.koji_url(), &srv.pkg_url(), &s, |k| async move {
        k.download_build("nosuch-3.1-1.fc27", &sel(&["x86_64"], false), dest)
            .await
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "No such build found in Koji: nosuch-3.1-1.fc27"
    );
    let e = with_koji(&srv.koji_url(), &srv.pkg_url(), &s, |k| async move {
        k.download_tag("f99-updates", &sel(&["x86_64"], false), dest)
            .await
    })
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("listTagged failed: fault 1000: No such tagInfo: 'f99-updates'"),
        "{e}"
    );
}

#[test]
fn hub_down_is_retried_then_reported() {
    let tmp = tempfile::tempdir().unwrap();
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/kojihub");
    let s = settings(None);
    let dest = &tmp.path().join("out");
    let e = with_koji(&url, &url, &s, |k| async move {
        k.download_build("foo-1.0-2.fc27", &sel(&["x86_64"], false), dest)
            .await
    })
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, RemoteError::GaveUp { attempts: 3, .. }),
        "{msg}"
    );
    assert!(
        msg.contains("(getBuild)") && msg.contains(&port.to_string()),
        "{msg}"
    );
}

#[test]
fn hub_timing_out_is_retried_then_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(standard(tmp.path()));
    srv.set_knobs(Knobs {
        hub_delay: Duration::from_secs(30),
        ..Knobs::default()
    });
    let s = settings(None);
    let dest = &tmp.path().join("out");
    let e = with_koji(&srv.koji_url(), &srv.pkg_url(), &s, |k| async move {
        k.download_build("foo-1.0-2.fc27", &sel(&["x86_64"], false), dest)
            .await
    })
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("giving up after 3 attempts"), "{msg}");
    assert!(msg.to_lowercase().contains("timed out"), "{msg}");
}

#[test]
fn hub_503_then_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(standard(tmp.path()));
    srv.set_knobs(Knobs {
        hub_fail_first: 2,
        ..Knobs::default()
    });
    let s = settings(None);
    let dest = &tmp.path().join("out");
    let (_, files) = with_koji(&srv.koji_url(), &srv.pkg_url(), &s, |k| async move {
        k.download_build("foo-1.0-2.fc27", &sel(&["x86_64"], false), dest)
            .await
    })
    .unwrap();
    assert_eq!(files.len(), 3); // foo, foo-libs (x86_64) + foo-doc (noarch)
    let calls = srv.stats().calls;
    assert_eq!(&calls[..3], ["(503)", "(503)", "getBuild"], "{calls:?}");
}

#[test]
fn truncated_and_corrupted_downloads_are_detected_and_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start(standard(tmp.path()));
    srv.set_knobs(Knobs {
        truncate: [("foo-1.0-2.fc27.x86_64.rpm".to_string(), 2)].into(),
        corrupt: [("foo-libs-1.0-2.fc27.x86_64.rpm".to_string(), 1)].into(),
        ..Knobs::default()
    });
    let s = settings(None);
    let dest = &tmp.path().join("out");
    let (_, files) = with_koji(&srv.koji_url(), &srv.pkg_url(), &s, |k| async move {
        k.download_build("foo-1.0-2.fc27", &sel(&["x86_64"], false), dest)
            .await
    })
    .unwrap();
    for f in &files {
        let served = std::fs::read(tmp.path().join(f.file_name().unwrap())).unwrap();
        assert_eq!(std::fs::read(f).unwrap(), served);
    }
    let gets = srv.stats().gets;
    assert_eq!(
        gets["/packages/foo/1.0/2.fc27/x86_64/foo-1.0-2.fc27.x86_64.rpm"],
        3
    );
    assert_eq!(
        gets["/packages/foo/1.0/2.fc27/x86_64/foo-libs-1.0-2.fc27.x86_64.rpm"],
        2
    );

    // Always truncated: a clear error after the retries, and no partial file left behind.
    srv.set_knobs(Knobs {
        truncate: [("foo-doc-1.0-2.fc27.noarch.rpm".to_string(), 99)].into(),
        ..Knobs::default()
    });
    let dest2 = &tmp.path().join("out2");
    let e = with_koji(&srv.koji_url(), &srv.pkg_url(), &s, |k| async move {
        k.download_build("foo-1.0-2.fc27", &sel(&["noarch"], false), dest2)
            .await
    })
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("giving up after 3 attempts") && msg.contains("truncated"),
        "{msg}"
    );
    assert!(
        std::fs::read_dir(dest2).unwrap().next().is_none(),
        "leftovers in {}",
        dest2.display()
    );
}

#[test]
fn hub_without_checksums_still_checks_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut data = standard(tmp.path());
    data.hub.checksums = false;
    let srv = Server::start(data);
    srv.set_knobs(Knobs {
        truncate: [("foo-1.0-2.fc27.src.rpm".to_string(), 1)].into(),
        ..Knobs::default()
    });
    let s = settings(None);
    let dest = &tmp.path().join("out");
    let (_, files) = with_koji(&srv.koji_url(), &srv.pkg_url(), &s, |k| async move {
        k.download_build("foo-1.0-2.fc27", &sel(&[], true), dest)
            .await
    })
    .unwrap();
    assert_eq!(names(&files), ["foo-1.0-2.fc27.src.rpm"]);
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), 40_000);
}

#[test]
fn cache_serves_repeated_downloads_and_parallelism_is_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let mut data = Data::default();
    data.hub.checksums = true;
    let subs: Vec<(String, &str, usize)> = (0..12)
        .map(|i| (format!("many{i:02}"), "noarch", 20_000))
        .collect();
    let subs_ref: Vec<(&str, &str, usize)> =
        subs.iter().map(|(n, a, s)| (n.as_str(), *a, *s)).collect();
    fake_build(
        &mut data,
        tmp.path(),
        ("many00", "1", "1.fc27"),
        &subs_ref,
        &["f27"],
    );
    let srv = Server::start(data);
    srv.set_knobs(Knobs {
        file_latency: Duration::from_millis(100),
        ..Knobs::default()
    });
    let s = settings(Some(tmp.path().join("cache")));
    let first = &tmp.path().join("first");
    let (_, files) = with_koji(&srv.koji_url(), &srv.pkg_url(), &s, |k| async move {
        k.download_build("many00-1-1.fc27", &sel(&["noarch"], false), first)
            .await
    })
    .unwrap();
    assert_eq!(files.len(), 12);
    let stats = srv.stats();
    assert!(stats.max_files_in_flight > 1, "downloads ran one by one");
    assert!(
        stats.max_files_in_flight <= 4,
        "more than 4 at once: {}",
        stats.max_files_in_flight
    );
    let gets_before: u32 = stats.gets.values().sum();

    let second = &tmp.path().join("second");
    let (_, again) = with_koji(&srv.koji_url(), &srv.pkg_url(), &s, |k| async move {
        k.download_build("many00-1-1.fc27", &sel(&["noarch"], false), second)
            .await
    })
    .unwrap();
    assert_eq!(again.len(), 12);
    let gets_after: u32 = srv.stats().gets.values().sum();
    assert_eq!(gets_before, gets_after, "cached files were fetched again");
    for f in &again {
        assert_eq!(
            std::fs::read(f).unwrap(),
            std::fs::read(first.join(f.file_name().unwrap())).unwrap()
        );
    }
}

#[test]
fn tag_latest_stable_and_build_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut data = Data::default();
    data.hub.checksums = true;
    fake_build(
        &mut data,
        tmp.path(),
        ("bar", "1.0", "1.fc27"),
        &[("bar", "x86_64", 100)],
        &["f27"],
    );
    fake_build(
        &mut data,
        tmp.path(),
        ("bar", "1.2", "1.fc27"),
        &[("bar", "x86_64", 120)],
        &["f27-updates"],
    );
    fake_build(
        &mut data,
        tmp.path(),
        ("bar", "1.10", "1.fc27"),
        &[("bar", "x86_64", 110), ("bar", "noarch", 10)],
        &["f27-updates-testing"],
    );
    fake_build(
        &mut data,
        tmp.path(),
        ("baz", "2", "1.fc27"),
        &[("baz", "noarch", 130)],
        &["f27-updates-testing"],
    );
    remote_support::add_build_log(&mut data, "bar", "1.10", "1.fc27", "x86_64");
    let srv = Server::start(data);
    let s = settings(None);

    let dest = &tmp.path().join("tag");
    let files = with_koji(&srv.koji_url(), &srv.pkg_url(), &s, |k| async move {
        k.download_tag("f27-updates-testing", &sel(&["x86_64"], false), dest)
            .await
    })
    .unwrap();
    assert_eq!(
        names(&files),
        [
            "bar-1.10-1.fc27.noarch.rpm",
            "bar-1.10-1.fc27.x86_64.rpm",
            "baz-2-1.fc27.noarch.rpm"
        ]
    );
    // Both tagged builds' RPM lists in one round trip, all checksums in another.
    let calls = srv.stats().calls;
    let count = |what: &str| calls.iter().filter(|c| *c == what).count();
    assert_eq!(count("system.multicall"), 2, "{calls:?}");
    assert_eq!(count("system.multicall:listRPMs"), 2, "{calls:?}");
    assert!(!calls.contains(&"listRPMs".to_string()), "{calls:?}");

    let latest = with_koji(&srv.koji_url(), &srv.pkg_url(), &s, |k| async move {
        k.latest_stable("bar-1.10-1.fc27").await
    })
    .unwrap();
    assert_eq!(latest.as_deref(), Some("bar-1.2-1.fc27"));
    let none = with_koji(&srv.koji_url(), &srv.pkg_url(), &s, |k| async move {
        k.latest_stable("baz-2-1.fc26").await
    })
    .unwrap_err();
    assert!(
        none.to_string().contains("No such tagInfo: 'f26-updates'"),
        "{none}"
    );

    let logs_dir = &tmp.path().join("logs");
    std::fs::create_dir_all(logs_dir).unwrap();
    let logs = with_koji(&srv.koji_url(), &srv.pkg_url(), &s, |k| async move {
        let b = k.hub.get_build("bar-1.10-1.fc27").await?;
        let wanted: BTreeSet<String> = ["x86_64", "noarch", "src"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        k.build_logs(&b, &wanted, logs_dir).await
    })
    .unwrap();
    assert_eq!(names(&logs.downloaded), ["build.log.x86_64"]);
    assert_eq!(logs.errors, ["noarch"]);
}

#[test]
fn bodhi_and_distgit_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let mut data = Data::default();
    data.updates.insert(
        "FEDORA-2017-04459ef8cf".into(),
        vec!["foo-1.0-2.fc27".into(), "bar-1-1.fc27".into()],
    );
    data.distgit.insert(
        "modules/testmodule/master/testmodule.yaml".into(),
        "document: modulemd\n".into(),
    );
    let srv = Server::start(data);
    let s = settings(None);
    let (found, missing) = http::block_on(async {
        let client = http::client(&s).unwrap();
        (
            bodhi::update_builds(&client, &s, &srv.bodhi_url(), "FEDORA-2017-04459ef8cf").await,
            bodhi::update_builds(&client, &s, &srv.bodhi_url(), "FEDORA-2017-nope").await,
        )
    })
    .unwrap();
    assert_eq!(found.unwrap(), ["foo-1.0-2.fc27", "bar-1-1.fc27"]);
    assert_eq!(
        missing.unwrap_err().to_string(),
        "Update with ID 'FEDORA-2017-nope' wasn't found in Bodhi"
    );

    let repo = distgit::Repo {
        baseurl: srv.distgit_url(),
        namespace: "modules".into(),
        package: "testmodule".into(),
        gitref: "master".into(),
    };
    let dest = tmp.path().join("dg");
    let files = vec![
        (
            repo.raw_url("testmodule.yaml"),
            dest.join("download/testmodule.yaml"),
        ),
        (repo.raw_url("missing.spec"), dest.join("missing.spec")),
    ];
    let (ignored, strict) = http::block_on(async {
        let client = http::client(&s).unwrap();
        (
            distgit::fetch_files(&client, &s, &files, true).await,
            distgit::fetch_files(&client, &s, &files, false).await,
        )
    })
    .unwrap();
    let got = ignored.unwrap();
    assert_eq!(got, [dest.join("download/testmodule.yaml")]);
    assert_eq!(
        std::fs::read_to_string(&got[0]).unwrap(),
        "document: modulemd\n"
    );
    let e = strict.unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert!(
        e.to_string()
            .contains("/distgit/modules/testmodule/raw/master/f/missing.spec: HTTP 404"),
        "{e}"
    );
}
