fn main() {
    // SIGPIPE stays ignored (Rust's default): network writes to a peer that went away must
    // fail with an error we report, not kill the process silently. A closed stdout
    // (`plakar ls | head`) ends the run quietly instead of printing a panic.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info.payload().downcast_ref::<String>().map(String::as_str).unwrap_or_default();
        if msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default_hook(info);
    }));
    #[cfg(target_env = "gnu")]
    unsafe {
        // Packfile buffers are large and short-lived. Under glibc's dynamic mmap threshold
        // they end up in arenas that are never given back, which doubled peak RSS in the
        // benchmark. A fixed mmap threshold returns them to the system when freed; a high
        // trim threshold keeps the heap from shrinking and regrowing on every file.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        // One arena per core and one for the main thread, not eight a core: each
        // thread's arena kept its own free memory, 25 MiB of a million-file backup's peak
        // (docs/PERFORMANCE.md, "Memory"). With one a core only, the main thread held one
        // and two workers on 2 cores shared the other, waiting on its lock: a restore of a
        // million small files took 10.6 s instead of 9.2 (backups took as long).
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        libc::mallopt(libc::M_ARENA_MAX, (cores + 1).clamp(1, 9) as i32);
    }
    let code = plakar::cli::run(std::env::args_os().skip(1).collect());
    std::process::exit(code);
}
