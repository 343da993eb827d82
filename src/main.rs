fn main() {
    let code = plakar::cli::run(std::env::args_os().skip(1).collect());
    std::process::exit(code);
}
