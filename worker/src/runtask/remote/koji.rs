//! A Koji hub client: the few XML-RPC calls the koji and bodhi directives need
//! (`getBuild`, `listRPMs`, `listTagged`, `getRPMChecksums`, `system.multicall`), each retried on
//! transient failures, plus the typed records they return.

use std::collections::BTreeMap;

use super::download::{Algo, Checksum};
use super::http::{self, RemoteError, Settings};
use super::xmlrpc::{self, Fault, Value};

/// A Koji build (the fields of `getBuild` / `listTagged` entries we use).
#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    pub id: i64,
    pub package_name: String,
    pub version: String,
    pub release: String,
    pub nvr: String,
}

/// An RPM of a build (a `listRPMs` entry).
#[derive(Debug, Clone, PartialEq)]
pub struct Rpm {
    pub id: i64,
    pub name: String,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub size: Option<u64>,
}

impl Rpm {
    /// `name-version-release.arch.rpm`
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-{}.{}.rpm",
            self.name, self.version, self.release, self.arch
        )
    }

    /// Where Koji's package layout serves the (unsigned) RPM:
    /// `<pkg_url>/<package>/<version>/<release>/<arch>/<file>`.
    pub fn url(&self, pkg_url: &str, build: &Build) -> String {
        format!(
            "{}/{}/{}/{}/{}/{}",
            pkg_url.trim_end_matches('/'),
            build.package_name,
            build.version,
            build.release,
            self.arch,
            self.file_name()
        )
    }

    /// debuginfo / debugsource packages, skipped unless asked for.
    pub fn is_debuginfo(&self) -> bool {
        self.name.ends_with("-debuginfo")
            || self.name.ends_with("-debugsource")
            || self.name.contains("-debuginfo-")
    }
}

/// One call of a `system.multicall`: method, positional and keyword arguments.
pub type Call<'a> = (&'a str, Vec<Value>, Vec<(&'a str, Value)>);

/// A connection to one Koji hub.
#[derive(Clone)]
pub struct Hub {
    pub url: String,
    pub client: reqwest::Client,
    pub settings: Settings,
}

fn field_str(v: &Value, key: &str, what: &str) -> Result<String, RemoteError> {
    match v.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Int(i)) => Ok(i.to_string()),
        _ => Err(RemoteError::Protocol {
            url: what.to_string(),
            message: format!("answer lacks string field '{key}'"),
        }),
    }
}

fn field_int(v: &Value, key: &str, what: &str) -> Result<i64, RemoteError> {
    v.get(key)
        .and_then(Value::as_i64)
        .ok_or_else(|| RemoteError::Protocol {
            url: what.to_string(),
            message: format!("answer lacks integer field '{key}'"),
        })
}

impl Build {
    /// From a `getBuild` or `listTagged` struct (the latter names the id `build_id`).
    pub fn from_value(v: &Value, what: &str) -> Result<Build, RemoteError> {
        let id = field_int(v, "id", what).or_else(|_| field_int(v, "build_id", what))?;
        let package_name =
            field_str(v, "package_name", what).or_else(|_| field_str(v, "name", what))?;
        Ok(Build {
            id,
            package_name,
            version: field_str(v, "version", what)?,
            release: field_str(v, "release", what)?,
            nvr: field_str(v, "nvr", what)?,
        })
    }
}

impl Rpm {
    pub fn from_value(v: &Value, what: &str) -> Result<Rpm, RemoteError> {
        Ok(Rpm {
            id: field_int(v, "id", what)?,
            name: field_str(v, "name", what)?,
            version: field_str(v, "version", what)?,
            release: field_str(v, "release", what)?,
            arch: field_str(v, "arch", what)?,
            size: v
                .get("size")
                .and_then(Value::as_i64)
                .and_then(|s| u64::try_from(s).ok()),
        })
    }
}

fn list_of<T>(
    v: &Value,
    what: &str,
    f: impl Fn(&Value, &str) -> Result<T, RemoteError>,
) -> Result<Vec<T>, RemoteError> {
    let items = v.as_array().ok_or_else(|| RemoteError::Protocol {
        url: what.to_string(),
        message: "expected a list".into(),
    })?;
    items.iter().map(|i| f(i, what)).collect()
}

impl Hub {
    /// One XML-RPC call (retried on transient failures). A fault is returned as
    /// `RemoteError::Fault`.
    pub async fn call(
        &self,
        method: &str,
        args: &[Value],
        kwargs: &[(&str, Value)],
    ) -> Result<Value, RemoteError> {
        let body = xmlrpc::encode_call(method, args, kwargs);
        let what = format!("Koji hub {} ({method})", self.url);
        let raw = http::with_retries(&self.settings, &what, || async {
            let req = self
                .client
                .post(&self.url)
                .timeout(self.settings.timeout)
                .header("Content-Type", "text/xml")
                .body(body.clone());
            let bytes = http::read_body(&self.url, req, http::MAX_API_BODY).await?;
            let text = String::from_utf8(bytes).map_err(|_| RemoteError::Protocol {
                url: self.url.clone(),
                message: "response is not UTF-8".into(),
            })?;
            xmlrpc::decode_response(&text).map_err(|e| RemoteError::Protocol {
                url: self.url.clone(),
                message: e.to_string(),
            })
        })
        .await?;
        raw.map_err(|Fault { code, string }| RemoteError::Fault {
            method: method.to_string(),
            code,
            string,
        })
    }

    /// `system.multicall`: one round trip for many calls; one result (or fault) per call.
    pub async fn multicall(
        &self,
        calls: &[Call<'_>],
    ) -> Result<Vec<Result<Value, Fault>>, RemoteError> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<Value> = calls
            .iter()
            .map(|(method, args, kwargs)| {
                let mut params = args.clone();
                if !kwargs.is_empty() {
                    let mut m: BTreeMap<String, Value> = kwargs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.clone()))
                        .collect();
                    m.insert("__starstar".into(), Value::Bool(true));
                    params.push(Value::Struct(m));
                }
                Value::Struct(BTreeMap::from([
                    ("methodName".to_string(), Value::from(*method)),
                    ("params".to_string(), Value::Array(params)),
                ]))
            })
            .collect();
        let answer = self
            .call("system.multicall", &[Value::Array(list)], &[])
            .await?;
        let items = answer.as_array().ok_or_else(|| RemoteError::Protocol {
            url: self.url.clone(),
            message: "system.multicall did not return a list".into(),
        })?;
        if items.len() != calls.len() {
            return Err(RemoteError::Protocol {
                url: self.url.clone(),
                message: format!(
                    "system.multicall returned {} results for {} calls",
                    items.len(),
                    calls.len()
                ),
            });
        }
        Ok(items
            .iter()
            .map(|item| match item {
                Value::Array(one) if one.len() == 1 => Ok(one[0].clone()),
                other => Err(Fault {
                    code: other.get("faultCode").and_then(Value::as_i64).unwrap_or(0),
                    string: other
                        .get("faultString")
                        .and_then(Value::as_str)
                        .unwrap_or("malformed multicall entry")
                        .to_string(),
                }),
            })
            .collect())
    }

    /// `getBuild(nvr)`; an unknown build is `NotFound` naming the NVR.
    pub async fn get_build(&self, nvr: &str) -> Result<Build, RemoteError> {
        let v = self.call("getBuild", &[Value::from(nvr)], &[]).await?;
        if v.is_nil() {
            return Err(RemoteError::NotFound(format!(
                "No such build found in Koji: {nvr}"
            )));
        }
        Build::from_value(&v, "getBuild")
    }

    /// `listRPMs(buildID=…, arches=[…])`.
    pub async fn list_rpms(
        &self,
        build_id: i64,
        arches: &[String],
    ) -> Result<Vec<Rpm>, RemoteError> {
        let arches: Vec<Value> = arches.iter().map(|a| Value::from(a.as_str())).collect();
        let v = self
            .call(
                "listRPMs",
                &[],
                &[
                    ("buildID", Value::Int(build_id)),
                    ("arches", Value::Array(arches)),
                ],
            )
            .await?;
        list_of(&v, "listRPMs", Rpm::from_value)
    }

    /// `listRPMs` of many builds in one `system.multicall`; one list per build, in order.
    pub async fn list_rpms_many(
        &self,
        builds: &[Build],
        arches: &[String],
    ) -> Result<Vec<Vec<Rpm>>, RemoteError> {
        let arches = Value::Array(arches.iter().map(|a| Value::from(a.as_str())).collect());
        let calls: Vec<Call<'_>> = builds
            .iter()
            .map(|b| {
                (
                    "listRPMs",
                    Vec::new(),
                    vec![("buildID", Value::Int(b.id)), ("arches", arches.clone())],
                )
            })
            .collect();
        let answers = self.multicall(&calls).await?;
        builds
            .iter()
            .zip(answers)
            .map(|(b, a)| match a {
                Ok(v) => list_of(&v, "listRPMs", Rpm::from_value),
                Err(Fault { code, string }) => Err(RemoteError::Fault {
                    method: format!("listRPMs (build {})", b.nvr),
                    code,
                    string,
                }),
            })
            .collect()
    }

    /// `listTagged(tag, package=…, latest=…)`.
    pub async fn list_tagged(
        &self,
        tag: &str,
        package: Option<&str>,
        latest: bool,
    ) -> Result<Vec<Build>, RemoteError> {
        let mut kwargs = vec![("latest", Value::Bool(latest))];
        if let Some(p) = package {
            kwargs.push(("package", Value::from(p)));
        }
        let v = self
            .call("listTagged", &[Value::from(tag)], &kwargs)
            .await?;
        list_of(&v, "listTagged", Build::from_value)
    }

    /// Checksums of the unsigned copies of `rpm_ids` (`getRPMChecksums`, one multicall). Hubs
    /// without that call, or without a checksum for an RPM, give None: size checks still apply.
    pub async fn rpm_checksums(
        &self,
        rpm_ids: &[i64],
    ) -> Result<Vec<Option<Checksum>>, RemoteError> {
        let calls: Vec<_> = rpm_ids
            .iter()
            .map(|id| {
                (
                    "getRPMChecksums",
                    vec![Value::Int(*id)],
                    vec![(
                        "checksum_types",
                        Value::Array(vec![Value::from("sha256"), Value::from("md5")]),
                    )],
                )
            })
            .collect();
        let answers = self.multicall(&calls).await?;
        Ok(answers
            .iter()
            .map(|a| {
                let by_sigkey = a.as_ref().ok()?;
                let sums = by_sigkey.get("")?.as_struct()?;
                ["sha256", "md5"].iter().find_map(|algo| {
                    let hex = sums.get(*algo)?.as_str()?;
                    Some(Checksum {
                        algo: Algo::parse(algo)?,
                        hex: hex.to_ascii_lowercase(),
                    })
                })
            })
            .collect())
    }
}
