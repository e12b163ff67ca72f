//! Command-line definitions: plain data for clap, no behaviour. `settings.rs` turns these into
//! the library's options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Move container images across an air gap: mirror them between registries, or carry them on
/// media as content bundles.
#[derive(Debug, Parser)]
#[command(name = "airlift", version, about, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 success, 1 some images failed, 2 usage or input error, \
                        3 integrity error (digest mismatch), 4 images pending (bundle load \
                        --require-complete without every volume), 130 interrupted."
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr: no progress, no summary.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Registry-to-registry mirroring.
    #[command(subcommand)]
    Mirror(MirrorCommand),
    /// Content bundles for air-gap media: create, load, verify, inspect.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Export the digests a registry already holds, for differential bundles.
    Inventory(InventoryArgs),
    /// Check credentials against a registry, then store them in docker's config.json (or its
    /// credential helper), as `docker login` does.
    Login(LoginArgs),
    /// Remove a registry's credentials from docker's config.json (or its credential helper).
    Logout(LogoutArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// `airlift mirror ...`
#[derive(Debug, Subcommand)]
pub enum MirrorCommand {
    /// Copy every image of the lists to a registry, digests unchanged. Re-running transfers
    /// only what the destination lacks.
    Sync(SyncArgs),
    /// Write the configuration that makes a site's runtimes pull from the mirror (containerd,
    /// podman/CRI-O, k3s, OpenShift), a pull secret, or an image map, for the mapping `sync`
    /// used with the same lists and flags.
    Config(MirrorConfigArgs),
    /// Show what of the lists is at the destination: per image `present`, `missing` (with
    /// the blobs still to copy) or `different` (the tag holds another digest). Copies
    /// nothing; exit code 0 only when every image is present. Takes `sync`'s arguments
    /// (`--dry-run` changes nothing).
    Status(SyncArgs),
}

/// `airlift bundle ...`
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Pull the images of the lists into a bundle: one or more zstd-compressed tar volumes
    /// holding an OCI layout. Re-running after an interruption downloads only what is missing.
    Create(BundleCreateArgs),
    /// Push a bundle's images into a registry, streaming from the volumes.
    Load(BundleLoadArgs),
    /// Check every blob's digest and size in the volumes given and that they belong together
    /// (exit code 3 on a problem); which images need volumes not given is reported as
    /// information (exit code 0).
    Verify(BundleVerifyArgs),
    /// List a bundle's images, platforms, sizes and volumes.
    Inspect(BundleInspectArgs),
    /// Serve a bundle's images as a read-only registry, straight from the volumes (no
    /// unpacking): pull with docker, podman, skopeo or containerd until stopped (Ctrl-C or
    /// SIGTERM, exit 0). Images are named as `bundle load` would name them.
    Serve(BundleServeArgs),
}

/// Arguments of `airlift bundle create`.
#[derive(Debug, Args)]
pub struct BundleCreateArgs {
    /// Image list (text or YAML), as for `mirror sync`. Repeatable.
    #[arg(short, long = "list", value_name = "FILE", required = true)]
    pub lists: Vec<PathBuf>,
    /// The bundle file (`release.tar.zst`); several volumes are named `release.001.tar.zst`,
    /// ... Volumes of an older bundle of the same name beyond those written are removed.
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,
    /// Split into volumes of at most this size (`4G`, `700M`).
    #[arg(long, value_name = "SIZE")]
    pub max_volume_size: Option<String>,
    /// zstd compression level (1-19).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub zstd_level: i32,
    /// Leave out blobs listed in this inventory (`airlift inventory -o FILE` at the site).
    #[arg(long, value_name = "FILE")]
    pub exclude_from: Vec<PathBuf>,
    /// Leave out blobs already in this older bundle: any of its volumes, one or several
    /// (`--since old.*.tar.zst` takes them all). Repeatable.
    #[arg(long, value_name = "OLD_BUNDLE", num_args = 1..)]
    pub since: Vec<PathBuf>,
    /// No longer used (volumes are written in one pass); accepted with a warning so that
    /// older scripts keep working.
    #[arg(long, value_name = "DIR", hide = true)]
    pub staging_dir: Option<PathBuf>,
    /// Fetch every image from this registry (a mirror) instead of the one its reference
    /// names, mapped as `mirror sync --to` maps (with --keep-host/--flatten); the bundle
    /// still records the names as listed.
    #[arg(long, value_name = "REGISTRY[/PREFIX]")]
    pub from: Option<String>,
    #[command(flatten)]
    pub mapping: MappingArgs,
    #[command(flatten)]
    pub transfer: TransferArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub output_args: OutputArgs,
    /// Print the plan without downloading.
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `airlift bundle load`.
#[derive(Debug, Args)]
pub struct BundleLoadArgs {
    /// Volume files, in any order.
    #[arg(required = true, value_name = "VOLUME", value_hint = clap::ValueHint::FilePath)]
    pub volumes: Vec<PathBuf>,
    /// Destination `REGISTRY[/PREFIX]`.
    #[arg(long, value_name = "REGISTRY[/PREFIX]", required = true)]
    pub to: String,
    #[command(flatten)]
    pub mapping: MappingArgs,
    #[command(flatten)]
    pub transfer: TransferArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Where parts of blobs split across volumes wait for their other parts (default
    /// `$XDG_CACHE_HOME/airlift/load`, else `~/.cache/airlift/load`). Removable once every
    /// volume is loaded.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Print the plan without pushing.
    #[arg(long)]
    pub dry_run: bool,
    /// Exit with code 4 when some images still wait for volumes not given (by default
    /// loading some volumes only is success: those images are reported as pending).
    #[arg(long)]
    pub require_complete: bool,
}

/// Arguments of `airlift bundle verify`.
#[derive(Debug, Args)]
pub struct BundleVerifyArgs {
    /// Volume files.
    #[arg(required = true, value_name = "VOLUME", value_hint = clap::ValueHint::FilePath)]
    pub volumes: Vec<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `airlift bundle inspect`.
#[derive(Debug, Args)]
pub struct BundleInspectArgs {
    /// Volume files.
    #[arg(required = true, value_name = "VOLUME", value_hint = clap::ValueHint::FilePath)]
    pub volumes: Vec<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `airlift bundle serve`.
#[derive(Debug, Args)]
pub struct BundleServeArgs {
    /// Volume files, in any order; images that need a volume not given are not served.
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<PathBuf>,
    /// Address to listen on, e.g. `0.0.0.0:5000`; port 0 picks a free port (printed).
    #[arg(long, value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve every image under this path (`mirror/site` serves `mirror/site/<source path>`),
    /// as `bundle load --to REGISTRY/PREFIX` would place it.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Keep the source registry host as the first path component
    /// (`PREFIX/k8s.gcr.io/pause:3.10`).
    #[arg(long, conflicts_with = "flatten")]
    pub keep_host: bool,
    /// Keep only the last path component (`PREFIX/pause:3.10`).
    #[arg(long)]
    pub flatten: bool,
}

/// Arguments of `airlift inventory`.
#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// The registry (and optional prefix) to list.
    #[arg(long, value_name = "REGISTRY[/PREFIX]")]
    pub registry: String,
    /// Where to write the inventory (JSON).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Instead of the catalog (which Harbor, for one, allows admins only), list the
    /// repositories these image lists map to at REGISTRY[/PREFIX], as `mirror sync --to
    /// REGISTRY[/PREFIX]` places them. Repeatable.
    #[arg(short, long = "list", value_name = "FILE")]
    pub lists: Vec<PathBuf>,
    #[command(flatten)]
    pub registry_args: RegistryArgs,
}

/// Arguments of `airlift mirror sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Image list: plain text (one reference per line, optional `SOURCE TARGET`) or YAML
    /// (`.yaml`/`.yml`). Repeatable.
    #[arg(short, long = "list", value_name = "FILE", required = true)]
    pub lists: Vec<PathBuf>,
    /// Destination `REGISTRY[/PREFIX]`; images land at `REGISTRY/PREFIX/<source path>:<tag>`.
    /// Overrides a YAML list's `target`.
    #[arg(long, value_name = "REGISTRY[/PREFIX]")]
    pub to: Option<String>,
    #[command(flatten)]
    pub mapping: MappingArgs,
    #[command(flatten)]
    pub transfer: TransferArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Resolve everything and print the plan (images, blobs and bytes to copy, bytes already
    /// present) without copying.
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `airlift mirror config`.
#[derive(Debug, Args)]
pub struct MirrorConfigArgs {
    /// What to write.
    #[arg(long = "for", value_enum, value_name = "RUNTIME")]
    pub runtime: SiteRuntime,
    /// Image list, as for `mirror sync`. Repeatable.
    #[arg(short, long = "list", value_name = "FILE", required = true)]
    pub lists: Vec<PathBuf>,
    /// The mirror `REGISTRY[/PREFIX]`, as given to `mirror sync --to`.
    #[arg(long, value_name = "REGISTRY[/PREFIX]")]
    pub to: Option<String>,
    #[command(flatten)]
    pub mapping: MappingArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Write into DIR (created if needed); `-` or none prints on stdout when the output is
    /// one file.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// containers: use the mirror only for pulls by digest (`mirror-by-digest-only`).
    #[arg(long)]
    pub mirror_by_digest_only: bool,
    /// k3s: include the mirror's credentials in `configs` (the file is then written 0600).
    #[arg(long)]
    pub with_credentials: bool,
    /// openshift: also write an ImageTagMirrorSet, so pulls by tag use the mirror too.
    #[arg(long)]
    pub tags: bool,
    /// image-map: look every image up on the mirror and add its digest.
    #[arg(long)]
    pub digests: bool,
    /// pull-secret, openshift: the resource's name [default: airlift-mirror].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// pull-secret: the secret's namespace.
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

/// What `mirror config` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SiteRuntime {
    /// containerd hosts directory: DIR/<source host>/hosts.toml.
    Containerd,
    /// registries.conf.d drop-in for podman, CRI-O, buildah and skopeo.
    Containers,
    /// k3s and RKE2 registries.yaml.
    K3s,
    /// OpenShift ImageDigestMirrorSet (and ImageTagMirrorSet with --tags).
    Openshift,
    /// Kubernetes Secret (kubernetes.io/dockerconfigjson) with the mirror's credentials.
    PullSecret,
    /// Source -> target of every image, as JSON and as a Kustomize images: list.
    ImageMap,
}

/// How source paths map onto the destination.
#[derive(Debug, Args)]
pub struct MappingArgs {
    /// Keep the source registry host as the first path component
    /// (`REGISTRY/PREFIX/k8s.gcr.io/pause:3.10`).
    #[arg(long, conflicts_with = "flatten")]
    pub keep_host: bool,
    /// Keep only the last path component (`REGISTRY/PREFIX/pause:3.10`).
    #[arg(long)]
    pub flatten: bool,
    /// Keep only these platforms of multi-arch images (`os/arch[/variant]`, repeatable or
    /// comma-separated). The index is rewritten, so its digest changes.
    #[arg(
        long = "platform",
        value_name = "OS/ARCH[/VARIANT]",
        value_delimiter = ','
    )]
    pub platforms: Vec<String>,
}

/// Transfer tuning.
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Blobs transferred at once, across all images [default: 8, or `jobs` in the config
    /// file].
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Stop at the first failed image instead of finishing the others.
    #[arg(long, conflicts_with = "keep_going")]
    pub fail_fast: bool,
    /// Finish the other images when one fails (the default). `bundle create` then also
    /// writes a bundle without the entries that failed, recording them as missing; without
    /// this flag it writes no bundle when any entry failed.
    #[arg(long)]
    pub keep_going: bool,
    /// Attempts per blob after the first, for transient failures [default: 4, or `retries`
    /// in the config file].
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Retries allowed in the whole run; once spent, failures are final (a registry that
    /// stays down fails its images instead of being retried blob after blob).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub retry_budget: u64,
    /// Per-request timeout, and how long a transfer may go without receiving a byte before
    /// it counts as stalled and is retried (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
    /// Which signatures, attestations and SBOMs (OCI referrers, cosign's tags) travel with
    /// the images: `all`, `signatures` (cosign and notation signatures and attestations) or
    /// `none`.
    #[arg(long, value_name = "POLICY", default_value = "all", value_parser = ["none", "signatures", "all"])]
    pub referrers: String,
    /// Carry only referrers of this artifact type (repeatable), e.g.
    /// `application/vnd.cncf.notary.signature`.
    #[arg(long = "referrer-type", value_name = "ARTIFACT_TYPE")]
    pub referrer_types: Vec<String>,
    /// Slowest download accepted, in bytes per second over 30 seconds (e.g. `4K`; `0` turns
    /// the check off): a registry that trickles a blob counts as stalled and is retried,
    /// where `--timeout` alone only catches silence.
    #[arg(long, value_name = "RATE", default_value = "4K")]
    pub min_rate: String,
}

/// Registry connection options.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker's
    /// `--insecure-registry` (loopback registries always are). Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
    /// Trust the CA certificates in FILE (PEM) for every registry, besides the system's.
    /// Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable.
    #[arg(long = "ca-file", value_name = "FILE")]
    pub ca_files: Vec<PathBuf>,
    /// Read credentials from FILE (podman/skopeo `auth.json`, or docker's `config.json`)
    /// before docker's and podman's usual files. Repeatable.
    #[arg(long = "authfile", value_name = "FILE")]
    pub authfiles: Vec<PathBuf>,
}

/// Arguments of `airlift login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry, `HOST[:PORT]` (`docker.io` for Docker Hub).
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
    /// User name.
    #[arg(short, long)]
    pub username: String,
    /// Read the password (or token) from standard input.
    #[arg(long, conflicts_with = "password")]
    pub password_stdin: bool,
    /// The password on the command line: visible to other users and kept in shell history;
    /// prefer --password-stdin.
    #[arg(short, long)]
    pub password: Option<String>,
    #[command(flatten)]
    pub registry_args: RegistryArgs,
}

/// Arguments of `airlift logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry, `HOST[:PORT]`.
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
}

/// Output options.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print one JSON report on stdout at the end.
    #[arg(long)]
    pub json: bool,
    /// Progress display: bars on a terminal, periodic log lines otherwise.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
}

/// Progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, plain lines otherwise.
    Auto,
    /// Progress bars.
    Bars,
    /// Plain periodic log lines.
    Plain,
    /// Nothing.
    None,
}

/// Arguments of `airlift completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sync_flags_parse() {
        let cli = Cli::try_parse_from([
            "airlift",
            "mirror",
            "sync",
            "-l",
            "a.txt",
            "--list",
            "b.yaml",
            "--to",
            "r:5000/m",
            "--platform",
            "linux/amd64,linux/arm64",
            "--jobs",
            "3",
            "--flatten",
            "--json",
        ])
        .unwrap();
        let Command::Mirror(MirrorCommand::Sync(s)) = cli.command else {
            panic!()
        };
        assert_eq!(s.lists.len(), 2);
        assert_eq!(s.mapping.platforms, ["linux/amd64", "linux/arm64"]);
        assert_eq!(s.transfer.jobs, Some(3));
        assert!(s.mapping.flatten && s.output.json);
    }

    #[test]
    fn mirror_config_flags_parse() {
        let cli = Cli::try_parse_from([
            "airlift",
            "mirror",
            "config",
            "--for",
            "pull-secret",
            "-l",
            "a.txt",
            "--to",
            "r:5000/m",
            "--keep-host",
            "-o",
            "-",
            "--name",
            "defreg",
            "--namespace",
            "hce",
        ])
        .unwrap();
        let Command::Mirror(MirrorCommand::Config(c)) = cli.command else {
            panic!()
        };
        assert_eq!(c.runtime, SiteRuntime::PullSecret);
        assert!(c.mapping.keep_host);
        assert_eq!(c.output, Some(PathBuf::from("-")));
        assert_eq!(
            (c.name.as_deref(), c.namespace.as_deref()),
            (Some("defreg"), Some("hce"))
        );
        for runtime in ["containerd", "containers", "k3s", "openshift", "image-map"] {
            assert!(
                Cli::try_parse_from(["airlift", "mirror", "config", "--for", runtime, "-l", "a"])
                    .is_ok(),
                "{runtime}"
            );
        }
        assert!(
            Cli::try_parse_from(["airlift", "mirror", "config", "--for", "docker", "-l", "a"])
                .is_err()
        );
    }

    #[test]
    fn registry_and_login_flags_parse() {
        let cli = Cli::try_parse_from([
            "airlift",
            "mirror",
            "sync",
            "-l",
            "a",
            "--ca-file",
            "a.pem",
            "--ca-file",
            "b.pem",
            "--authfile",
            "auth.json",
        ])
        .unwrap();
        let Command::Mirror(MirrorCommand::Sync(s)) = cli.command else {
            panic!()
        };
        assert_eq!(s.registry.ca_files.len(), 2);
        assert_eq!(s.registry.authfiles, [PathBuf::from("auth.json")]);
        assert_eq!(s.transfer.jobs, None);

        let cli = Cli::try_parse_from([
            "airlift",
            "login",
            "reg:5000",
            "-u",
            "me",
            "--password-stdin",
        ])
        .unwrap();
        let Command::Login(l) = cli.command else {
            panic!()
        };
        assert!(l.password_stdin && l.password.is_none());
        assert!(
            Cli::try_parse_from([
                "airlift",
                "login",
                "r",
                "-u",
                "me",
                "--password-stdin",
                "-p",
                "x"
            ])
            .is_err()
        );
    }

    #[test]
    fn serve_flags_parse() {
        let cli = Cli::try_parse_from([
            "airlift",
            "bundle",
            "serve",
            "a.001.tar.zst",
            "a.002.tar.zst",
            "--listen",
            "127.0.0.1:0",
            "--prefix",
            "mirror/site",
            "--flatten",
        ])
        .unwrap();
        let Command::Bundle(BundleCommand::Serve(s)) = cli.command else {
            panic!()
        };
        assert_eq!(s.volumes.len(), 2);
        assert_eq!(s.listen.to_string(), "127.0.0.1:0");
        assert!(s.flatten && !s.keep_host && s.tls_cert.is_none());
        let serve = |extra: &[&str]| {
            let mut args = vec!["airlift", "bundle", "serve", "a.tar.zst"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args)
        };
        // --listen is required and must be an address; TLS needs both files.
        assert!(serve(&[]).is_err());
        assert!(serve(&["--listen", "localhost"]).is_err());
        assert!(serve(&["--listen", "[::1]:5000", "--tls-cert", "c.pem"]).is_err());
        assert!(serve(&["--listen", "[::1]:5000", "--tls-key", "k.pem"]).is_err());
        assert!(
            serve(&[
                "--listen",
                "[::1]:5000",
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem"
            ])
            .is_ok()
        );
        assert!(serve(&["--listen", "0.0.0.0:5000", "--keep-host", "--flatten"]).is_err());
    }

    #[test]
    fn conflicting_mapping_flags_are_refused() {
        let r = Cli::try_parse_from([
            "airlift",
            "mirror",
            "sync",
            "-l",
            "a",
            "--keep-host",
            "--flatten",
        ]);
        assert!(r.is_err());
    }
}
