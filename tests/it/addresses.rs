//! Registries on addresses other than 127.0.0.1: plain HTTP on a name that is not loopback,
//! and IPv6 literals. A network namespace (`unshare --net`, tests run as root) holds a veth
//! interface with `10.77.0.1` and `fd00::1`; distribution serves there, over plain HTTP, the
//! storage of a registry the images were pushed to outside, and airlift runs in the same
//! namespace.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::generator::{self, Generated, ImageSpec};
use crate::support::{TestRegistry, describe, json_report, require_program, run_with_timeout};
use crate::tls::{Env, all_output, assert_ok};

/// The namespace's plain-HTTP source, as IPv4 and as IPv6.
const V4: &str = "10.77.0.1:5000";
const V6: &str = "[fd00::1]:5000";

/// What one airlift run inside the namespace left: exit code, stdout, stderr, seconds.
struct Step {
    code: i32,
    stdout: String,
    stderr: String,
    seconds: f64,
}

impl Step {
    fn read(dir: &Path, name: &str) -> Step {
        let read = |ext: &str| std::fs::read_to_string(dir.join(format!("{name}.{ext}")));
        let text = |ext: &str| read(ext).unwrap_or_default();
        Step {
            code: text("rc").trim().parse().unwrap_or(-1),
            stdout: text("out"),
            stderr: text("err"),
            seconds: text("secs").trim().parse().unwrap_or(f64::MAX),
        }
    }

    fn describe(&self) -> String {
        format!(
            "exit {} after {:.1}s\nstdout:\n{}\nstderr:\n{}",
            self.code, self.seconds, self.stdout, self.stderr
        )
    }

    fn report(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.describe()))
    }
}

/// Asserts that `report` copied `image` to `target`, its digest kept.
fn assert_copied_as(step: &Step, image: &Generated, target: &str) {
    let report = step.report();
    let entry = &report["images"][0];
    assert_eq!(entry["status"], "copied", "{}", step.describe());
    assert_eq!(entry["target"], target, "{}", step.describe());
    assert_eq!(
        entry["digest"],
        image.digest.as_str(),
        "{}",
        step.describe()
    );
    assert_eq!(entry["source_digest"], image.digest.as_str());
}

/// Whether the registry storage under `root` holds manifest `digest` in `repository`.
fn stored(root: &Path, repository: &str, digest: &str) -> bool {
    let hex = digest.trim_start_matches("sha256:");
    root.join(format!(
        "docker/registry/v2/repositories/{repository}/_manifests/revisions/sha256/{hex}/link"
    ))
    .is_file()
}

#[test]
fn plain_http_on_a_network_address_and_ipv6_literals() {
    require_program("unshare", "util-linux");
    require_program("ip", "iproute2");
    let source = TestRegistry::start();
    let spec: Vec<ImageSpec> = generator::small_set().into_iter().take(1).collect();
    let image = generator::push(&source.addr(), &spec).remove(0);
    let env = Env::new();
    let dir = env.dir.path();
    let target_storage = dir.join("target-storage");
    let config = |name: &str, addr: &str, storage: &Path| {
        let path = dir.join(format!("{name}.yml"));
        std::fs::write(
            &path,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: \"{addr}\"\n",
                storage.display()
            ),
        )
        .unwrap();
        path
    };
    // The source listens on every address of the namespace (10.77.0.1 and fd00::1).
    let src = config("source", ":5000", source.storage_dir());
    let dst = config("target", "127.0.0.1:5001", &target_storage);
    let reference = |host: &str| format!("{host}/{}:{}", image.repository, image.tag);
    std::fs::write(dir.join("v4.txt"), reference(V4) + "\n").unwrap();
    std::fs::write(dir.join("v6.txt"), reference(V6) + "\n").unwrap();
    let script = format!(
        r#"set -eu
ip link set lo up
ip link add v0 type veth peer name v1
ip addr add 10.77.0.1/24 dev v0
ip -6 addr add fd00::1/64 dev v0 nodad
ip link set v0 up
ip link set v1 up
set +e
docker-registry serve {src} >{dir}/source.log 2>&1 & s=$!
docker-registry serve {dst} >{dir}/target.log 2>&1 & t=$!
i=0
until bash -c 'echo >/dev/tcp/10.77.0.1/5000 && echo >/dev/tcp/fd00::1/5000 && echo >/dev/tcp/127.0.0.1/5001' 2>/dev/null; do
  i=$((i+1)); [ $i -lt 400 ] || break; sleep 0.05
done
run() {{
  name=$1; shift
  start=$(date +%s.%N)
  "$AIRLIFT" mirror sync --json --progress none "$@" >{dir}/$name.out 2>{dir}/$name.err
  echo $? >{dir}/$name.rc
  awk "BEGIN {{ print $(date +%s.%N) - $start }}" >{dir}/$name.secs
}}
run refused --list {dir}/v4.txt --to 127.0.0.1:5001/plain
run insecure --list {dir}/v4.txt --to 127.0.0.1:5001/plain --insecure-registry {V4}
run v6 --list {dir}/v6.txt --to 127.0.0.1:5001/v6 --insecure-registry '{V6}'
run kept --list {dir}/v6.txt --to 127.0.0.1:5001/kept --keep-host --insecure-registry '{V6}'
kill $s $t; wait
"#,
        src = src.display(),
        dst = dst.display(),
        dir = dir.display(),
    );
    let mut unshare = Command::new("unshare");
    unshare.args(["--net", "sh", "-c", &script]);
    let airlift = env.airlift(&[]);
    for (k, v) in airlift.get_envs() {
        match v {
            Some(v) => unshare.env(k, v),
            None => unshare.env_remove(k),
        };
    }
    unshare.env("AIRLIFT", airlift.get_program());
    let out = run_with_timeout(&mut unshare, Duration::from_secs(300));
    assert!(out.status.success(), "{}", describe(&out));
    let logs = || {
        ["source.log", "target.log"]
            .iter()
            .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default())
            .collect::<String>()
    };

    // Plain HTTP on an address that is not loopback, without --insecure-registry: refused
    // at once, naming the flag.
    let refused = Step::read(dir, "refused");
    assert_eq!(refused.code, 1, "{}\n{}", refused.describe(), logs());
    assert!(
        refused.stderr.contains(&format!(
            "{V4} speaks plain HTTP, not HTTPS: pass --insecure-registry {V4}"
        )),
        "{}",
        refused.describe()
    );
    assert!(refused.seconds < 15.0, "{}", refused.describe());
    assert_eq!(refused.report()["images"][0]["status"], "failed");

    let insecure = Step::read(dir, "insecure");
    assert_eq!(insecure.code, 0, "{}\n{}", insecure.describe(), logs());
    let target = |path: &str| format!("127.0.0.1:5001/{path}/{}:{}", image.repository, image.tag);
    assert_copied_as(&insecure, &image, &target("plain"));
    let repo = |path: &str| format!("{path}/{}", image.repository);
    assert!(stored(&target_storage, &repo("plain"), &image.digest));

    // An IPv6 literal source.
    let v6 = Step::read(dir, "v6");
    assert_eq!(v6.code, 0, "{}\n{}", v6.describe(), logs());
    assert_copied_as(&v6, &image, &target("v6"));
    assert!(stored(&target_storage, &repo("v6"), &image.digest));

    // --keep-host with an IPv6 host: its eight groups, `-`-joined, make a valid component.
    let kept = Step::read(dir, "kept");
    assert_eq!(kept.code, 0, "{}\n{}", kept.describe(), logs());
    assert_copied_as(&kept, &image, &target("kept/fd00-0-0-0-0-0-0-1_5000"));
    assert!(stored(
        &target_storage,
        &repo("kept/fd00-0-0-0-0-0-0-1_5000"),
        &image.digest
    ));
}

/// `[::1]:PORT` names distribution on the IPv6 loopback: plain HTTP without a flag, as for
/// 127.0.0.1, digests kept; and `--keep-host` maps it to `0-0-0-0-0-0-0-1_PORT`.
#[test]
fn an_ipv6_loopback_source_is_copied() {
    let source = TestRegistry::builder().host("[::1]").start();
    let spec: Vec<ImageSpec> = generator::small_set().into_iter().take(1).collect();
    let image = generator::push(&source.addr(), &spec).remove(0);
    assert!(source.addr().starts_with("[::1]:"), "{}", source.addr());
    let target = TestRegistry::start();
    let env = Env::new();
    let list = generator::write_list(env.dir.path(), std::slice::from_ref(&image), &source.addr());
    let port = source.addr().rsplit(':').next().unwrap().to_owned();
    for (extra, path) in [
        (None, format!("m/{}", image.repository)),
        (
            Some("--keep-host"),
            format!("m/0-0-0-0-0-0-0-1_{port}/{}", image.repository),
        ),
    ] {
        let mut args = vec!["--json", "--progress", "none"];
        args.extend(extra);
        let out = env.sync(&list, &format!("{}/m", target.addr()), &args);
        assert_ok(&out);
        let report = json_report(&out);
        let entry = &report["images"][0];
        assert_eq!(
            entry["target"],
            format!("{}/{path}:{}", target.addr(), image.tag),
            "{}",
            all_output(&out)
        );
        assert_eq!(entry["digest"], image.digest.as_str(), "{}", describe(&out));
        assert!(
            stored(target.storage_dir(), &path, &image.digest),
            "{path} not stored"
        );
    }
}
