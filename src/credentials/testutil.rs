//! Test helpers: real credential-helper programs written as shell scripts into temp dirs.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A `PATH` for a helper child process: `dir` first, then the test process's own `PATH` (for
/// `cat`, `sed`, `sleep` inside the scripts). The test process's environment is not changed.
pub(crate) fn path_with(dir: &Path) -> OsString {
    let mut path = dir.as_os_str().to_owned();
    if let Some(rest) = std::env::var_os("PATH") {
        path.push(":");
        path.push(rest);
    }
    path
}

/// The file-backed helper `docker-credential-airlifttest`: `store` keeps the request JSON in
/// `store/<hex of ServerURL>`, `get` prints it back, `erase` deletes it; every call appends
/// `<action> <server URL>` to `calls.log`.
const AIRLIFTTEST: &str = r#"#!/bin/sh
here=$(dirname "$0")
mkdir -p "$here/store"
key() { printf %s "$1" | od -An -tx1 | tr -d ' \n'; }
case "$1" in
get)
    url=$(cat)
    echo "get $url" >> "$here/calls.log"
    f="$here/store/$(key "$url")"
    if [ -f "$f" ]; then cat "$f"; exit 0; fi
    echo "credentials not found in native keychain"
    exit 1
    ;;
store)
    req=$(cat)
    url=$(printf %s "$req" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p')
    echo "store $url" >> "$here/calls.log"
    printf %s "$req" > "$here/store/$(key "$url")"
    ;;
erase)
    url=$(cat)
    echo "erase $url" >> "$here/calls.log"
    f="$here/store/$(key "$url")"
    if [ -f "$f" ]; then rm "$f"; exit 0; fi
    echo "credentials not found in native keychain"
    exit 1
    ;;
*)
    echo "unknown action $1" >&2
    exit 2
    ;;
esac
"#;

/// A temp dir holding helper scripts.
pub(crate) struct FakeHelper {
    dir: tempfile::TempDir,
}

impl FakeHelper {
    /// A dir with `docker-credential-airlifttest`.
    pub(crate) fn new() -> Self {
        let fake = FakeHelper {
            dir: tempfile::tempdir().unwrap(),
        };
        fake.add("airlifttest", AIRLIFTTEST);
        fake
    }

    /// A dir with `docker-credential-<name>` running `body` under `/bin/sh`.
    pub(crate) fn with_script(name: &str, body: &str) -> Self {
        let fake = FakeHelper {
            dir: tempfile::tempdir().unwrap(),
        };
        fake.add(name, &format!("#!/bin/sh\n{body}"));
        fake
    }

    /// Adds another helper script to the dir.
    pub(crate) fn add(&self, name: &str, script: &str) {
        let path = self.dir.path().join(format!("docker-credential-{name}"));
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// The dir to put first in the helper's `PATH`.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The `PATH` to give helpers.
    pub(crate) fn path(&self) -> OsString {
        path_with(self.dir.path())
    }

    /// Puts a credential into the airlifttest store, as `store` would.
    pub(crate) fn preload(&self, server_url: &str, username: &str, secret: &str) {
        let store = self.dir.path().join("store");
        std::fs::create_dir_all(&store).unwrap();
        let key: String = server_url.bytes().map(|b| format!("{b:02x}")).collect();
        let body =
            serde_json::json!({"ServerURL": server_url, "Username": username, "Secret": secret});
        std::fs::write(store.join(key), body.to_string()).unwrap();
    }

    /// The calls logged by the airlifttest helper, one `action url` per line.
    pub(crate) fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}
