//! `stat`: the 10-field `os.stat` tuple of a path (update key `stat`).

use std::os::unix::fs::MetadataExt;

use taskotron_common::protocol::{PathArgs, UpdateItem};

use super::Ctx;

pub async fn run(args: PathArgs, ctx: &mut Ctx) -> Result<(), String> {
    match std::fs::metadata(&args.path) {
        Ok(m) => {
            let fields = vec![
                i64::from(m.mode()),
                m.ino() as i64,
                m.dev() as i64,
                m.nlink() as i64,
                i64::from(m.uid()),
                i64::from(m.gid()),
                m.size() as i64,
                m.atime(),
                m.mtime(),
                m.ctime(),
            ];
            ctx.out.item(UpdateItem::Stat(fields));
            ctx.out.item(UpdateItem::Rc(0));
        }
        Err(e) => ctx.os_error("stat", &e, &args.path),
    }
    Ok(())
}
