fn main() {
    // Die quietly on a closed pipe (`plakar ls | head`), as Unix tools do, instead of
    // panicking inside println!.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let code = plakar::cli::run(std::env::args_os().skip(1).collect());
    std::process::exit(code);
}
