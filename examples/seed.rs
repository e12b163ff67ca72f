//! Seeds a registry with generated test images and writes their image list.
//!
//! `cargo run --release --example seed -- --registry 127.0.0.1:5000 --set
//! release|release-like|small [--scale F] [--big-layer-mib N] --list-out FILE
//! [--skopeo-yaml FILE]` pushes the chosen set (plus, with `--big-layer-mib`, one image
//! with a single layer of that many MiB) from the
//! integration tests' generator (compiled in through `#[path]`, not copied), writes a plain
//! text list (`REGISTRY/REPO:TAG` per line) and optionally a `skopeo sync --src yaml` file
//! naming the same images. Used by `scripts/demo.sh` and `bench/bench.sh`.

#[allow(dead_code)]
#[path = "../tests/it/support/gen.rs"]
mod r#gen;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: seed --registry HOST:PORT --set release|release-like|small [--scale F] [--big-layer-mib N] --list-out FILE [--skopeo-yaml FILE]";

fn main() -> ExitCode {
    let mut registry = None;
    let mut set = None;
    let mut scale = 1.0f64;
    let mut list_out = None;
    let mut skopeo_yaml = None;
    let mut big_layer_mib = 0u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        let parsed: Result<(), String> = match arg.as_str() {
            "--registry" => value().map(|v| registry = Some(v)),
            "--set" => value().map(|v| set = Some(v)),
            "--scale" => value().and_then(|v| {
                v.parse()
                    .map(|f| scale = f)
                    .map_err(|e| format!("--scale {v}: {e}"))
            }),
            "--big-layer-mib" => value().and_then(|v| {
                v.parse()
                    .map(|n| big_layer_mib = n)
                    .map_err(|e| format!("--big-layer-mib {v}: {e}"))
            }),
            "--list-out" => value().map(|v| list_out = Some(PathBuf::from(v))),
            "--skopeo-yaml" => value().map(|v| skopeo_yaml = Some(PathBuf::from(v))),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => Err(format!("unknown argument `{other}`")),
        };
        if let Err(e) = parsed {
            eprintln!("seed: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let (Some(registry), Some(set), Some(list_out)) = (registry, set, list_out) else {
        eprintln!("seed: --registry, --set and --list-out are required\n{USAGE}");
        return ExitCode::from(2);
    };
    let mut specs = match set.as_str() {
        "small" => r#gen::small_set(),
        "release" => r#gen::release_set(scale),
        "release-like" => r#gen::release_like_set(scale),
        other => {
            eprintln!("seed: unknown set `{other}` (small, release or release-like)");
            return ExitCode::from(2);
        }
    };
    if big_layer_mib > 0 {
        specs.push(r#gen::big_layer_image(big_layer_mib));
    }

    let started = Instant::now();
    let images = r#gen::push(&registry, &specs);
    let seconds = started.elapsed().as_secs_f64();

    let dir = tempfile::tempdir().expect("tempdir");
    let written = r#gen::write_list(dir.path(), &images, &registry);
    std::fs::copy(&written, &list_out)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", list_out.display()));
    if let Some(path) = skopeo_yaml {
        let mut repos: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for image in &images {
            repos.entry(&image.repository).or_default().push(&image.tag);
        }
        let mut yaml = format!("{registry}:\n  tls-verify: false\n  images:\n");
        for (repo, tags) in repos {
            let tags: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
            yaml.push_str(&format!("    {repo}: [{}]\n", tags.join(", ")));
        }
        std::fs::write(&path, yaml)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
    let unique = r#gen::unique_blob_bytes(&images);
    println!(
        "seeded {} images ({} unique blob bytes, {:.1} MB) to {registry} in {seconds:.1} s; list: {}",
        images.len(),
        unique,
        unique as f64 / 1e6,
        list_out.display()
    );
    ExitCode::SUCCESS
}
