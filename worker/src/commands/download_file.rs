//! `download_file`: pull a file from the master with `update_read_file` (up to `blocksize` per
//! request; an empty answer is EOF), then `update_read_file_close`; apply `mode`.
//! Note: a stock Buildbot 4.3 master answers every read with null, so files arrive empty.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use taskotron_common::protocol::{DownloadFileArgs, Op, UpdateItem, Value};

use super::output::Stream;
use super::upload_file::MAX_BLOCK;
use super::Ctx;

pub async fn run(args: DownloadFileArgs, ctx: &mut Ctx) -> Result<(), String> {
    let path = ctx.basedir.join(&args.path);
    let shown = path.display().to_string();
    let id = ctx.out.command_id().to_string();
    let peer = ctx.out.peer().clone();
    let (mut stderr, mut rc, mut failure) = (None, 0, None);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let mut file = match std::fs::File::create(&path) {
        Ok(f) => Some(f),
        Err(_) => {
            stderr = Some(format!("Cannot open file '{shown}' for download"));
            rc = 1;
            None
        }
    };
    let blocksize = args.blocksize.clamp(1, MAX_BLOCK);
    let mut remaining = args.maxsize;
    if let Some(f) = file.as_mut() {
        loop {
            if ctx.interrupted() {
                stderr = Some("download interrupted".to_string());
                rc = 1;
                break;
            }
            let length = remaining.map_or(blocksize, |r| r.min(blocksize));
            if length == 0 {
                stderr = Some(format!(
                    "Maximum filesize reached, truncating file '{shown}'"
                ));
                rc = 1;
                break;
            }
            let data = match peer
                .request(Op::ReadFile {
                    command_id: id.clone(),
                    length,
                })
                .await
            {
                Ok(Value::Binary(b)) => b,
                Ok(Value::String(s)) => s.into_bytes(),
                Ok(_) => Vec::new(), // null (Buildbot 4.3) or anything else: EOF
                Err(e) => {
                    failure = Some(format!("RemoteWorkerError: {e}"));
                    break;
                }
            };
            if data.is_empty() {
                break;
            }
            let data = match remaining {
                Some(r) if (data.len() as u64) > r => data[..r as usize].to_vec(),
                _ => data,
            };
            remaining = remaining.map(|r| r.saturating_sub(data.len() as u64));
            if let Err(e) = f.write_all(&data) {
                failure = Some(format!("writing {shown}: {e}"));
                break;
            }
        }
    }
    let close = peer
        .request(Op::ReadFileClose {
            command_id: id.clone(),
        })
        .await;
    if failure.is_none() {
        if let Err(e) = close {
            failure = Some(format!("RemoteWorkerError: {e}"));
        }
    }
    drop(file);
    if let (Some(mode), 0) = (args.mode, rc) {
        if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)) {
            failure.get_or_insert_with(|| format!("chmod {shown}: {e}"));
        }
    }
    if let Some(s) = stderr {
        ctx.out.text(Stream::Stderr, &format!("{s}\n"));
    }
    ctx.out.item(UpdateItem::Rc(rc));
    failure.map_or(Ok(()), Err)
}
