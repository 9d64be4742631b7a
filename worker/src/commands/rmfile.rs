//! `rmfile`: remove one file.

use taskotron_common::protocol::{PathArgs, UpdateItem};

use super::Ctx;

pub async fn run(args: PathArgs, ctx: &mut Ctx) -> Result<(), String> {
    match std::fs::remove_file(&args.path) {
        Ok(()) => ctx.out.item(UpdateItem::Rc(0)),
        Err(e) => ctx.os_error("rmfile", &e, &args.path),
    }
    Ok(())
}
