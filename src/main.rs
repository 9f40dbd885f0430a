use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    tune_allocator();
    let cli = gantry::cli::Cli::parse();
    match gantry::cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            gantry::errln!("{}{f}", f.kind.prefix());
            ExitCode::from(f.kind.code())
        }
    }
}

/// glibc raises its mmap threshold each time a large block is freed, after which the 64 KiB to
/// 400 KiB buffers an install streams through (HTTP reads, layer bodies) come from per-thread
/// arenas that keep the freed memory: peak memory then grows with the bytes moved. A fixed
/// threshold sends those buffers to mmap, which returns them on free.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}
