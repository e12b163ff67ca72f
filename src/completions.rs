//! `airlift completions SHELL`: clap_complete's scripts, with one fix for bash. clap's bash
//! generator ignores positional arguments, so `airlift bundle load <TAB>` offered the flags
//! and never the volume files; the bundle commands whose positionals are volume files get file
//! name completion here (flags still complete after `-`).

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// The `bundle` subcommands whose positional arguments are volume files.
const VOLUME_COMMANDS: [&str; 3] = ["load", "verify", "inspect"];

/// The completion script for `shell`.
pub fn generate(shell: Shell) -> Vec<u8> {
    // clap_complete panics when its writer fails: generate into memory.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "airlift", &mut script);
    match shell {
        Shell::Bash => {
            let text = String::from_utf8(script).expect("clap_complete writes UTF-8");
            complete_volume_files(&text).into_bytes()
        }
        _ => script,
    }
}

/// In the `case` branch of each volume command, words that are not flags complete as file
/// names (clap's script offers the flags for the first positional and nothing after).
fn complete_volume_files(script: &str) -> String {
    const FLAGS_OR_FIRST: &str = "if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then";
    const FLAGS: &str = "if [[ ${cur} == -* ]] ; then";
    const FALLBACK: &str = "            COMPREPLY=( $(compgen -W \"${opts}\" -- \"${cur}\") )\n            return 0\n            ;;";
    const FILES: &str = "            local oldifs\n            if [ -n \"${IFS+x}\" ]; then\n                oldifs=\"$IFS\"\n            fi\n            IFS=$'\\n'\n            COMPREPLY=($(compgen -f -- \"${cur}\"))\n            if [ -n \"${oldifs+x}\" ]; then\n                IFS=\"$oldifs\"\n            fi\n            if [[ \"${BASH_VERSINFO[0]}\" -ge 4 ]]; then\n                compopt -o filenames 2>/dev/null\n            fi\n            return 0\n            ;;";
    let mut out = script.to_owned();
    for name in VOLUME_COMMANDS {
        let head = format!("\n        airlift__subcmd__bundle__subcmd__{name})\n");
        let Some(start) = out.find(&head) else {
            panic!("clap's bash script has no branch for `bundle {name}`");
        };
        let end = start
            + out[start..]
                .find(FALLBACK)
                .unwrap_or_else(|| panic!("clap's bash branch of `bundle {name}` changed shape"))
            + FALLBACK.len();
        let branch = out[start..end].replacen(FLAGS_OR_FIRST, FLAGS, 1);
        let branch = format!(
            "{}{FILES}",
            branch
                .strip_suffix(FALLBACK)
                .expect("ends with the fallback")
        );
        out.replace_range(start..end, &branch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// The committed scripts are what `airlift completions SHELL` prints; regenerate them with
    /// `airlift completions SHELL > completions/...` when a flag changes.
    #[test]
    fn committed_completions_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
        for (shell, file) in [
            (Shell::Bash, "airlift.bash"),
            (Shell::Zsh, "_airlift"),
            (Shell::Fish, "airlift.fish"),
            (Shell::PowerShell, "_airlift.ps1"),
            (Shell::Elvish, "airlift.elv"),
        ] {
            let committed = std::fs::read(dir.join(file)).unwrap_or_default();
            assert!(
                committed == generate(shell),
                "completions/{file} is stale: run `airlift completions {shell} > completions/{file}`"
            );
        }
    }

    /// Runs the committed bash completion for the words typed (the last one partial) in
    /// `dir`, and returns COMPREPLY sorted.
    fn complete(dir: &std::path::Path, words: &[&str]) -> Vec<String> {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/airlift.bash");
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let program = format!(
            "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\n_airlift airlift '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display(),
            quoted.join(" "),
            words.len() - 1,
            words[words.len() - 1],
            words[words.len() - 2],
        );
        let out = Command::new("bash")
            .arg("--norc")
            .arg("-c")
            .arg(&program)
            .current_dir(dir)
            .output()
            .expect("run bash (the completion test needs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    #[test]
    fn bash_completes_volume_file_names() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["release.001.tar.zst", "release.002.tar.zst", "notes.txt"] {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        let volumes = ["release.001.tar.zst", "release.002.tar.zst"];
        for command in VOLUME_COMMANDS {
            assert_eq!(
                complete(dir.path(), &["airlift", "bundle", command, "rel"]),
                volumes,
                "bundle {command}"
            );
            // The second volume too, and after a flag.
            assert_eq!(
                complete(
                    dir.path(),
                    &[
                        "airlift",
                        "bundle",
                        command,
                        "release.001.tar.zst",
                        "--json",
                        "release.0"
                    ]
                ),
                volumes,
                "bundle {command}"
            );
        }
        // Flags still complete, and a flag's value as before.
        assert_eq!(
            complete(dir.path(), &["airlift", "bundle", "load", "--st"]),
            ["--state-dir"]
        );
        assert_eq!(
            complete(
                dir.path(),
                &["airlift", "bundle", "load", "--progress", "pl"]
            ),
            ["plain"]
        );
    }
}
