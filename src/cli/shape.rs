//! The whole command line as one clap definition, for `plakar help`, `-h`, shell
//! completions and man pages: `plakar [GLOBAL FLAGS] at STORE COMMAND`, the global flags,
//! the commands and the config commands (`store|source|destination|policy`).
//!
//! Parsing does not go through it: global flags and `at STORE` are split off first, the way
//! Plakar reads them (`globals.rs`), and the config commands read their own words. It is
//! built from the same `Command` enum the parser uses, so a new command or flag appears in
//! help, completions and man pages without being written twice; only the global flags and
//! the config commands, which clap does not parse, are described here.

use clap::{Arg, ArgAction, Command, CommandFactory, ValueHint};

pub const SHAPE: &str = "plakar [GLOBAL FLAGS] at STORE COMMAND [FLAGS] [ARGS]";

/// Commands that work on no store: not offered after `at STORE`.
const STORELESS: &[&str] = &["version", "completion", "man", "ptar"];

const ABOUT: &str = "Plakar-compatible backups: deduplicated, compressed and encrypted snapshots in a store \
(a directory, S3, SFTP, SQLite, a .ptar file, or a plakar server).";

const LONG_ABOUT: &str = "Plakar-compatible backups: deduplicated, compressed and encrypted snapshots in a store \
(a directory, S3, SFTP, SQLite, a .ptar file, or a plakar server).

The command line is plakar [GLOBAL FLAGS] at STORE COMMAND [FLAGS] [ARGS]. Global flags come \
before `at`; STORE is a path, a URL (s3://, sftp://, sqlite://, ptar://, http(s):// for a \
plakar server), a file ending in \
.ptar, or @name from `plakar store add`. Without `at`, the store is $PLAKAR_REPOSITORY, then \
the configured default, then ~/.plakar. Flags take one or two dashes (-to or --to).";

const AFTER: &str = "Environment:
  PLAKAR_REPOSITORY   the store when no `at STORE` is given
  PLAKAR_PASSPHRASE   the store's passphrase (else -keyfile, the store's passphrase_cmd, or a prompt)
  PLAKAR_TAGS         tags of a backup given no -tag
  PLAKAR_SERVER_TOKEN the token `plakar server` asks for, and http(s):// stores send

Run `plakar help COMMAND` (or `plakar COMMAND -h`) for a command's flags.
Exit codes: 0 ok, 2 bad flags, 3 done with per-file errors, 64 usage, 65 damaged data,
66 no store, 67 no source, 69 unavailable (FUSE, deletes refused), 73 cannot create, 74 I/O,
75 locked, 77 passphrase or access, 78 version.";

fn global_args() -> Vec<Arg> {
    let value = |name: &'static str, v: &'static str, help: &'static str| {
        Arg::new(name).long(name).value_name(v).help(help).help_heading("Global flags (before `at`)")
    };
    let flag = |name: &'static str, help: &'static str| {
        Arg::new(name).long(name).action(ArgAction::SetTrue).help(help).help_heading("Global flags (before `at`)")
    };
    vec![
        value("keyfile", "FILE", "Read the passphrase from FILE").value_hint(ValueHint::FilePath),
        value("configdir", "DIR", "Configuration directory (default: ~/.config/plakar)").value_hint(ValueHint::DirPath),
        value("concurrency", "N", "Parallel workers (default: from the core count)"),
        value("cpu", "N", "Same as -concurrency"),
        flag("quiet", "Print nothing but errors and summaries"),
        flag("silent", "Print nothing but errors"),
        flag("json", "Print JSON (backup's summary, ls, info, prune, config show)"),
    ]
}

/// `plakar store|source|destination ...`, as `config.rs` reads it.
fn connector(noun: &'static str, about: &'static str) -> Command {
    let name = || Arg::new("NAME").required(true);
    let mut c = Command::new(noun)
        .about(about)
        .disable_help_subcommand(true)
        .subcommand(
            Command::new("add")
                .about(format!("Name a {noun}: add NAME LOCATION [KEY=VALUE...]"))
                .arg(name())
                .arg(Arg::new("LOCATION").required(true).value_hint(ValueHint::AnyPath))
                .arg(Arg::new("OPTIONS").num_args(0..).help("KEY=VALUE options of the connector")),
        )
        .subcommand(
            Command::new("set")
                .about(format!("Set options of a {noun}"))
                .arg(name())
                .arg(Arg::new("OPTIONS").num_args(1..).required(true).help("KEY=VALUE...")),
        )
        .subcommand(
            Command::new("unset")
                .about(format!("Remove options of a {noun}"))
                .arg(name())
                .arg(Arg::new("KEYS").num_args(1..).required(true)),
        )
        .subcommand(Command::new("rm").about(format!("Forget a {noun}")).arg(name()))
        .subcommand(
            Command::new("show")
                .about(format!("Show {noun}s, secrets masked"))
                .arg(Arg::new("secrets").long("secrets").action(ArgAction::SetTrue).help("Show secrets too"))
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("As JSON"))
                .arg(Arg::new("NAMES").num_args(0..)),
        )
        .subcommand(Command::new("ls").about(format!("List {noun}s and their locations")))
        .subcommand(Command::new("ping").about(format!("Check a {noun}'s configuration")).arg(name()));
    if noun == "store" {
        c = c.after_help("A named store is used as `plakar at @NAME COMMAND`.");
    }
    c
}

fn policy() -> Command {
    let name = || Arg::new("NAME").required(true);
    let kv = || {
        Arg::new("RULES")
            .num_args(0..)
            .help("KEY=VALUE: days=7 per-day=1 months=12 group-by=... (prune's flags without the dash)")
    };
    Command::new("policy")
        .about("Named retention policies for prune -policy: add|set|unset|rm|show|ls")
        .disable_help_subcommand(true)
        .subcommand(Command::new("add").about("Create a policy").arg(name()).arg(kv()))
        .subcommand(Command::new("set").about("Add or change rules").arg(name()).arg(kv()))
        .subcommand(
            Command::new("unset").about("Remove rules").arg(name()).arg(Arg::new("KEYS").num_args(1..).required(true)),
        )
        .subcommand(Command::new("rm").about("Remove a policy").arg(name()))
        .subcommand(Command::new("show").about("Show policies").arg(Arg::new("NAMES").num_args(0..)))
        .subcommand(Command::new("ls").about("List policies"))
}

/// The commands of the parser, each told where it sits on the command line.
fn commands() -> Vec<Command> {
    super::CmdLine::command().get_subcommands().cloned().collect()
}

/// The whole command line.
pub fn command() -> Command {
    let cmds = commands();
    let at = Command::new("at")
        .about("Pick the store: at STORE COMMAND (path, URL, file.ptar or @name)")
        .arg(Arg::new("STORE").required(true).value_hint(ValueHint::AnyPath).help("The store"))
        .subcommands(cmds.iter().filter(|c| !STORELESS.contains(&c.get_name())).cloned())
        .subcommand_required(true);
    Command::new("plakar")
        .version(env!("CARGO_PKG_VERSION"))
        .about(ABOUT)
        .long_about(LONG_ABOUT)
        .override_usage(format!("{SHAPE}\n       plakar [GLOBAL FLAGS] COMMAND [FLAGS] [ARGS]"))
        .after_help(AFTER)
        .disable_help_subcommand(true)
        .args(global_args())
        .subcommands(
            std::iter::once(at)
                .chain(cmds)
                .chain([
                    connector("store", "Named stores, used as `at @NAME`: add|set|unset|rm|show|ls|ping"),
                    connector("source", "Named backup sources, used as `backup @NAME`: add|set|unset|rm|show|ls|ping"),
                    connector(
                        "destination",
                        "Named restore targets, used as `restore -to @NAME`: add|set|unset|rm|show|ls|ping",
                    ),
                    policy(),
                    Command::new("help")
                        .about("This help, or a command's: help [COMMAND [SUBCOMMAND]]")
                        .arg(Arg::new("COMMAND").num_args(0..)),
                ])
                // In this order in help and man pages: `at` first, then as the parser lists them.
                .enumerate()
                .map(|(i, c)| c.display_order(i)),
        )
}

/// The help of `plakar WORDS...` (none: the whole command line), or None when no such
/// command exists. A store command's usage line shows where it goes: after `at STORE`.
pub fn help(words: &[&str]) -> Option<String> {
    // Not built as a whole: a built subcommand keeps `plakar backup` as its usage name.
    let root = command();
    let Some((first, rest)) = words.split_first() else {
        return Some(root.clone().render_help().to_string());
    };
    let mut c = root.find_subcommand(first)?.clone();
    let mut line = usage_name(first);
    for w in rest {
        c = c.find_subcommand(w)?.clone();
        line = format!("{line} {w}");
    }
    Some(c.bin_name(line).render_help().to_string())
}

/// How a command starts on the command line: `plakar [GLOBAL FLAGS] at STORE backup` for
/// the commands that work on a store.
pub fn usage_name(cmd: &str) -> String {
    let on_store = !STORELESS.contains(&cmd) && commands().iter().any(|s| s.get_name() == cmd);
    format!("plakar [GLOBAL FLAGS] {}{cmd}", if on_store { "at STORE " } else { "" })
}
