//! Links the release binary's functions in the order of `link-order.txt`: those a
//! training run executed first, hottest first, and everything else after them.
//!
//! Why: the kernel maps a binary's pages around each one a process touches (fault-around,
//! 64 KiB), so the resident code is every page near any function that ever ran. Left in
//! the compiler's order, the few thousand functions an operator runs are spread over the
//! whole text, and nearly all of it is resident (7.2 of 8.2 MB at 1000 WebApps). Put
//! side by side, they take about 3 MB (docs/benchmarks.md, "The functions that run, side
//! by side"). The list names symbols; one the binary lacks (code or dependencies changed
//! since the training) is skipped, and `hack/release/link-order` makes the list again.
//!
//! Only for the release profile of x86_64 Linux, whose default linker is LLD (rustc 1.90
//! and later): `--symbol-ordering-file` is an LLD option (mold has it too; GNU ld does
//! not). A build that names its own linker (`linker` in cargo's config, or a linker flag
//! in its rustflags) is linked in the compiler's order, with a warning, rather than
//! failing on an option its linker may not know; `WEBAPP_LINK_ORDER=0` does the same
//! for any build, `WEBAPP_LINK_ORDER=1` passes the list whatever the linker.

use std::path::Path;

fn main() {
    const LIST: &str = "link-order.txt";
    println!("cargo::rerun-if-changed={LIST}");
    println!("cargo::rerun-if-env-changed=WEBAPP_LINK_ORDER");
    println!("cargo::rerun-if-env-changed=RUSTC_LINKER");
    let target = std::env::var("TARGET").unwrap_or_default();
    let profile = std::env::var("PROFILE").unwrap_or_default();
    let setting = std::env::var("WEBAPP_LINK_ORDER").unwrap_or_default();
    if target != "x86_64-unknown-linux-gnu" || profile != "release" || setting == "0" {
        return;
    }
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let own_linker =
        std::env::var_os("RUSTC_LINKER").is_some() || flags.contains("linker") || flags.contains("fuse-ld");
    if own_linker && setting != "1" {
        println!(
            "cargo::warning=a linker of this build's own: the release binary is linked in the compiler's order \
             (WEBAPP_LINK_ORDER=1 passes crates/operator/{LIST} to an LLD or mold)"
        );
        return;
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let list = Path::new(&dir).join(LIST);
    if !list.is_file() {
        println!("cargo::warning={} is missing: the release binary is linked in the compiler's order", list.display());
        return;
    }
    for arg in [format!("--symbol-ordering-file={}", list.display()), "--no-warn-symbol-ordering".to_owned()] {
        println!("cargo::rustc-link-arg-bin=webapp-operator=-Wl,{arg}");
    }
}
