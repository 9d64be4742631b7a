//! The SQL listings (`sql.rs`) against the in-memory reference (`Query::apply` over every row,
//! what every collection did before): random query strings on a database with a few hundred
//! varied rows must give the same reply, byte for byte, and the same 400s. Also: the whitelist
//! covers every field of every row, the common queries are answered from indexes, and (ignored
//! by default) what three listings cost with 100,000 builds on both paths.

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::{params, Connection};

use super::query::{collection, Query};
use super::sql::{list, listing, plan, Plan, Reply};
use crate::db::catalog::{self, Col, Entity};
use crate::db::{Db, DbError, Filter, Listing, Page};

/// What the generated data is made of: small pools, so filters hit and orders tie.
const STATES: &[&str] = &[
    "starting",
    "runtask",
    "build successful",
    "failed",
    "Failed",
    "",
    "retry 50%",
    "a_b",
    "ünïcode",
];
const TEXTS: &[&str] = &[
    "taskotron",
    "Taskotron <t@fp.o>",
    "",
    "a%b",
    "a_b",
    "é",
    "rpmlint",
];
const TASKS: &[&str] = &["rpmlint", "abicheck", "python-versions", "rpmdeplint"];

/// Fills a fresh database (migrated by `Db::open`) with `requests` build requests and their
/// changes, sourcestamps and buildsets; claimed requests get one build (some a retried second),
/// and with `steps` each build gets steps and logs. The last `pending` requests are queued.
fn fill(path: &Path, requests: usize, pending: usize, steps: bool, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut c = Connection::open(path).unwrap();
    let tx = c.transaction().unwrap();
    for (id, name) in [(1, "all"), (2, "x86_64"), (3, "i386")] {
        let desc = (id != 1).then_some(format!("{name} checks"));
        tx.execute(
            "INSERT INTO builders(builderid, name, description) VALUES (?1, ?2, ?3)",
            params![id, name, desc],
        )
        .unwrap();
    }
    for w in 1..=4 {
        tx.execute(
            "INSERT INTO workers(workerid, name) VALUES (?1, ?2)",
            params![w, format!("w{w}")],
        )
        .unwrap();
    }
    let pick = |rng: &mut StdRng, pool: &[&str]| pool[rng.random_range(0..pool.len())].to_string();
    let maybe = |rng: &mut StdRng, pool: &[&str]| {
        let v = pick(rng, pool);
        rng.random_bool(0.7).then_some(v)
    };
    let mut numbers = [0i64; 4];
    let (mut buildid, mut stepid, mut logid) = (0i64, 0i64, 0i64);
    for i in 1..=requests as i64 {
        // A year of checks: one a few minutes, with ties in the small data set.
        let t = if requests > 1000 {
            1_700_000_000 + i * 300
        } else {
            1000 + rng.random_range(0..12)
        };
        let task = pick(&mut rng, TASKS);
        let item = format!("pkg{}-1.{}-1.fc40", rng.random_range(0..40), i % 7);
        let uuid = format!("{:08x}-{i}", rng.random::<u32>());
        tx.execute(
            "INSERT INTO sourcestamps(ssid, project, repository, created_at) VALUES (?1, 'rpmcheck', '', ?2)",
            params![i, t],
        )
        .unwrap();
        let props = serde_json::json!({"taskname": [task, "Change"], "item": [item, "Change"],
            "item_type": ["koji_build", "Change"], "uuid": [uuid, "Change"]});
        tx.execute(
            "INSERT INTO changes(changeid, author, committer, branch, category, comments, files,
                 project, properties, repository, revision, revlink, codebase, when_timestamp, ssid)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'rpmcheck', ?8, ?9, ?10, ?11, ?12, ?13, ?1)",
            params![
                i,
                pick(&mut rng, TEXTS),
                maybe(&mut rng, TEXTS),
                pick(&mut rng, &["", "main", "f40"]),
                maybe(&mut rng, &["x86_64", "noarch", "i386", ""]),
                pick(&mut rng, TEXTS),
                if rng.random_bool(0.5) {
                    "[]"
                } else {
                    "[\"a.spec\", 3]"
                },
                props.to_string(),
                pick(&mut rng, &["", "https://src.fp.o/rpms/x", "git://y"]),
                maybe(&mut rng, &["", "abc123", "ABC"]),
                maybe(&mut rng, TEXTS),
                pick(&mut rng, &["", "cb"]),
                t,
            ],
        )
        .unwrap();
        let queued = i > (requests - pending) as i64;
        let claimed = !queued && rng.random_bool(0.95);
        let running = claimed && requests < 1000 && rng.random_bool(0.1);
        let done = !queued && !running;
        let result = done.then(|| rng.random_range(0..7i64));
        let done_at = done.then(|| t + rng.random_range(0..5i64));
        tx.execute(
            "INSERT INTO buildsets(bsid, reason, results, complete, complete_at, submitted_at,
                 external_idstring, ssid, changeid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?1, ?1)",
            params![
                i,
                pick(&mut rng, &["change", "force", ""]),
                result,
                done as i64,
                done_at,
                t,
                maybe(&mut rng, TEXTS),
            ],
        )
        .unwrap();
        let builder = rng.random_range(1..=3i64);
        let claimed_at = claimed.then(|| t + rng.random_range(0..3i64));
        // A request cancelled while queued is complete with a NULL... result only in old
        // databases; keep a few NULL results on complete rows to cover COALESCE.
        let br_result = result.filter(|_| rng.random_bool(0.95));
        tx.execute(
            "INSERT INTO buildrequests(buildrequestid, buildsetid, builderid, priority, claimed_at,
                 complete, complete_at, results, submitted_at, properties, uuid, taskname, item,
                 item_type, arch, task_key, sha)
             VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '{}', ?9, ?10, ?11, 'koji_build',
                 'x86_64', ?10, '0000')",
            params![
                i,
                builder,
                rng.random_range(-1..3i64),
                claimed_at,
                done as i64,
                done_at,
                br_result,
                t,
                uuid,
                task,
                item
            ],
        )
        .unwrap();
        if !claimed {
            continue;
        }
        let attempts = if requests < 1000 && rng.random_bool(0.15) {
            2
        } else {
            1
        };
        for attempt in 1..=attempts {
            buildid += 1;
            numbers[builder as usize] += 1;
            let last = attempt == attempts;
            let (b_at, b_res) = if last {
                (done_at, result)
            } else {
                (Some(t + 1), Some(5))
            };
            let mut p = props.clone();
            p["buildnumber"] = serde_json::json!([numbers[builder as usize], "Build"]);
            tx.execute(
                "INSERT INTO builds(buildid, number, builderid, buildrequestid, workerid,
                     started_at, complete_at, results, state_string, properties)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    buildid,
                    numbers[builder as usize],
                    builder,
                    i,
                    rng.random_range(1..=4i64),
                    claimed_at.unwrap_or(t),
                    b_at,
                    b_res,
                    pick(&mut rng, STATES),
                    p.to_string()
                ],
            )
            .unwrap();
            if !steps {
                continue;
            }
            for n in 0..rng.random_range(0..4i64) {
                stepid += 1;
                let started = rng.random_bool(0.9).then_some(t + n);
                tx.execute(
                    "INSERT INTO steps(stepid, buildid, number, name, started_at, complete_at,
                         results, state_string, urls, hidden) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '[]', ?9)",
                    params![
                        stepid,
                        buildid,
                        n,
                        pick(&mut rng, &["git", "runtask", "upload", "Run"]),
                        started,
                        started.filter(|_| rng.random_bool(0.8)),
                        rng.random_bool(0.8).then(|| rng.random_range(0..5i64)),
                        pick(&mut rng, STATES),
                        rng.random_bool(0.2) as i64
                    ],
                )
                .unwrap();
                for slug in ["stdio", "taskotron.log"]
                    .iter()
                    .take(rng.random_range(0..3))
                {
                    logid += 1;
                    tx.execute(
                        "INSERT INTO logs(logid, stepid, name, slug, type, num_lines, complete)
                         VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6)",
                        params![
                            logid,
                            stepid,
                            slug,
                            pick(&mut rng, &["s", "t"]),
                            rng.random_range(0..20i64),
                            rng.random_bool(0.7) as i64
                        ],
                    )
                    .unwrap();
                }
            }
        }
    }
    tx.commit().unwrap();
}

fn small_db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sqlite");
    let db = Db::open(&path).unwrap();
    fill(&path, 300, 20, true, 7);
    (dir, db)
}

type Fetch<'a> = Box<dyn Fn(&Query) -> Box<dyn Fn(&Page) -> Result<Listing, DbError> + 'a> + 'a>;

/// Every collection endpoint's fetch, with the restrictions their URLs add.
fn endpoints(db: &Db) -> Vec<(&'static str, &'static Entity, Fetch<'_>)> {
    fn builds<'a>(db: &'a Db, f: Filter) -> Fetch<'a> {
        Box::new(move |q: &Query| {
            let (f, props) = (f.clone(), q.has("property"));
            Box::new(move |p: &Page| db.builds_page(&f, props, p))
        })
    }
    vec![
        ("builds", &catalog::BUILDS, builds(db, Filter::default())),
        (
            "builders/2/builds",
            &catalog::BUILDS,
            builds(db, Filter::by("builderid", 2)),
        ),
        (
            "buildrequests/5/builds",
            &catalog::BUILDS,
            builds(db, Filter::by("buildrequestid", 5)),
        ),
        (
            "buildrequests",
            &catalog::BUILDREQUESTS,
            Box::new(|_| Box::new(|p| db.buildrequests_page(&Filter::default(), p))),
        ),
        (
            "builders/1/buildrequests",
            &catalog::BUILDREQUESTS,
            Box::new(|_| Box::new(|p| db.buildrequests_page(&Filter::by("builderid", 1), p))),
        ),
        (
            "buildsets",
            &catalog::BUILDSETS,
            Box::new(|_| Box::new(|p| db.buildsets_page(&Filter::default(), p))),
        ),
        (
            "changes",
            &catalog::CHANGES,
            Box::new(|_| Box::new(|p| db.changes_page(&Filter::default(), p))),
        ),
        // Every step and log (the API lists them per build / step; more rows test more).
        (
            "steps",
            &catalog::STEPS,
            Box::new(|_| Box::new(|p| db.steps_page(&Filter::default(), p))),
        ),
        (
            "builds/3/steps",
            &catalog::STEPS,
            Box::new(|_| Box::new(|p| db.steps_page(&Filter::by("buildid", 3), p))),
        ),
        (
            "logs",
            &catalog::LOGS,
            Box::new(|_| Box::new(|p| db.logs_page(&Filter::default(), p))),
        ),
    ]
}

fn render(r: &Reply) -> String {
    match r {
        Ok((rows, total)) => format!("{} total={total}", serde_json::to_string(rows).unwrap()),
        Err(e) => format!("400 {e}"),
    }
}

/// The reference reply (every row, `Query::apply`) and the SQL path's reply to `qs`; whether
/// the SQL path was taken (None: the query is a 400).
fn compare(qs: &str, entity: &Entity, fetch: &Fetch) -> Result<Option<bool>, TestCaseError> {
    let q = Query::parse(Some(qs));
    let fetch = fetch(&q);
    let old = q.apply(entity, fetch(&Page::default()).unwrap().0);
    let new = list(&q, entity, &fetch).unwrap();
    prop_assert_eq!(
        render(&old),
        render(&new),
        "query {:?} on {}",
        qs,
        entity.table
    );
    Ok(plan(&q, entity).ok().map(|p| matches!(p, Plan::Sql(_))))
}

/// Values a query string may carry: numbers, ids and times in the data, the special spellings
/// of null and booleans, things that are not numbers, and text from the data.
const VALUES: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "-1",
    "7",
    "12",
    "100",
    "299",
    "1000",
    "1003",
    "1006",
    "1011",
    "2.5",
    "1e3",
    "+3",
    "003",
    "abc",
    "",
    "null",
    "None",
    "true",
    "false",
    "on",
    "off",
    "yes",
    "no",
    "TRUE",
    "NaN",
    "inf",
    "-inf",
    "x86_64",
    "all",
    "rpmlint",
    "run",
    "fail",
    "Fail",
    "%",
    "_",
    "a%b",
    "é",
    "build successful",
    "taskotron",
    "Taskotron",
    "stdio",
    "git",
    "[]",
];

/// Names that are not fields of `entity` (a field of another resource, a wrong case, none).
fn unknown_names(entity: &Entity) -> Vec<&'static str> {
    ["nosuch", "", "bsid", "slug", "Buildid", "buildid__eq"]
        .into_iter()
        .filter(|n| entity.field(n).is_none())
        .collect()
}

/// A random query string for `entity`: filters with every operator, repeated keys, one or two
/// orders, limit/offset, projection, `property=`; and now and then something Buildbot rejects
/// (an unknown field in a filter, order or `field=`, an unknown operator, a filter on a JSON
/// field, an order or filter outside `field=`, a bad limit/offset), so the 400s are compared
/// too. Mostly valid, so that most queries exercise the SQL translation.
fn query_strategy(entity: &'static Entity) -> impl Strategy<Value = String> {
    let names: Vec<&'static str> = entity.fields.iter().map(|f| f.name).collect();
    let filterable: Vec<&'static str> = entity
        .fields
        .iter()
        .filter(|f| !matches!(f.col, Col::Json))
        .map(|f| f.name)
        .collect();
    let json: Vec<&'static str> = names
        .iter()
        .copied()
        .filter(|n| !filterable.contains(n))
        .collect();
    let unknown = unknown_names(entity);
    // JSON fields are known (may be ordered and selected) but not filterable.
    let mut bad_filter_names = unknown.clone();
    bad_filter_names.extend(json);
    let filter_name = prop_oneof![
        14 => prop::sample::select(filterable),
        1 => prop::sample::select(bad_filter_names),
    ];
    let name = prop_oneof![
        14 => prop::sample::select(names),
        1 => prop::sample::select(unknown),
    ];
    let op = prop_oneof![
        20 => prop::sample::select(vec![
            "", "", "", "", "__eq", "__ne", "__lt", "__le", "__gt", "__ge", "__contains", "__in",
            "__notin",
        ]),
        1 => prop::sample::select(vec!["__like", "__", "__EQ"]),
    ];
    let value = prop::sample::select(VALUES.to_vec());
    let filters = prop::collection::vec((filter_name, op, value), 0..4);
    let orders = prop::collection::vec((name.clone(), any::<bool>()), 0..3);
    let window = prop_oneof![
        30 => prop::sample::select(vec!["", "", "", "0", "1", "2", "5", "10", "50", "1000"]),
        1 => prop::sample::select(vec!["x", "-1", "1.5", ""]),
    ];
    // `field=`: none; every field the filters and orders use plus `extra`; or just `extra`
    // (then usually a 400: filter/order on un-selected fields).
    let projection = prop_oneof![14 => Just(0u8), 5 => Just(1u8), 1 => Just(2u8)];
    let extra = prop::collection::vec(name, 0..3);
    let property = prop::sample::select(vec!["", "", "uuid", "*", "nosuch"]);
    (
        filters,
        orders,
        window.clone(),
        window,
        projection,
        extra,
        property,
    )
        .prop_map(
            |(filters, orders, limit, offset, projection, extra, property)| {
                let mut selected: Vec<&str> = Vec::new();
                if projection == 1 {
                    selected.extend(filters.iter().map(|(f, _, _)| *f));
                    selected.extend(orders.iter().map(|(f, _)| *f));
                }
                if projection != 0 {
                    selected.extend(extra);
                }
                let mut pairs: Vec<(String, String)> = filters
                    .into_iter()
                    .map(|(f, op, v)| (format!("{f}{op}"), v.to_string()))
                    .collect();
                for (f, desc) in orders {
                    pairs.push((
                        "order".into(),
                        format!("{}{f}", if desc { "-" } else { "" }),
                    ));
                }
                for (k, v) in [("limit", limit), ("offset", offset), ("property", property)] {
                    if !v.is_empty() {
                        pairs.push((k.into(), v.into()));
                    }
                }
                for f in selected {
                    pairs.push(("field".into(), f.into()));
                }
                pairs
            },
        )
        .prop_shuffle()
        .prop_map(|pairs| {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
        })
}

#[test]
fn sql_listings_equal_the_in_memory_reference() {
    let (_dir, db) = small_db();
    let (mut sql_plans, mut rejected, mut cases) = (0, 0, 0);
    for (name, entity, fetch) in endpoints(&db) {
        let mut runner = TestRunner::new(Config {
            cases: 250,
            failure_persistence: None,
            ..Config::default()
        });
        let (sql, bad) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
        runner
            .run(&query_strategy(entity), |qs| {
                match compare(&qs, entity, &fetch)? {
                    Some(true) => sql.set(sql.get() + 1),
                    Some(false) => {}
                    None => bad.set(bad.get() + 1),
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        sql_plans += sql.get();
        rejected += bad.get();
        cases += 250;
    }
    // The comparison is only worth something if most queries really went through SQL, and
    // enough were 400s to compare those too.
    println!("{cases} queries: {sql_plans} answered by SQL, {rejected} were 400s");
    assert!(
        sql_plans * 2 > cases,
        "{sql_plans} of {cases} queries used SQL"
    );
    assert!(
        rejected * 10 > cases,
        "{rejected} of {cases} queries were 400s"
    );
}

/// Hand-picked queries with the rules most likely to differ between SQL and memory; each must
/// also be answered by SQL, not by the fallback.
#[test]
fn tricky_queries_match_and_use_sql() {
    let (_dir, db) = small_db();
    let eps = endpoints(&db);
    let ep = |n: &str| eps.iter().find(|e| e.0 == n).unwrap();
    let cases: &[(&str, &str)] = &[
        ("builds", "order=-buildid&limit=10"),
        ("builds", "builderid=1&limit=50"),
        ("builds", "results=null"),
        ("builds", "results__ne=null&order=results&order=-started_at"),
        ("builds", "results=2&results=4&order=-complete_at"),
        ("builds", "results__lt=abc"),
        ("builds", "results__ne=abc&limit=3"),
        ("builds", "buildid__gt=2.5&buildid__le=1e2&offset=5"),
        ("builds", "buildid__eq=NaN"),
        ("builds", "buildid__ne=NaN&limit=2"),
        ("builds", "buildid__contains=1"),
        ("builds", "complete=false&order=-buildid"),
        ("builds", "complete=yes&complete__ne=off"),
        (
            "builds",
            "complete__lt=true&order=complete&order=-state_string",
        ),
        ("builds", "state_string__contains=ail&order=state_string"),
        ("builds", "state_string__contains=&limit=1"),
        ("builds", "state_string__ge=b&state_string__lt=s"),
        ("builds", "masterid=1&locks_duration_s__lt=1&limit=4"),
        ("builds", "masterid=2"),
        ("builds", "nosuch=1&limit=x"),
        (
            "builds",
            "field=buildid&field=number&order=-number&limit=3&property=uuid",
        ),
        ("builders/2/builds", "order=-number&limit=1"),
        ("buildrequests", "complete=false"),
        ("buildrequests", "complete=0&claimed=false&order=-priority"),
        ("buildrequests", "results=-1&limit=5"),
        (
            "buildrequests",
            "claimed_by_masterid=null&order=claimed_by_masterid",
        ),
        ("buildrequests", "waited_for=false&limit=2"),
        (
            "buildrequests",
            "buildrequestid__in=3&buildrequestid__in=9&results__notin=-1",
        ),
        ("buildsets", "external_idstring=&external_idstring=null"),
        (
            "buildsets",
            "external_idstring__gt=&order=-external_idstring",
        ),
        ("changes", "category=None&order=-when_timestamp&limit=7"),
        ("changes", "revision=&author__contains=%&order=author"),
        (
            "changes",
            "committer__ne=taskotron&order=-committer&order=changeid",
        ),
        ("steps", "hidden=1&started_at=null"),
        ("steps", "order=-buildid&limit=9&locks_acquired_at__ge=1005"),
        ("logs", "complete=on&type=t&order=-num_lines"),
    ];
    for (name, qs) in cases {
        let (_, entity, fetch) = ep(name);
        let memory = compare(qs, entity, fetch).unwrap() == Some(false);
        assert!(!memory, "{name}?{qs} fell back to memory");
    }
    // Long query strings: one key repeated thousands of times is one IN list; more filters
    // than SQLite's expression depth allows go to memory. Same replies either way.
    let (_, entity, fetch) = ep("builds");
    let many: Vec<String> = (0..2000).map(|i| format!("buildid={i}")).collect();
    let qs = format!("{}&order=-buildid&limit=5", many.join("&"));
    assert_eq!(compare(&qs, entity, fetch).unwrap(), Some(true));
    let many: Vec<String> = (0..300).map(|i| format!("buildid__ne={i}")).collect();
    assert_eq!(
        compare(&many.join("&"), entity, fetch).unwrap(),
        Some(false)
    );
    // Fields SQL cannot compare like the API stay in memory, with the same reply.
    for (name, qs) in [
        ("builds", "order=-properties&limit=2"),
        ("changes", "files__contains=a.spec"),
        ("buildsets", "order=-sourcestamps&limit=3"),
    ] {
        let (_, entity, fetch) = ep(name);
        assert_eq!(
            compare(qs, entity, fetch).unwrap(),
            Some(false),
            "{name}?{qs}"
        );
    }
}

/// Both paths answer Buildbot's 400s for fields the resource does not have, with its texts,
/// on every SQL listing.
#[test]
fn unknown_fields_are_the_same_400_on_both_paths() {
    let (_dir, db) = small_db();
    for (name, entity, fetch) in endpoints(&db) {
        let json = entity.fields.iter().find(|f| matches!(f.col, Col::Json));
        let mut cases = vec![
            (
                "nosuchfield=1".to_string(),
                "unrecognized query parameter 'nosuchfield'".to_string(),
            ),
            (
                "nosuchfield__eq=1".into(),
                "unrecognized query parameter 'nosuchfield__eq'".into(),
            ),
            ("order=nosuch".into(), "no such field 'nosuch'".into()),
            (
                "order=-nosuch&limit=1".into(),
                "no such field 'nosuch'".into(),
            ),
            ("field=nosuch".into(), "no such field 'nosuch'".into()),
        ];
        let first = entity.fields[0].name;
        let second = entity.fields[1].name;
        cases.push((
            format!("{first}__like=1"),
            format!(
                "unrecognized query parameter '{first}__like' (no operator 'like'; expected one \
                 of eq, ne, lt, le, gt, ge, contains, in, notin)"
            ),
        ));
        cases.push((
            format!("field={first}&order={second}"),
            "cannot order on un-selected fields".into(),
        ));
        if let Some(j) = json {
            let j = j.name;
            cases.push((format!("{j}=1"), format!("invalid filter value for {j}")));
        }
        for (qs, want) in cases {
            let q = Query::parse(Some(&qs));
            let fetch = fetch(&q);
            assert_eq!(plan(&q, entity).unwrap_err(), want, "{name}?{qs}");
            let memory = q.apply(entity, fetch(&Page::default()).unwrap().0);
            assert_eq!(memory.unwrap_err(), want, "{name}?{qs}");
        }
    }
}

/// The whitelist must list exactly the fields of the rows (a field missing from it would
/// match nothing in SQL but something in memory).
#[test]
fn whitelist_lists_every_field_of_the_rows() {
    let (_dir, db) = small_db();
    for (name, entity, fetch) in endpoints(&db) {
        let q = Query::parse(Some("property=*"));
        let rows = fetch(&q)(&Page::default()).unwrap().0;
        let mut keys: Vec<&str> = rows[0]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut fields: Vec<&str> = entity.fields.iter().map(|f| f.name).collect();
        keys.sort();
        fields.sort();
        assert_eq!(keys, fields, "{name}");
    }
}

/// The same for the resources answered in memory that read.rs builds (masters, force
/// schedulers and log chunks are built by their handlers; tests/master_bad_input.rs checks
/// every field of every resource's rows against a running master).
#[test]
fn memory_resources_list_every_field_of_their_rows() {
    let (_dir, db) = small_db();
    let keys = |rows: Vec<serde_json::Value>| -> Vec<String> {
        let mut k: Vec<String> = rows[0].as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let names = |e: &Entity| -> Vec<String> {
        let mut n: Vec<String> = e.fields.iter().map(|f| f.name.to_string()).collect();
        n.sort();
        n
    };
    let builders = db.builders_json(&Filter::default()).unwrap();
    assert_eq!(keys(builders), names(&catalog::BUILDERS));
    let workers = db.workers_json(&Filter::default(), &|_| vec![1]).unwrap();
    assert_eq!(keys(workers), names(&catalog::WORKERS));
}

/// The common REST queries are answered from an index or in rowid order: no full scan plus
/// sort (`USE TEMP B-TREE`) and no scan where a filter could search.
#[test]
fn common_listings_use_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("m.sqlite")).unwrap();
    let explain = |entity: &Entity, filter: Filter, qs: &str| -> (String, String) {
        let Ok(Plan::Sql(page)) = plan(&Query::parse(Some(qs)), entity) else {
            panic!("{qs}: not an SQL plan");
        };
        db.explain_listing(entity, &filter, &page).unwrap()
    };
    let b = &catalog::BUILDS;
    let r = &catalog::BUILDREQUESTS;
    let none = Filter::default;
    // Newest first: walk the primary key backwards and stop after the page.
    for (e, qs) in [
        (b, "order=-buildid&limit=10"),
        (r, "order=-buildrequestid&limit=10"),
    ] {
        let (rows, _) = explain(e, none(), qs);
        assert!(!rows.contains("TEMP B-TREE"), "{qs}: {rows}");
    }
    let searched: &[(&Entity, Filter, &str, &str)] = &[
        (b, none(), "builderid=1&limit=50", "builds_builder"),
        (
            b,
            none(),
            "builderid=1&order=-buildid&limit=50",
            "builds_builder",
        ),
        (
            b,
            Filter::by("builderid", 1),
            "order=-buildid&limit=10",
            "builds_builder",
        ),
        (b, none(), "buildrequestid=5", "builds_request"),
        (
            b,
            none(),
            "workerid=2&order=-buildid&limit=10",
            "builds_worker",
        ),
        (
            b,
            none(),
            "results=2&order=-buildid&limit=10",
            "builds_results",
        ),
        (
            b,
            none(),
            "complete=false&order=-buildid&limit=10",
            "builds_running_by_id",
        ),
        (r, none(), "complete=false", "buildrequests_complete"),
        (
            r,
            none(),
            "complete=true&order=-buildrequestid&limit=10",
            "buildrequests_complete",
        ),
        (
            r,
            none(),
            "builderid=2&order=-buildrequestid&limit=10",
            "buildrequests_builder",
        ),
        (
            r,
            Filter::by("builderid", 2),
            "limit=10",
            "buildrequests_builder",
        ),
    ];
    for (e, filter, qs, index) in searched {
        let (rows, count) = explain(e, filter.clone(), qs);
        assert!(rows.contains(index), "{qs}: {rows}");
        assert!(!rows.contains("TEMP B-TREE"), "{qs}: {rows}");
        assert!(count.contains(index), "{qs} count: {count}");
    }
}

/// Median wall time of `f` over `runs` runs.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

/// `cargo test --release -p taskotron-master rest_listing_100k -- --ignored --nocapture`:
/// listings with 100,000 builds, the old path (every row as JSON, then `Query::apply`,
/// then the reply body) against the SQL path (the handler's `listing`). Prints, asserts only
/// that both replies are the same bytes.
#[test]
#[ignore]
fn rest_listing_100k_builds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sqlite");
    let db = Db::open(&path).unwrap();
    let t = Instant::now();
    fill(&path, 100_000, 300, false, 1);
    println!("filled 100,000 requests/builds in {:?}", t.elapsed());
    let body = |r: axum::response::Response| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(axum::body::to_bytes(r.into_body(), usize::MAX))
            .unwrap()
    };
    let cases: [(&str, &str, &Entity); 5] = [
        ("builds", "limit=10&order=-buildid", &catalog::BUILDS),
        ("builds", "builderid=1&limit=50", &catalog::BUILDS),
        ("buildrequests", "complete=false", &catalog::BUILDREQUESTS),
        (
            "buildrequests",
            "complete=true&order=-buildrequestid&limit=10",
            &catalog::BUILDREQUESTS,
        ),
        (
            "buildrequests",
            "complete=false&limit=10",
            &catalog::BUILDREQUESTS,
        ),
    ];
    for (plural, qs, entity) in cases {
        let q = Query::parse(Some(qs));
        let fetch = |p: &Page| {
            if plural == "builds" {
                db.builds_page(&Filter::default(), false, p)
            } else {
                db.buildrequests_page(&Filter::default(), p)
            }
        };
        let old = || collection(plural, &q, entity, fetch(&Page::default()).unwrap().0);
        let new = || listing(plural, &q, entity, fetch);
        let (old_body, new_body) = (body(old()), body(new()));
        assert_eq!(old_body, new_body, "{plural}?{qs}");
        let before = median(7, || drop(body(old())));
        let after = median(51, || drop(body(new())));
        println!(
            "GET /api/v2/{plural}?{qs}: before {:.1} ms, after {:.3} ms ({} bytes)",
            before.as_secs_f64() * 1e3,
            after.as_secs_f64() * 1e3,
            new_body.len()
        );
    }
}

/// `cargo test --release -p taskotron-master index_write_cost -- --ignored --nocapture`: what
/// migration 5's indexes cost the scheduler's writes (submit, start, finish one job, each its own
/// transaction as in the master) on top of 100,000 finished jobs, with and without them. The
/// scheduler's `complete_buildset` (write.rs) scans every build request (no index on
/// `buildsetid`) and that scan hides everything else, so each case also runs with such an
/// index created here, not in the schema.
#[test]
#[ignore]
fn index_write_cost() {
    use crate::db::{ChangeFields, NewRequest};
    for (buildset_index, rest_indexes) in
        [(false, false), (false, true), (true, false), (true, true)]
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        let db = Db::open(&path).unwrap();
        fill(&path, 100_000, 0, false, 1);
        let c = Connection::open(&path).unwrap();
        if buildset_index {
            c.execute_batch("CREATE INDEX bench_buildset ON buildrequests(buildsetid)")
                .unwrap();
        }
        if !rest_indexes {
            for i in [
                "builds_builder",
                "builds_worker",
                "builds_results",
                "builds_running_by_id",
                "buildrequests_builder",
                "buildrequests_complete",
            ] {
                c.execute_batch(&format!("DROP INDEX {i}")).unwrap();
            }
        }
        let worker = db.ensure_worker("w1").unwrap();
        let jobs = 2000;
        let t = Instant::now();
        for i in 0..jobs {
            let s = db
                .submit(&NewRequest {
                    builder: "x86_64".into(),
                    priority: 0,
                    reason: "bench".into(),
                    change: Some(ChangeFields {
                        project: "rpmcheck".into(),
                        when_timestamp: 1,
                        ..Default::default()
                    }),
                    properties: Default::default(),
                    uuid: format!("bench-{i}"),
                    taskname: "rpmlint".into(),
                    item: format!("pkg-{i}"),
                    item_type: "koji_build".into(),
                    arch: "x86_64".into(),
                    task_key: "rpmlint".into(),
                    sha: "0".repeat(40),
                    collapse: false,
                })
                .unwrap();
            let b = db
                .start_build(s.brid, worker, &Default::default())
                .unwrap()
                .unwrap();
            db.finish_build(b, 0, "build successful").unwrap();
        }
        println!(
            "buildsetid index {buildset_index}, migration 5 indexes {rest_indexes}: {:.0} µs per job \
             (submit + start + finish)",
            t.elapsed().as_secs_f64() * 1e6 / jobs as f64
        );
    }
}
