//! The stand-in Koji hub's data and XML-RPC methods, written from Koji's public API
//! documentation (`getBuild`, `listRPMs`, `listBuildRPMs`, `listTagged`, `getRPMChecksums`,
//! `system.multicall`). Unknown builds answer `nil` (or a fault with `strict=True`), unknown
//! tags and methods answer real XML-RPC faults with Koji's GenericError code 1000.

use std::collections::BTreeMap;

use super::xmlrpc::X;

/// Koji's `GenericError` fault code.
pub const GENERIC_ERROR: i64 = 1000;

#[derive(Debug, Clone)]
pub struct BuildRec {
    pub id: i64,
    pub name: String,
    pub version: String,
    pub release: String,
    pub tags: Vec<String>,
}

impl BuildRec {
    pub fn nvr(&self) -> String {
        format!("{}-{}-{}", self.name, self.version, self.release)
    }
    fn to_x(&self) -> X {
        X::map(vec![
            ("id", X::Int(self.id)),
            ("build_id", X::Int(self.id)),
            ("package_id", X::Int(self.id * 10)),
            ("package_name", X::s(&self.name)),
            ("name", X::s(&self.name)),
            ("version", X::s(&self.version)),
            ("release", X::s(&self.release)),
            ("epoch", X::Nil),
            ("nvr", X::s(&self.nvr())),
            ("state", X::Int(1)),
            ("task_id", X::Int(self.id + 20_000_000)),
            ("owner_name", X::s("tester")),
            ("volume_name", X::s("DEFAULT")),
            ("creation_time", X::s("2017-11-02 10:11:12.000000")),
        ])
    }
}

#[derive(Debug, Clone)]
pub struct RpmRec {
    pub id: i64,
    pub build_id: i64,
    pub name: String,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub size: u64,
    pub sha256: String,
    pub md5: String,
}

impl RpmRec {
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-{}.{}.rpm",
            self.name, self.version, self.release, self.arch
        )
    }
    fn to_x(&self) -> X {
        X::map(vec![
            ("id", X::Int(self.id)),
            ("build_id", X::Int(self.build_id)),
            ("name", X::s(&self.name)),
            ("version", X::s(&self.version)),
            ("release", X::s(&self.release)),
            ("epoch", X::Nil),
            ("arch", X::s(&self.arch)),
            ("size", X::Int(self.size as i64)),
            ("payloadhash", X::s(&self.md5)),
            ("external_repo_id", X::Int(0)),
            ("external_repo_name", X::s("INTERNAL")),
            ("metadata_only", X::Bool(false)),
            ("extra", X::Nil),
        ])
    }
}

/// Everything the hub knows.
#[derive(Debug, Default)]
pub struct Hub {
    pub builds: Vec<BuildRec>,
    pub rpms: Vec<RpmRec>,
    /// Whether `getRPMChecksums` exists (older hubs lack it).
    pub checksums: bool,
    /// Tags that exist without any build in them (tags of builds exist anyway).
    pub empty_tags: Vec<String>,
}

pub type Answer = Result<X, (i64, String)>;

fn generic(msg: String) -> (i64, String) {
    (GENERIC_ERROR, msg)
}

/// Positional argument `i` or keyword `name`.
fn arg<'a>(args: &'a [X], kwargs: &'a BTreeMap<String, X>, i: usize, name: &str) -> Option<&'a X> {
    kwargs
        .get(name)
        .or_else(|| args.get(i))
        .filter(|v| **v != X::Nil)
}

impl Hub {
    fn build_by(&self, info: &X) -> Option<&BuildRec> {
        match info {
            X::Int(id) => self.builds.iter().find(|b| b.id == *id),
            X::Str(nvr) => self.builds.iter().find(|b| b.nvr() == *nvr),
            _ => None,
        }
    }

    pub fn call(&self, method: &str, args: &[X], kwargs: &BTreeMap<String, X>) -> Answer {
        match method {
            "getBuild" => {
                let info = arg(args, kwargs, 0, "buildInfo")
                    .ok_or_else(|| generic("getBuild() missing buildInfo".into()))?;
                let strict = arg(args, kwargs, 1, "strict") == Some(&X::Bool(true));
                match self.build_by(info) {
                    Some(b) => Ok(b.to_x()),
                    None if strict => Err(generic(format!("No such build: {info:?}"))),
                    None => Ok(X::Nil),
                }
            }
            "listRPMs" => {
                let build_id = arg(args, kwargs, 0, "buildID").and_then(X::int);
                let arches: Option<Vec<String>> = match arg(args, kwargs, 5, "arches") {
                    Some(X::Str(a)) => Some(vec![a.clone()]),
                    Some(X::Array(items)) => Some(
                        items
                            .iter()
                            .filter_map(|i| i.str().map(str::to_string))
                            .collect(),
                    ),
                    _ => None,
                };
                Ok(X::Array(
                    self.rpms
                        .iter()
                        .filter(|r| build_id.is_none_or(|id| r.build_id == id))
                        .filter(|r| arches.as_ref().is_none_or(|a| a.contains(&r.arch)))
                        .map(RpmRec::to_x)
                        .collect(),
                ))
            }
            "listBuildRPMs" => {
                let info = arg(args, kwargs, 0, "build")
                    .ok_or_else(|| generic("listBuildRPMs() missing build".into()))?;
                let b = self
                    .build_by(info)
                    .ok_or_else(|| generic(format!("No such build: {info:?}")))?;
                Ok(X::Array(
                    self.rpms
                        .iter()
                        .filter(|r| r.build_id == b.id)
                        .map(RpmRec::to_x)
                        .collect(),
                ))
            }
            "listTagged" => {
                let tag = arg(args, kwargs, 0, "tag")
                    .and_then(X::str)
                    .ok_or_else(|| generic("listTagged() missing tag".into()))?;
                let known = self.empty_tags.iter().any(|t| t == tag)
                    || self.builds.iter().any(|b| b.tags.iter().any(|t| t == tag));
                if !known {
                    return Err(generic(format!("No such tagInfo: '{tag}'")));
                }
                let package = arg(args, kwargs, 4, "package").and_then(X::str);
                let latest = arg(args, kwargs, 3, "latest") == Some(&X::Bool(true));
                let mut tagged: Vec<&BuildRec> = self
                    .builds
                    .iter()
                    .filter(|b| b.tags.iter().any(|t| t == tag))
                    .filter(|b| package.is_none_or(|p| b.name == p))
                    .collect();
                if latest {
                    // Newest tagging first, one per package (ids grow with time here).
                    tagged.sort_by_key(|b| -b.id);
                    let mut seen = Vec::new();
                    tagged.retain(|b| {
                        let new = !seen.contains(&b.name);
                        seen.push(b.name.clone());
                        new
                    });
                }
                Ok(X::Array(
                    tagged
                        .into_iter()
                        .map(|b| {
                            let mut x = b.to_x();
                            if let X::Struct(m) = &mut x {
                                m.insert("tag_name".into(), X::s(tag));
                            }
                            x
                        })
                        .collect(),
                ))
            }
            "getRPMChecksums" if self.checksums => {
                let id = arg(args, kwargs, 0, "rpm_id")
                    .and_then(X::int)
                    .ok_or_else(|| generic("getRPMChecksums() missing rpm_id".into()))?;
                let rpm = self
                    .rpms
                    .iter()
                    .find(|r| r.id == id)
                    .ok_or_else(|| generic(format!("No such rpm: {id}")))?;
                let types: Vec<String> = match arg(args, kwargs, 1, "checksum_types") {
                    Some(X::Array(t)) => t
                        .iter()
                        .filter_map(|x| x.str().map(str::to_string))
                        .collect(),
                    _ => vec!["md5".into(), "sha256".into()],
                };
                let mut sums = BTreeMap::new();
                for t in types {
                    match t.as_str() {
                        "sha256" => sums.insert(t, X::s(&rpm.sha256)),
                        "md5" => sums.insert(t, X::s(&rpm.md5)),
                        _ => return Err(generic(format!("Checksum_type {t} isn't supported"))),
                    };
                }
                Ok(X::Struct(BTreeMap::from([(
                    String::new(),
                    X::Struct(sums),
                )])))
            }
            _ => Err(generic(format!("Invalid method: {method}"))),
        }
    }

    /// `system.multicall`: `[result]` per success, a fault struct per failure.
    pub fn multicall(&self, calls: &X) -> Answer {
        let X::Array(calls) = calls else {
            return Err(generic("system.multicall expects a list".into()));
        };
        Ok(X::Array(
            calls
                .iter()
                .map(|c| {
                    let method = c.str_field("methodName").unwrap_or_default().to_string();
                    let mut params = match c {
                        X::Struct(m) => match m.get("params") {
                            Some(X::Array(p)) => p.clone(),
                            _ => Vec::new(),
                        },
                        _ => Vec::new(),
                    };
                    let kwargs = super::xmlrpc::split_kwargs(&mut params);
                    match self.call(&method, &params, &kwargs) {
                        Ok(v) => X::Array(vec![v]),
                        Err((code, s)) => {
                            X::map(vec![("faultCode", X::Int(code)), ("faultString", X::s(&s))])
                        }
                    }
                })
                .collect(),
        ))
    }
}

impl X {
    fn str_field(&self, key: &str) -> Option<&str> {
        match self {
            X::Struct(m) => m.get(key).and_then(X::str),
            _ => None,
        }
    }
}
