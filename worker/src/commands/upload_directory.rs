//! `upload_directory`: pack a worker directory as a tar stream (plain, gz or bz2), send it in
//! `blocksize` blocks with `update_upload_directory_write`, then `..._unpack`.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use taskotron_common::protocol::{Op, UpdateItem, UploadDirectoryArgs};

use super::output::Stream;
use super::upload_file::{read_block, MAX_BLOCK};
use super::Ctx;

/// Writes `dir` as a tar archive (entries `./...`, symlinks kept) into `out`.
pub fn pack(dir: &Path, compress: Option<&str>, out: &mut std::fs::File) -> std::io::Result<()> {
    fn tar_into<W: Write>(dir: &Path, w: W) -> std::io::Result<W> {
        let mut b = tar::Builder::new(w);
        b.follow_symlinks(false);
        b.append_dir_all(".", dir)?;
        b.into_inner()
    }
    match compress {
        None => {
            tar_into(dir, &mut *out)?;
        }
        Some("gz") => {
            let gz = flate2::write::GzEncoder::new(&mut *out, flate2::Compression::default());
            tar_into(dir, gz)?.finish()?;
        }
        Some("bz2") => {
            let bz = bzip2::write::BzEncoder::new(&mut *out, bzip2::Compression::default());
            tar_into(dir, bz)?.finish()?;
        }
        Some(other) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("unsupported compression {other:?} (expected null, \"gz\" or \"bz2\")"),
            ))
        }
    }
    out.flush()
}

pub async fn run(args: UploadDirectoryArgs, ctx: &mut Ctx) -> Result<(), String> {
    let dir = ctx.basedir.join(&args.path);
    let shown = dir.display().to_string();
    let id = ctx.out.command_id().to_string();
    let peer = ctx.out.peer().clone();
    ctx.out.header(&format!("sending {shown}\n"));
    ctx.out.flush();
    let packed = {
        let dir = dir.clone();
        let compress = args.compress.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            if !dir.is_dir() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not a directory",
                ));
            }
            let mut f = tempfile::tempfile()?;
            pack(&dir, compress.as_deref(), &mut f)?;
            f.seek(SeekFrom::Start(0))?;
            Ok(f)
        })
        .await
        .map_err(|e| format!("packing {shown}: {e}"))?
    };
    let mut tarfile = match packed {
        Ok(f) => f,
        Err(e) => {
            ctx.out.text(
                Stream::Stderr,
                &format!("Cannot read directory '{shown}' for upload: {e}\n"),
            );
            ctx.out.item(UpdateItem::Rc(1));
            return Ok(());
        }
    };
    let blocksize = args.blocksize.clamp(1, MAX_BLOCK);
    let (mut remaining, mut rc, mut stderr, mut failure) = (args.maxsize, 0, None, None);
    loop {
        if ctx.interrupted() {
            stderr = Some("upload interrupted".to_string());
            rc = 1;
            break;
        }
        let len = remaining.map_or(blocksize, |r| r.min(blocksize));
        if len == 0 {
            stderr = Some(format!(
                "Maximum filesize reached, truncating file '{shown}'"
            ));
            rc = 1;
            break;
        }
        let data =
            read_block(&mut tarfile, len).map_err(|e| format!("reading packed {shown}: {e}"))?;
        if data.is_empty() {
            break;
        }
        remaining = remaining.map(|r| r.saturating_sub(data.len() as u64));
        if let Err(e) = peer
            .request(Op::UploadDirectoryWrite {
                command_id: id.clone(),
                data,
            })
            .await
        {
            failure = Some(format!("RemoteWorkerError: {e}"));
            break;
        }
    }
    if failure.is_none() {
        if let Err(e) = peer
            .request(Op::UploadDirectoryUnpack {
                command_id: id.clone(),
            })
            .await
        {
            failure = Some(format!("RemoteWorkerError: {e}"));
        }
    }
    if let Some(s) = stderr {
        ctx.out.text(Stream::Stderr, &format!("{s}\n"));
    }
    ctx.out.item(UpdateItem::Rc(rc));
    failure.map_or(Ok(()), Err)
}
