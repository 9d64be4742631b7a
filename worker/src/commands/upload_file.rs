//! `upload_file`: send a worker file to the master in `blocksize` blocks, waiting for each
//! block's ack (flow control), then `update_upload_file_close` and, with `keepstamp`,
//! `update_upload_file_utime`. `maxsize` truncates with rc 1, as buildbot-worker does.

use std::io::Read;
use std::os::unix::fs::MetadataExt;

use taskotron_common::protocol::{Op, UpdateItem, UploadFileArgs};

use super::output::Stream;
use super::Ctx;

/// Largest block we read at once, whatever the master asks (bounds memory).
pub const MAX_BLOCK: u64 = 4 * 1024 * 1024;

/// Reads up to `len` bytes (fewer only at EOF).
pub fn read_block(r: &mut impl Read, len: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len as usize);
    r.take(len).read_to_end(&mut buf)?;
    Ok(buf)
}

pub async fn run(args: UploadFileArgs, ctx: &mut Ctx) -> Result<(), String> {
    let path = ctx.basedir.join(&args.path);
    let shown = path.display().to_string();
    let id = ctx.out.command_id().to_string();
    let peer = ctx.out.peer().clone();
    let (mut stderr, mut rc) = (None, 0);
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => Some(f),
        Err(_) => {
            stderr = Some(format!("Cannot open file '{shown}' for upload"));
            rc = 1;
            None
        }
    };
    let stamps = file.as_ref().and_then(|f| f.metadata().ok()).map(|m| {
        (
            m.atime() as f64 + m.atime_nsec() as f64 / 1e9,
            m.mtime() as f64 + m.mtime_nsec() as f64 / 1e9,
        )
    });
    ctx.out.header(&format!("sending {shown}\n"));
    // Send the header before the data, as buildbot-worker's status goes out first.
    ctx.out.flush();
    let blocksize = args.blocksize.clamp(1, MAX_BLOCK);
    let mut remaining = args.maxsize;
    let mut failure = None;
    if let Some(f) = file.as_mut() {
        loop {
            if ctx.interrupted() {
                stderr.get_or_insert_with(|| "upload interrupted".to_string());
                rc = 1;
                break;
            }
            let len = remaining.map_or(blocksize, |r| r.min(blocksize));
            if len == 0 {
                stderr.get_or_insert_with(|| {
                    format!("Maximum filesize reached, truncating file '{shown}'")
                });
                rc = 1;
                break;
            }
            let data = match read_block(f, len) {
                Ok(d) => d,
                Err(e) => {
                    failure = Some(format!("reading {shown}: {e}"));
                    break;
                }
            };
            if data.is_empty() {
                break;
            }
            remaining = remaining.map(|r| r.saturating_sub(data.len() as u64));
            if let Err(e) = peer
                .request(Op::UploadFileWrite {
                    command_id: id.clone(),
                    data,
                })
                .await
            {
                failure = Some(format!("RemoteWorkerError: {e}"));
                break;
            }
        }
    }
    let close = peer
        .request(Op::UploadFileClose {
            command_id: id.clone(),
        })
        .await;
    if failure.is_none() {
        if let Err(e) = close {
            failure = Some(format!("RemoteWorkerError: {e}"));
        } else if let (true, Some((atime, mtime))) = (args.keepstamp, stamps) {
            let utime = Op::UploadFileUtime {
                command_id: id.clone(),
                access_time: atime,
                modified_time: mtime,
            };
            if let Err(e) = peer.request(utime).await {
                failure = Some(format!("RemoteWorkerError: {e}"));
            }
        }
    }
    if let Some(s) = stderr {
        ctx.out.text(Stream::Stderr, &format!("{s}\n"));
    }
    ctx.out.item(UpdateItem::Rc(rc));
    failure.map_or(Ok(()), Err)
}
