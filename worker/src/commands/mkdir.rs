//! `mkdir`: create each path with its parents; the first failure reports errno as `rc`.

use taskotron_common::protocol::{MkdirArgs, UpdateItem};

use super::Ctx;

pub async fn run(args: MkdirArgs, ctx: &mut Ctx) -> Result<(), String> {
    for dir in args.paths.to_vec() {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            ctx.os_error("mkdir", &e, &dir);
            return Ok(());
        }
    }
    ctx.out.item(UpdateItem::Rc(0));
    Ok(())
}
