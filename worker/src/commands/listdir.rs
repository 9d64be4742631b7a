//! `listdir`: entry names of a directory (update key `files`).

use taskotron_common::protocol::{PathArgs, UpdateItem};

use super::Ctx;

pub async fn run(args: PathArgs, ctx: &mut Ctx) -> Result<(), String> {
    let entries = std::fs::read_dir(&args.path).and_then(|rd| {
        rd.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<Vec<_>, _>>()
    });
    match entries {
        Ok(files) => {
            ctx.out.item(UpdateItem::Files(files));
            ctx.out.item(UpdateItem::Rc(0));
        }
        Err(e) => ctx.os_error("listdir", &e, &args.path),
    }
    Ok(())
}
