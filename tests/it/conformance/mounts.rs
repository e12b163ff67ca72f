//! Registries that ignore cross-repository mounts (answer `202` and open a normal upload):
//! go-containerregistry's registry does, for real; distribution behind an nginx that drops
//! the `mount` parameter shows the case where the plan found the blob in another repository.
//! The bytes are uploaded, and the totals say so.

use std::collections::{HashMap, HashSet};

use indicatif::HumanBytes;

use super::Images;
use crate::support::crane::CraneRegistry;
use crate::support::generator::{self, Generated};
use crate::support::nginx::Nginx;
use crate::support::proxy::{FaultProxy, Faults};
use crate::support::{TestRegistry, describe, free_port, json_report, number, run_with_timeout};
use crate::tls::{Env, RUN_TIMEOUT, assert_copied, assert_ok};

/// Distinct blob sizes per repository of `images`, summed: what a registry that mounts
/// nothing receives.
fn per_repository_bytes(images: &[Generated]) -> u64 {
    let mut by_repo: HashMap<&str, HashMap<&str, u64>> = HashMap::new();
    for g in images {
        let blobs = by_repo.entry(&g.repository).or_default();
        blobs.extend(g.blobs.iter().map(|(d, s)| (d.as_str(), *s)));
    }
    by_repo.values().flat_map(|b| b.values()).sum()
}

/// `(bytes, total)` of each plain `progress: A / B (P%) ...` line.
fn progress_lines(stderr: &str) -> Vec<(String, String)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("progress: "))
        .filter_map(|l| {
            let (done, rest) = l.split_once(" / ")?;
            let (total, _) = rest.split_once(" (")?;
            Some((done.to_owned(), total.to_owned()))
        })
        .collect()
}

/// `crane registry serve` answers every mount with `202` (an upload): each repository gets
/// the bytes of its blobs. The report counts what moved, and the progress total grows with
/// each blob uploaded instead of mounted, before its bytes move.
#[test]
fn a_registry_that_ignores_mounts_gets_the_bytes_and_the_totals_follow() {
    let source = TestRegistry::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Slow enough that the progress prints while the last blobs move.
    let proxy = rt.block_on(FaultProxy::start(
        source.addr().parse().unwrap(),
        Faults::default().with_total_rate(2 * 1024 * 1024),
    ));
    let images = Images::push_specs(&source, &proxy.addr().to_string(), &generator::small_set());
    let crane = CraneRegistry::start();
    let env = Env::new();
    let list = images.list.to_str().unwrap();
    let to = format!("{}/mirror", crane.addr());
    let mut cmd = env.airlift(&["mirror", "sync", "--list", list, "--to", &to]);
    cmd.args(["--json", "--progress", "plain", "--jobs", "2"])
        .env("AIRLIFT_PROGRESS_INTERVAL", "0.05");
    let out = run_with_timeout(&mut cmd, RUN_TIMEOUT);
    assert_ok(&out);
    let report = json_report(&out);
    let expected = per_repository_bytes(&images.images);
    let distinct = generator::unique_blob_bytes(&images.images);
    assert!(
        expected > distinct,
        "the set shares no blob across repositories"
    );
    assert_eq!(number(&report, "bytes_transferred"), expected, "{report}");
    assert_eq!(number(&report, "bytes_skipped"), 0, "{report}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("blobs to copy ({})", HumanBytes(distinct))),
        "the plan counts each blob once: {stderr}"
    );
    let lines = progress_lines(&stderr);
    let (_, last_total) = lines.last().expect("progress lines");
    assert_eq!(
        *last_total,
        HumanBytes(expected).to_string(),
        "{}",
        describe(&out)
    );
    for (done, total) in &lines {
        let (done, total) = (parse_human(done), parse_human(total));
        assert!(done <= total, "progress past its total: {}", describe(&out));
    }
    let crane_mounts = crane.log().lines().filter(|l| l.contains("mount=")).count();
    assert!(crane_mounts > 0, "no mount was asked: {}", crane.log());
}

/// `12.50 MiB` as bytes (to the precision shown).
fn parse_human(text: &str) -> f64 {
    let (n, unit) = text.split_once(' ').unwrap_or((text, "B"));
    let n: f64 = n.parse().unwrap_or_else(|_| panic!("not a size: {text}"));
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other} in {text}"),
    };
    n * scale
}

/// The target holds one image; the others share its base layers, which the plan counts as
/// mounted (already present). A front that drops `mount=` makes distribution open an upload
/// (`202`) instead: the blobs are uploaded, and the report counts them as transferred, not
/// as already present.
#[test]
fn ignored_mounts_are_not_counted_as_already_present() {
    let source = TestRegistry::start();
    let images = Images::push_specs(&source, &source.addr(), &generator::small_set());
    let registry = TestRegistry::start();
    let front = free_port();
    let servers = format!(
        "server {{ listen 127.0.0.1:{front}; access_log {{dir}}/front.log airlift;
           location / {{ if ($arg_mount) {{ rewrite ^(.*)$ $1? break; }}
             proxy_pass {}; proxy_set_header Host $http_host; }} }}",
        registry.url(),
    );
    let nginx = Nginx::start(&servers, &[front]);
    let env = Env::new();
    let to = format!("127.0.0.1:{front}/mirror");
    let (first, rest) = images.images.split_at(1);
    let first_list = generator::write_list(env.dir.path(), first, &source.addr());
    assert_ok(&env.sync(&first_list, &to, &["--progress", "none"]));

    let out = env.sync(&images.list, &to, &["--json", "--progress", "none"]);
    assert_ok(&out);
    assert_copied(&registry, &images.images);
    let report = json_report(&out);
    let uploaded: HashSet<&str> = rest
        .iter()
        .flat_map(|g| g.blobs.iter().map(|(d, _)| d.as_str()))
        .collect();
    let skipped: u64 = first[0]
        .blobs
        .iter()
        .filter(|(d, _)| !uploaded.contains(d.as_str()))
        .map(|(_, s)| s)
        .sum();
    assert_eq!(
        number(&report, "bytes_transferred"),
        per_repository_bytes(rest),
        "{report}"
    );
    assert_eq!(number(&report, "bytes_skipped"), skipped, "{report}");
    let ignored = nginx
        .log("front")
        .iter()
        .filter(|l| l.starts_with("POST ") && l.contains("mount=") && l.contains(" 202 "))
        .count();
    assert!(
        ignored > 0,
        "no mount was ignored: {:?}",
        nginx.log("front")
    );
}

/// The same for `bundle load`: the target holds the first image (loaded from a bundle of it),
/// and a front that drops `mount=` makes distribution ignore the mounts of the shared base
/// layers. They are read from the volumes and uploaded; the report counts them as
/// transferred, not as already present.
#[test]
fn bundle_load_counts_ignored_mounts_as_transferred() {
    let source = TestRegistry::start();
    let images = Images::push_specs(&source, &source.addr(), &generator::small_set());
    let registry = TestRegistry::start();
    let front = free_port();
    let servers = format!(
        "server {{ listen 127.0.0.1:{front}; access_log {{dir}}/front.log airlift;
           location / {{ if ($arg_mount) {{ rewrite ^(.*)$ $1? break; }}
             proxy_pass {}; proxy_set_header Host $http_host; }} }}",
        registry.url(),
    );
    let nginx = Nginx::start(&servers, &[front]);
    let env = Env::new();
    let (first, rest) = images.images.split_at(1);
    let first_dir = tempfile::tempdir().unwrap();
    let first_list = generator::write_list(first_dir.path(), first, &source.addr());
    let to = format!("127.0.0.1:{front}/mirror");
    let mut reports = Vec::new();
    for (name, list) in [("first", &first_list), ("all", &images.list)] {
        let bundle = env.path(&format!("{name}.tar.zst"));
        let bundle = bundle.to_str().unwrap();
        let list = list.to_str().unwrap();
        let out = env.run(&["bundle", "create", "--list", list, "-o", bundle]);
        assert_ok(&out);
        let state = env.path(&format!("{name}-state"));
        let state = state.to_str().unwrap();
        let args = ["bundle", "load", bundle, "--to", &to, "--state-dir", state];
        let out = env.run(&[&args[..], &["--json", "--progress", "none"]].concat());
        assert_ok(&out);
        reports.push(json_report(&out));
    }
    assert_copied(&registry, &images.images);
    let uploaded: HashSet<&str> = rest
        .iter()
        .flat_map(|g| g.blobs.iter().map(|(d, _)| d.as_str()))
        .collect();
    let skipped: u64 = first[0]
        .blobs
        .iter()
        .filter(|(d, _)| !uploaded.contains(d.as_str()))
        .map(|(_, s)| s)
        .sum();
    let report = &reports[1];
    assert_eq!(number(report, "bytes_skipped"), skipped, "{report}");
    assert_eq!(
        number(report, "bytes_transferred"),
        per_repository_bytes(rest),
        "{report}"
    );
    let ignored = nginx
        .log("front")
        .iter()
        .filter(|l| l.starts_with("POST ") && l.contains("mount=") && l.contains(" 202 "))
        .count();
    assert!(
        ignored > 0,
        "no mount was ignored: {:?}",
        nginx.log("front")
    );
}
