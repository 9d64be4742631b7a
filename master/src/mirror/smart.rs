//! git's smart HTTP protocol, fetch side only (`git-upload-pack`, protocol v0 in stateless-RPC
//! form), so both the git CLI and libgit2 clients (which cannot speak the dumb protocol) can
//! clone and fetch our mirrors efficiently. Pushing (`git-receive-pack`) is refused.
//!
//! Capabilities are kept small: `multi_ack_detailed` (the client learns which of its commits
//! we have, so a fetch only carries new objects), `ofs-delta`, `symref` and `agent`. No
//! side-band: the pack follows the final ACK/NAK line as raw bytes.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;

use git2::{ObjectType, Oid, Repository};

/// Largest request body accepted (wants/haves; gzip-decoded).
pub const MAX_REQUEST: u64 = 16 << 20;

fn pkt(out: &mut Vec<u8>, line: &str) {
    out.extend_from_slice(format!("{:04x}", line.len() + 4).as_bytes());
    out.extend_from_slice(line.as_bytes());
}

const FLUSH: &[u8] = b"0000";

/// Body of `GET info/refs?service=git-upload-pack`.
pub fn advertise(dir: &Path) -> Result<Vec<u8>, git2::Error> {
    let repo = Repository::open_bare(dir)?;
    let refs = super::repo::local_refs(&repo)?;
    let mut caps = String::from("multi_ack_detailed ofs-delta");
    let head = repo.find_reference("HEAD").ok();
    let head_target = head
        .as_ref()
        .and_then(|h| h.symbolic_target().map(str::to_string));
    if let Some(t) = &head_target {
        let _ = write!(caps, " symref=HEAD:{t}");
    }
    caps.push_str(concat!(
        " agent=taskotron-master/",
        env!("CARGO_PKG_VERSION")
    ));

    let mut lines: Vec<(Oid, String)> = Vec::new();
    if let Some(t) = &head_target {
        if let Some((_, oid)) = refs.iter().find(|(n, _)| n == t) {
            lines.push((*oid, "HEAD".into()));
        }
    }
    for (name, oid) in &refs {
        lines.push((*oid, name.clone()));
        if let Ok(tag) = repo.find_tag(*oid) {
            if let Ok(peeled) = tag.target().and_then(|t| t.peel(ObjectType::Any)) {
                lines.push((peeled.id(), format!("{name}^{{}}")));
            }
        }
    }
    let mut out = Vec::new();
    pkt(&mut out, "# service=git-upload-pack\n");
    out.extend_from_slice(FLUSH);
    if lines.is_empty() {
        pkt(
            &mut out,
            &format!("{} capabilities^{{}}\0{caps}\n", Oid::zero()),
        );
    }
    for (i, (oid, name)) in lines.iter().enumerate() {
        if i == 0 {
            pkt(&mut out, &format!("{oid} {name}\0{caps}\n"));
        } else {
            pkt(&mut out, &format!("{oid} {name}\n"));
        }
    }
    out.extend_from_slice(FLUSH);
    Ok(out)
}

/// A parsed upload-pack request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub wants: Vec<Oid>,
    pub haves: Vec<Oid>,
    pub done: bool,
}

/// Decodes the (possibly gzip-encoded) pkt-line request body.
pub fn parse_request(body: &[u8], gzip: bool) -> Result<Request, String> {
    let mut raw = Vec::new();
    let data: &[u8] = if gzip {
        flate2::read::GzDecoder::new(body)
            .take(MAX_REQUEST + 1)
            .read_to_end(&mut raw)
            .map_err(|e| format!("bad gzip body: {e}"))?;
        if raw.len() as u64 > MAX_REQUEST {
            return Err("request too large".into());
        }
        &raw
    } else {
        body
    };
    let mut req = Request::default();
    let mut i = 0;
    while i + 4 <= data.len() {
        let len = std::str::from_utf8(&data[i..i + 4])
            .ok()
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or("bad pkt-line length")?;
        if len < 4 {
            i += 4; // flush / delimiter
            continue;
        }
        let line = data.get(i + 4..i + len).ok_or("truncated pkt-line")?;
        i += len;
        let line = std::str::from_utf8(line)
            .map_err(|_| "pkt-line is not UTF-8")?
            .trim_end_matches('\n');
        let oid = |s: &str| {
            let hex = s.split(' ').next().unwrap_or("");
            Oid::from_str(hex).map_err(|_| format!("bad object id in {line:?}"))
        };
        if let Some(rest) = line.strip_prefix("want ") {
            req.wants.push(oid(rest)?);
        } else if let Some(rest) = line.strip_prefix("have ") {
            req.haves.push(oid(rest)?);
        } else if line == "done" {
            req.done = true;
        } else {
            return Err(format!(
                "unsupported request line {line:?} (shallow/filter are not offered)"
            ));
        }
    }
    if i != data.len() {
        return Err("trailing bytes after the last pkt-line".into());
    }
    if req.wants.is_empty() {
        return Err("no want lines".into());
    }
    Ok(req)
}

/// The response body to one stateless upload-pack request.
pub fn respond(dir: &Path, req: &Request) -> Result<Vec<u8>, String> {
    let repo = Repository::open_bare(dir).map_err(|e| e.to_string())?;
    let odb = repo.odb().map_err(|e| e.to_string())?;
    for w in &req.wants {
        if !odb.exists(*w) {
            return Err(format!("not our ref {w}"));
        }
    }
    // Haves we also have are the common base; unknown ones are ignored.
    let common: Vec<Oid> = req
        .haves
        .iter()
        .copied()
        .filter(|h| repo.find_commit(*h).is_ok())
        .collect();
    let mut out = Vec::new();
    if !req.done {
        for c in &common {
            pkt(&mut out, &format!("ACK {c} common\n"));
        }
        pkt(&mut out, "NAK\n");
        return Ok(out);
    }
    match common.last() {
        Some(c) => pkt(&mut out, &format!("ACK {c}\n")),
        None => pkt(&mut out, "NAK\n"),
    }
    out.extend_from_slice(&build_pack(&repo, &req.wants, &common).map_err(|e| e.to_string())?);
    Ok(out)
}

/// A pack with everything reachable from `wants` and not from `common`.
fn build_pack(repo: &Repository, wants: &[Oid], common: &[Oid]) -> Result<Vec<u8>, git2::Error> {
    let mut pb = repo.packbuilder()?;
    let mut walk = repo.revwalk()?;
    let mut extra: HashSet<Oid> = HashSet::new();
    for w in wants {
        let obj = repo.find_object(*w, None)?;
        // Annotated tags: send the tag object(s) and walk from the commit they name.
        let mut cur = obj;
        while cur.kind() == Some(ObjectType::Tag) {
            extra.insert(cur.id());
            let tag = cur
                .as_tag()
                .ok_or_else(|| git2::Error::from_str("bad tag"))?;
            cur = tag.target()?;
        }
        match cur.kind() {
            Some(ObjectType::Commit) => walk.push(cur.id())?,
            Some(ObjectType::Tree) => pb.insert_tree(cur.id())?,
            _ => pb.insert_object(cur.id(), None)?,
        }
    }
    for c in common {
        walk.hide(*c)?;
    }
    pb.insert_walk(&mut walk)?;
    for t in extra {
        pb.insert_object(t, None)?;
    }
    let mut buf = git2::Buf::new();
    pb.write_buf(&mut buf)?;
    Ok(buf.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_git_request() {
        let mut body = Vec::new();
        let a = "1".repeat(40);
        let b = "2".repeat(40);
        pkt(
            &mut body,
            &format!("want {a} multi_ack_detailed ofs-delta agent=git/2.47\n"),
        );
        body.extend_from_slice(FLUSH);
        pkt(&mut body, &format!("have {b}\n"));
        pkt(&mut body, "done\n");
        let r = parse_request(&body, false).unwrap();
        assert_eq!(r.wants, vec![Oid::from_str(&a).unwrap()]);
        assert_eq!(r.haves, vec![Oid::from_str(&b).unwrap()]);
        assert!(r.done);
        assert!(parse_request(b"0000", false).is_err());
        assert!(parse_request(b"00zz", false).is_err());
        let mut shallow = Vec::new();
        pkt(&mut shallow, &format!("want {a}\n"));
        pkt(&mut shallow, "deepen 1\n");
        assert!(parse_request(&shallow, false)
            .unwrap_err()
            .contains("deepen"));
        // git gzips larger request bodies (Content-Encoding: gzip).
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &body).unwrap();
        assert_eq!(parse_request(&gz.finish().unwrap(), true).unwrap(), r);
    }
}
