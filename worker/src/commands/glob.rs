//! `glob`: absolute paths matching a pattern (update key `files`), with Python's `glob`
//! conventions: `*` does not match a leading dot, `**` matches across directories.

use taskotron_common::protocol::{GlobArgs, UpdateItem};

use super::Ctx;

pub async fn run(args: GlobArgs, ctx: &mut Ctx) -> Result<(), String> {
    let opts = ::glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    match ::glob::glob_with(&args.path, opts) {
        Ok(paths) => {
            let files = paths
                .filter_map(Result::ok)
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            ctx.out.item(UpdateItem::Files(files));
            ctx.out.item(UpdateItem::Rc(0));
        }
        Err(e) => {
            ctx.out
                .header(&format!("glob: invalid pattern: {}: {e}\n", args.path));
            ctx.out.item(UpdateItem::Rc(1));
        }
    }
    Ok(())
}
