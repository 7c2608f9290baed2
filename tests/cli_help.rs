//! Every flag of every command says what it does in its help. The commands are read from
//! `vkgan --help` and the flags from each command's own help, so a command or flag added
//! later without a description fails here.

#[path = "common/cli.rs"]
mod cli;

/// Annotations clap adds to a flag's help by itself: text that describes nothing.
const CLAP_NOTES: &[&str] = &["[default: ", "[possible values: ", "[aliases: ", "[env: "];

/// The subcommands `vkgan --help` lists, without clap's own `help`.
fn commands() -> Vec<String> {
    let run = cli::vkgan(&["--help"]).expect_ok();
    let (_, listed) = run
        .stdout
        .split_once("Commands:\n")
        .unwrap_or_else(|| panic!("no command list:\n{run}"));
    listed
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|&c| c != "help")
        .map(String::from)
        .collect()
}

/// Each flag of a help text (`-h, --help`, `--steps <STEPS>`) with its description: the text
/// after it on its line, or the more indented lines under it when clap puts descriptions on
/// their own lines (as it does in `--help` once any flag has a long description).
fn flags(help: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = help.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let text = line.trim_start();
        // `-x` or `--name`; description lines may start with `- ` (possible values).
        let mut chars = text.chars();
        let is_flag = chars.next() == Some('-')
            && chars
                .next()
                .is_some_and(|c| c == '-' || c.is_ascii_alphanumeric());
        if !is_flag {
            continue;
        }
        let indent = line.len() - text.len();
        // clap separates a flag from its description by at least two spaces.
        let (flag, mut description) = match text.split_once("  ") {
            Some((flag, rest)) => (flag, rest.trim().to_string()),
            None => (text.trim_end(), String::new()),
        };
        if description.is_empty() {
            for below in &lines[i + 1..] {
                let t = below.trim_start();
                if t.is_empty() || below.len() - t.len() <= indent {
                    break;
                }
                description.push_str(t);
                description.push(' ');
            }
        }
        if let Some(at) = CLAP_NOTES.iter().filter_map(|n| description.find(n)).min() {
            description.truncate(at);
        }
        found.push((flag.to_string(), description.trim().to_string()));
    }
    found
}

/// The flags of `help` that say nothing about themselves.
fn undocumented(help: &str) -> Vec<String> {
    flags(help)
        .into_iter()
        .filter(|(_, description)| !description.chars().any(char::is_alphabetic))
        .map(|(flag, _)| flag)
        .collect()
}

#[test]
fn every_flag_of_every_command_has_a_description() {
    let commands = commands();
    for known in ["devices", "train", "generate", "mix", "metrics", "bench"] {
        assert!(commands.iter().any(|c| c == known), "{known}: {commands:?}");
    }
    let mut missing = Vec::new();
    for command in std::iter::once(None).chain(commands.iter().map(Some)) {
        // `-h` lays flags out one a line, `--help` (here) description under flag.
        for help in ["-h", "--help"] {
            let args: Vec<&str> = command
                .map(String::as_str)
                .into_iter()
                .chain([help])
                .collect();
            let run = cli::vkgan(&args).expect_ok();
            let found = flags(&run.stdout);
            assert!(
                found.iter().any(|(flag, _)| flag.contains("--help")),
                "no flags read from `vkgan {}`:\n{run}",
                args.join(" ")
            );
            if command.is_some_and(|c| c == "train") {
                assert!(found.len() > 30, "{found:?}");
            }
            for flag in undocumented(&run.stdout) {
                missing.push(format!("vkgan {}: {flag}", args.join(" ")));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "flags without a description:\n{}",
        missing.join("\n")
    );
}

#[test]
fn a_flag_without_a_description_is_found_in_either_layout() {
    let one_line = "\
Options:
      --steps <STEPS>
      --out <OUT>        [default: generated]
      --grid             Also write grid.png with every image
  -h, --help             Print help
";
    assert_eq!(undocumented(one_line), ["--steps <STEPS>", "--out <OUT>"]);
    // An undocumented flag's line under it holds only spaces.
    let next_line = [
        "Options:",
        "      --preset <PRESET>",
        "          Named settings to start from",
        "",
        "          Possible values:",
        "          - reference: The reference's defaults",
        "",
        "      --steps <STEPS>",
        "          ",
        "",
        "      --seed <SEED>",
        "          [default: 0]",
        "",
        "  -h, --help",
        "          Print help (see a summary with '-h')",
    ]
    .join("\n");
    let next_line = next_line.as_str();
    assert_eq!(flags(next_line).len(), 4, "{:?}", flags(next_line));
    assert_eq!(
        undocumented(next_line),
        ["--steps <STEPS>", "--seed <SEED>"]
    );
}
