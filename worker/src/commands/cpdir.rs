//! `cpdir`: `cp -R -P -p -v FROM TO` (run from the worker basedir), creating TO's parent first.

use std::path::Path;

use taskotron_common::protocol::{CpdirArgs, UpdateItem};

use super::process;
use super::rmdir::fs_process;
use super::Ctx;

pub async fn run(args: CpdirArgs, ctx: &mut Ctx) -> Result<(), String> {
    if let Some(parent) = Path::new(&args.to_path).parent() {
        if let Err(e) = std::fs::create_dir_all(parent) {
            ctx.os_error("cpdir", &e, &parent.display().to_string());
            return Ok(());
        }
    }
    let argv = ["cp", "-R", "-P", "-p", "-v", &args.from_path, &args.to_path]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let spec = fs_process(ctx, argv, args.log_environ, args.timeout, args.max_time);
    let rc = process::run(spec, ctx).await?;
    ctx.out.item(UpdateItem::Rc(rc));
    Ok(())
}
