//! Running docker credential helpers (`docker-credential-NAME get|store|erase`), with a time
//! limit.
//!
//! The protocol is docker-credential-helpers': the action is the only argument, the request is
//! on stdin (the server URL for `get`/`erase`, `{"ServerURL","Username","Secret"}` for
//! `store`), `get` answers `{"ServerURL","Username","Secret"}` on stdout, and a missing
//! credential is a non-zero exit with `credentials not found in native keychain`.
//!
//! The `docker_credential` crate runs helpers too, but with no time limit, no way to choose the
//! `PATH` the helper is looked up in, and `get` only; so this is written here. Each helper runs
//! in its own process group so that a timeout kills what it started as well (a shell-script
//! helper that hangs in a child would otherwise keep running and keep its pipes open).

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::CredentialError;
use crate::registry::Credential;

/// What helpers print when they hold nothing for the server.
const NOT_FOUND_MESSAGE: &str = "credentials not found in native keychain";
/// Most bytes kept from a helper's stdout or stderr.
const OUTPUT_CAP: usize = 1 << 20;
/// How long to wait for a helper's pipes to close after it exits (a daemon it started may hold
/// them open; its answer is already in the buffer by then).
const PIPE_GRACE: Duration = Duration::from_millis(200);

/// How helpers are run: the time limit and, for tests, the `PATH` they are found in.
#[derive(Debug, Clone)]
pub(crate) struct HelperRunner {
    pub(crate) timeout: Duration,
    /// `PATH` of the child process (and the one the program is looked up in); the process's own
    /// when `None`.
    pub(crate) path: Option<OsString>,
}

/// A helper action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Get,
    Store,
    Erase,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Get => "get",
            Action::Store => "store",
            Action::Erase => "erase",
        }
    }
}

/// The program name of helper `name`.
pub(crate) fn program(name: &str) -> String {
    format!("docker-credential-{name}")
}

/// Whether `name` can be a helper name: no path separators, no whitespace, not empty.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl HelperRunner {
    /// `get`: the credential `helper` holds for `server_url`; `None` when it holds none.
    pub(crate) fn get(
        &self,
        helper: &str,
        registry: &str,
        server_url: &str,
    ) -> Result<Option<Credential>, CredentialError> {
        let out = self.run(helper, registry, Action::Get, server_url.as_bytes())?;
        if !out.status.success() {
            return if out.not_found() {
                Ok(None)
            } else {
                Err(out.failure(helper, registry, Action::Get, &[]))
            };
        }
        let bad = |reason: &str| CredentialError::HelperResponse {
            helper: program(helper),
            registry: registry.to_owned(),
            reason: reason.to_owned(),
        };
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        // Parsed as a Value and picked apart by hand: serde's type errors quote the value.
        let value: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|_| bad("not JSON of the form {\"Username\",\"Secret\"}"))?;
        let field = |name: &str| match value.get(name) {
            None | Some(serde_json::Value::Null) => Ok(String::new()),
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(bad(&format!("`{name}` is not a string"))),
        };
        let username = field("Username")?;
        let password = field("Secret")?;
        if password.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credential { username, password }))
    }

    /// `store`: saves `username`/`secret` for `server_url`.
    pub(crate) fn store(
        &self,
        helper: &str,
        registry: &str,
        server_url: &str,
        username: &str,
        secret: &str,
    ) -> Result<(), CredentialError> {
        let request = serde_json::json!({
            "ServerURL": server_url,
            "Username": username,
            "Secret": secret,
        });
        let request = serde_json::to_vec(&request).expect("a JSON value serialises");
        // The secret as sent, and JSON-escaped as a helper echoing its request would show it.
        let escaped = serde_json::to_string(secret).expect("a string serialises");
        let secrets = [secret, escaped.trim_matches('"')];
        let out = self.run(helper, registry, Action::Store, &request)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(out.failure(helper, registry, Action::Store, &secrets))
        }
    }

    /// `erase`: removes what `helper` holds for `server_url`; `false` when it held nothing.
    pub(crate) fn erase(
        &self,
        helper: &str,
        registry: &str,
        server_url: &str,
    ) -> Result<bool, CredentialError> {
        let out = self.run(helper, registry, Action::Erase, server_url.as_bytes())?;
        if out.status.success() {
            Ok(true)
        } else if out.not_found() {
            Ok(false)
        } else {
            Err(out.failure(helper, registry, Action::Erase, &[]))
        }
    }

    /// Runs `docker-credential-<helper> <action>` with `input` on stdin, killing it (and its
    /// process group) when it outlives the timeout.
    fn run(
        &self,
        helper: &str,
        registry: &str,
        action: Action,
        input: &[u8],
    ) -> Result<Finished, CredentialError> {
        let name = program(helper);
        let mut cmd = Command::new(&name);
        cmd.arg(action.as_str())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(path) = &self.path {
            // std looks the program up in the child's PATH when it is set.
            cmd.env("PATH", path);
        }
        let mut child = spawn(&mut cmd).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                CredentialError::HelperNotFound {
                    helper: name.clone(),
                    registry: registry.to_owned(),
                }
            } else {
                CredentialError::HelperSpawn {
                    helper: name.clone(),
                    registry: registry.to_owned(),
                    source,
                }
            }
        })?;
        let deadline = Instant::now() + self.timeout;
        tracing::debug!(helper = %name, action = action.as_str(), registry, "running credential helper");

        let (done_tx, done_rx) = mpsc::channel();
        let stdout = read_in_background(child.stdout.take(), done_tx.clone());
        let stderr = read_in_background(child.stderr.take(), done_tx);
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading gives EPIPE: its exit status tells the rest.
            let _ = stdin.write_all(input);
        }

        let mut poll = Duration::from_millis(2);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(source) => {
                    kill_tree(&mut child);
                    return Err(CredentialError::HelperSpawn {
                        helper: name,
                        registry: registry.to_owned(),
                        source,
                    });
                }
            }
            let now = Instant::now();
            if now >= deadline {
                kill_tree(&mut child);
                tracing::debug!(helper = %name, "credential helper timed out; killed");
                return Err(CredentialError::HelperTimeout {
                    helper: name,
                    action: action.as_str(),
                    registry: registry.to_owned(),
                    timeout: self.timeout,
                });
            }
            std::thread::sleep(poll.min(deadline - now));
            poll = (poll * 2).min(Duration::from_millis(20));
        };

        // Not bounded by the deadline: the answer is in the pipes already and must not be lost.
        let grace_end = Instant::now() + PIPE_GRACE;
        for _ in 0..2 {
            let left = grace_end.saturating_duration_since(Instant::now());
            if done_rx.recv_timeout(left).is_err() {
                break;
            }
        }
        let take = |buf: &Arc<Mutex<Vec<u8>>>| std::mem::take(&mut *buf.lock().expect("reader"));
        Ok(Finished {
            status,
            stdout: take(&stdout),
            stderr: take(&stderr),
        })
    }
}

/// Spawns, retrying briefly on ETXTBSY: a helper script written a moment ago (tests, or an
/// installer racing us) can still be open for writing in a forked child of another thread.
fn spawn(cmd: &mut Command) -> io::Result<Child> {
    const ETXTBSY: i32 = 26;
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && tries < 20 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Kills the helper's whole process group, then the helper, and reaps it.
fn kill_tree(child: &mut Child) {
    let pid = rustix::process::Pid::from_child(child);
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads `pipe` on a thread into a shared buffer (capped), signalling `done` at EOF. The
/// thread is left behind if something else holds the pipe open.
fn read_in_background<R: Read + Send + 'static>(
    pipe: Option<R>,
    done: mpsc::Sender<()>,
) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let Some(mut pipe) = pipe else {
        let _ = done.send(());
        return buf;
    };
    let shared = Arc::clone(&buf);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut b = shared.lock().expect("reader");
                    let room = OUTPUT_CAP.saturating_sub(b.len());
                    b.extend_from_slice(&chunk[..n.min(room)]);
                }
            }
        }
        let _ = done.send(());
    });
    buf
}

/// A helper that ran to completion.
struct Finished {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Finished {
    fn not_found(&self) -> bool {
        [&self.stdout, &self.stderr]
            .iter()
            .any(|b| String::from_utf8_lossy(b).contains(NOT_FOUND_MESSAGE))
    }

    /// The error for a non-zero exit: status plus the first line of stderr (stdout when stderr
    /// is empty: docker-credential-helpers print their errors there), scrubbed.
    fn failure(
        &self,
        helper: &str,
        registry: &str,
        action: Action,
        secrets: &[&str],
    ) -> CredentialError {
        let stderr = String::from_utf8_lossy(&self.stderr);
        let stdout = String::from_utf8_lossy(&self.stdout);
        let mut line = one_line(&stderr, secrets);
        if line.is_empty() {
            line = one_line(&stdout, secrets);
        }
        let detail = if line.is_empty() {
            self.status.to_string()
        } else {
            format!("{}: {line}", self.status)
        };
        CredentialError::HelperFailed {
            helper: program(helper),
            action: action.as_str(),
            registry: registry.to_owned(),
            detail,
        }
    }
}

/// The first non-empty line of `text`, trimmed, at most 200 characters, with each of
/// `secrets` and anything that looks like a token replaced by `<redacted>`.
pub(crate) fn one_line(text: &str, secrets: &[&str]) -> String {
    let mut line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 2) {
        line = line.replace(secret, "<redacted>");
    }
    let mut out = String::with_capacity(line.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if looks_like_token(word) {
            out.push_str("<redacted>");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in line.chars() {
        if c.is_whitespace()
            || matches!(
                c,
                '"' | '\'' | '`' | ',' | ':' | ';' | '=' | '(' | ')' | '[' | ']' | '{' | '}'
            )
        {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    if out.chars().count() > 200 {
        out = out.chars().take(200).collect::<String>() + "…";
    }
    // A helper's words go to the terminal: no control sequence survives.
    crate::escape::escape(&out).into_owned()
}

/// A long run of base64/hex/JWT characters with letters and digits, not a path: an access key,
/// token or encoded password.
fn looks_like_token(word: &str) -> bool {
    word.len() >= 24
        && !word.starts_with('/')
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-' | '.'))
        && word.chars().any(|c| c.is_ascii_digit())
        && word.chars().any(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::testutil::{FakeHelper, path_with};

    fn runner(dir: &std::path::Path, timeout: Duration) -> HelperRunner {
        HelperRunner {
            timeout,
            path: Some(path_with(dir)),
        }
    }

    #[test]
    fn get_store_erase_round_trip() {
        let fake = FakeHelper::new();
        let r = runner(fake.dir(), Duration::from_secs(10));
        assert!(
            r.get("airlifttest", "reg:5000", "reg:5000")
                .unwrap()
                .is_none()
        );
        r.store("airlifttest", "reg:5000", "reg:5000", "bob", "hunter2")
            .unwrap();
        let c = r
            .get("airlifttest", "reg:5000", "reg:5000")
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("bob", "hunter2")
        );
        assert!(r.erase("airlifttest", "reg:5000", "reg:5000").unwrap());
        assert!(
            r.get("airlifttest", "reg:5000", "reg:5000")
                .unwrap()
                .is_none()
        );
        assert!(!r.erase("airlifttest", "reg:5000", "reg:5000").unwrap());
    }

    #[test]
    fn missing_helper_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let r = runner(dir.path(), Duration::from_secs(5));
        let err = r
            .get("nosuchhelper", "reg.example", "reg.example")
            .unwrap_err();
        assert!(
            matches!(err, CredentialError::HelperNotFound { .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("docker-credential-nosuchhelper") && msg.contains("reg.example"),
            "{msg}"
        );
    }

    #[test]
    fn hung_helper_and_its_children_are_killed_at_the_timeout() {
        // The script waits on a child, as a shell wrapper around a hung program would.
        let fake = FakeHelper::with_script(
            "slow",
            "sleep 30 &\necho $! > \"$(dirname \"$0\")/child.pid\"\nwait\n",
        );
        let r = runner(fake.dir(), Duration::from_millis(300));
        let start = Instant::now();
        let err = r.get("slow", "reg.example", "reg.example").unwrap_err();
        let took = start.elapsed();
        assert!(
            matches!(err, CredentialError::HelperTimeout { .. }),
            "{err:?}"
        );
        assert!(took < Duration::from_secs(3), "took {took:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("docker-credential-slow") && msg.contains("reg.example"),
            "{msg}"
        );
        // The helper's own child is gone too (reaped by init, or at worst a zombie).
        let pid = std::fs::read_to_string(fake.dir().join("child.pid")).unwrap();
        let stat = format!("/proc/{}/stat", pid.trim());
        let gone = || match std::fs::read_to_string(&stat) {
            Err(_) => true,
            Ok(s) => s
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        };
        let until = Instant::now() + Duration::from_secs(2);
        while !gone() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone(), "helper child {} still running", pid.trim());
    }

    #[test]
    fn failure_names_helper_and_registry_and_hides_the_secret() {
        // A helper that echoes its whole request (secret included) into its error.
        let fake = FakeHelper::with_script(
            "leaky",
            "req=$(cat)\necho \"store failed for $req token ghp1234567890abcdefghijklmnopqrstuv\" >&2\nexit 3\n",
        );
        let r = runner(fake.dir(), Duration::from_secs(10));
        let err = r
            .store("leaky", "reg.example", "reg.example", "bob", "s3cr3t-pass")
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                CredentialError::HelperFailed {
                    action: "store",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(msg.contains("docker-credential-leaky"), "{msg}");
        assert!(msg.contains("reg.example"), "{msg}");
        assert!(msg.contains("exit status: 3"), "{msg}");
        assert!(!msg.contains("s3cr3t-pass"), "{msg}");
        assert!(!msg.contains("ghp1234567890"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn get_failure_is_not_a_miss() {
        let fake = FakeHelper::with_script(
            "broken",
            "echo 'error getting credentials: dbus is down'\nexit 1\n",
        );
        let r = runner(fake.dir(), Duration::from_secs(10));
        let err = r.get("broken", "reg.example", "reg.example").unwrap_err();
        assert!(err.to_string().contains("dbus is down"), "{err}");
    }

    #[test]
    fn malformed_answer_is_reported_without_quoting_it() {
        let fake = FakeHelper::with_script(
            "garbage",
            "echo '{\"Username\":\"u\",\"Secret\":12345678}'\n",
        );
        let r = runner(fake.dir(), Duration::from_secs(10));
        let err = r.get("garbage", "reg.example", "reg.example").unwrap_err();
        assert!(
            matches!(err, CredentialError::HelperResponse { .. }),
            "{err:?}"
        );
        assert!(!err.to_string().contains("12345678"), "{err}");
    }

    #[test]
    fn one_line_scrubs() {
        assert_eq!(one_line("\n  first line \nsecond", &[]), "first line");
        assert_eq!(
            one_line("bad pw hunter2!", &["hunter2"]),
            "bad pw <redacted>!"
        );
        assert_eq!(
            one_line(
                "token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc123 rejected",
                &[]
            ),
            "token=<redacted> rejected"
        );
        // Paths and ordinary words survive.
        assert_eq!(
            one_line(
                "cannot open /home/user/.password-store/docker-credential-helpers/x",
                &[]
            ),
            "cannot open /home/user/.password-store/docker-credential-helpers/x"
        );
        assert!(one_line(&"x".repeat(500), &[]).chars().count() <= 201);
        assert_eq!(one_line("\x1b[2Jdenied\r", &[]), "\\x1b[2Jdenied");
    }

    #[test]
    fn helper_names() {
        assert!(valid_name("ecr-login"));
        assert!(valid_name("desktop.exe"));
        assert!(!valid_name("../../bin/sh"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
    }
}
