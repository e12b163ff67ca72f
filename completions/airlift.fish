# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_airlift_global_optspecs
    string join \n v/verbose q/quiet h/help V/version
end

function __fish_airlift_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_airlift_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_airlift_using_subcommand
    set -l cmd (__fish_airlift_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c airlift -n "__fish_airlift_needs_command" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
complete -c airlift -n "__fish_airlift_needs_command" -s q -l quiet -d 'Only errors on stderr: no progress, no summary'
complete -c airlift -n "__fish_airlift_needs_command" -s h -l help -d 'Print help'
complete -c airlift -n "__fish_airlift_needs_command" -s V -l version -d 'Print version'
complete -c airlift -n "__fish_airlift_needs_command" -f -a "mirror" -d 'Registry-to-registry mirroring'
complete -c airlift -n "__fish_airlift_needs_command" -f -a "bundle" -d 'Content bundles for air-gap media: create, load, verify, inspect'
complete -c airlift -n "__fish_airlift_needs_command" -f -a "inventory" -d 'Export the digests a registry already holds, for differential bundles'
complete -c airlift -n "__fish_airlift_needs_command" -f -a "login" -d 'Check credentials against a registry, then store them in docker\'s config.json (or its credential helper), as `docker login` does'
complete -c airlift -n "__fish_airlift_needs_command" -f -a "logout" -d 'Remove a registry\'s credentials from docker\'s config.json (or its credential helper)'
complete -c airlift -n "__fish_airlift_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c airlift -n "__fish_airlift_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and not __fish_seen_subcommand_from sync config status help" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and not __fish_seen_subcommand_from sync config status help" -s q -l quiet -d 'Only errors on stderr: no progress, no summary'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and not __fish_seen_subcommand_from sync config status help" -s h -l help -d 'Print help'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and not __fish_seen_subcommand_from sync config status help" -s V -l version -d 'Print version'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and not __fish_seen_subcommand_from sync config status help" -f -a "sync" -d 'Copy every image of the lists to a registry, digests unchanged. Re-running transfers only what the destination lacks'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and not __fish_seen_subcommand_from sync config status help" -f -a "config" -d 'Write the configuration that makes a site\'s runtimes pull from the mirror (containerd, podman/CRI-O, k3s, OpenShift), a pull secret, or an image map, for the mapping `sync` used with the same lists and flags'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and not __fish_seen_subcommand_from sync config status help" -f -a "status" -d 'Show what of the lists is at the destination: per image `present`, `missing` (with the blobs still to copy) or `different` (the tag holds another digest). Copies nothing; exit code 0 only when every image is present. Takes `sync`\'s arguments (`--dry-run` changes nothing)'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and not __fish_seen_subcommand_from sync config status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -s l -l list -d 'Image list: plain text (one reference per line, optional `SOURCE TARGET`) or YAML (`.yaml`/`.yml`). Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -l to -d 'Destination `REGISTRY[/PREFIX]`; images land at `REGISTRY/PREFIX/<source path>:<tag>`. Overrides a YAML list\'s `target`' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -l platform -d 'Keep only these platforms of multi-arch images (`os/arch[/variant]`, repeatable or comma-separated). The index is rewritten, so its digest changes' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -s j -l jobs -d 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -l retries -d 'Attempts per blob after the first, for transient failures [default: 4, or `retries` in the config file]' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -l retry-budget -d 'Retries allowed in the whole run; once spent, failures are final (a registry that stays down fails its images instead of being retried blob after blob)' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -l timeout -d 'Per-request timeout, and how long a transfer may go without receiving a byte before it counts as stalled and is retried (seconds)' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -l referrers -d 'Which signatures, attestations and SBOMs (OCI referrers, cosign\'s tags) travel with the images: `all`, `signatures` (cosign and notation signatures and attestations) or `none`' -r -f -a "none\t''
signatures\t''
all\t''"
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -l referrer-type -d 'Carry only referrers of this artifact type (repeatable), e.g. `application/vnd.cncf.notary.signature`' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -l min-rate -d 'Slowest download accepted, in bytes per second over 30 seconds (e.g. `4K`; `0` turns the check off): a registry that trickles a blob counts as stalled and is retried, where `--timeout` alone only catches silence' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -l insecure-registry -d 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker\'s `--insecure-registry` (loopback registries always are). Repeatable' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -l ca-file -d 'Trust the CA certificates in FILE (PEM) for every registry, besides the system\'s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -l authfile -d 'Read credentials from FILE (podman/skopeo `auth.json`, or docker\'s `config.json`) before docker\'s and podman\'s usual files. Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -l progress -d 'Progress display: bars on a terminal, periodic log lines otherwise' -r -f -a "auto\t'Bars when stderr is a terminal, plain lines otherwise'
bars\t'Progress bars'
plain\t'Plain periodic log lines'
none\t'Nothing'"
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -l keep-host -d 'Keep the source registry host as the first path component (`REGISTRY/PREFIX/k8s.gcr.io/pause:3.10`)'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -l flatten -d 'Keep only the last path component (`REGISTRY/PREFIX/pause:3.10`)'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -l fail-fast -d 'Stop at the first failed image instead of finishing the others'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -l keep-going -d 'Finish the other images when one fails (the default). `bundle create` then also writes a bundle without the entries that failed, recording them as missing; without this flag it writes no bundle when any entry failed'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -l json -d 'Print one JSON report on stdout at the end'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -l dry-run -d 'Resolve everything and print the plan (images, blobs and bytes to copy, bytes already present) without copying'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -s q -l quiet -d 'Only errors on stderr: no progress, no summary'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from sync" -s V -l version -d 'Print version'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -l for -d 'What to write' -r -f -a "containerd\t'containerd hosts directory: DIR/<source host>/hosts.toml'
containers\t'registries.conf.d drop-in for podman, CRI-O, buildah and skopeo'
k3s\t'k3s and RKE2 registries.yaml'
openshift\t'OpenShift ImageDigestMirrorSet (and ImageTagMirrorSet with --tags)'
pull-secret\t'Kubernetes Secret (kubernetes.io/dockerconfigjson) with the mirror\'s credentials'
image-map\t'Source -> target of every image, as JSON and as a Kustomize images: list'"
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -s l -l list -d 'Image list, as for `mirror sync`. Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -l to -d 'The mirror `REGISTRY[/PREFIX]`, as given to `mirror sync --to`' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -l platform -d 'Keep only these platforms of multi-arch images (`os/arch[/variant]`, repeatable or comma-separated). The index is rewritten, so its digest changes' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -l insecure-registry -d 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker\'s `--insecure-registry` (loopback registries always are). Repeatable' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -l ca-file -d 'Trust the CA certificates in FILE (PEM) for every registry, besides the system\'s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -l authfile -d 'Read credentials from FILE (podman/skopeo `auth.json`, or docker\'s `config.json`) before docker\'s and podman\'s usual files. Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -s o -l output -d 'Write into DIR (created if needed); `-` or none prints on stdout when the output is one file' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -l name -d 'pull-secret, openshift: the resource\'s name [default: airlift-mirror]' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -l namespace -d 'pull-secret: the secret\'s namespace' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -l keep-host -d 'Keep the source registry host as the first path component (`REGISTRY/PREFIX/k8s.gcr.io/pause:3.10`)'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -l flatten -d 'Keep only the last path component (`REGISTRY/PREFIX/pause:3.10`)'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -l mirror-by-digest-only -d 'containers: use the mirror only for pulls by digest (`mirror-by-digest-only`)'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -l with-credentials -d 'k3s: include the mirror\'s credentials in `configs` (the file is then written 0600)'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -l tags -d 'openshift: also write an ImageTagMirrorSet, so pulls by tag use the mirror too'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -l digests -d 'image-map: look every image up on the mirror and add its digest'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -s q -l quiet -d 'Only errors on stderr: no progress, no summary'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from config" -s V -l version -d 'Print version'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -s l -l list -d 'Image list: plain text (one reference per line, optional `SOURCE TARGET`) or YAML (`.yaml`/`.yml`). Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -l to -d 'Destination `REGISTRY[/PREFIX]`; images land at `REGISTRY/PREFIX/<source path>:<tag>`. Overrides a YAML list\'s `target`' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -l platform -d 'Keep only these platforms of multi-arch images (`os/arch[/variant]`, repeatable or comma-separated). The index is rewritten, so its digest changes' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -s j -l jobs -d 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -l retries -d 'Attempts per blob after the first, for transient failures [default: 4, or `retries` in the config file]' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -l retry-budget -d 'Retries allowed in the whole run; once spent, failures are final (a registry that stays down fails its images instead of being retried blob after blob)' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -l timeout -d 'Per-request timeout, and how long a transfer may go without receiving a byte before it counts as stalled and is retried (seconds)' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -l referrers -d 'Which signatures, attestations and SBOMs (OCI referrers, cosign\'s tags) travel with the images: `all`, `signatures` (cosign and notation signatures and attestations) or `none`' -r -f -a "none\t''
signatures\t''
all\t''"
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -l referrer-type -d 'Carry only referrers of this artifact type (repeatable), e.g. `application/vnd.cncf.notary.signature`' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -l min-rate -d 'Slowest download accepted, in bytes per second over 30 seconds (e.g. `4K`; `0` turns the check off): a registry that trickles a blob counts as stalled and is retried, where `--timeout` alone only catches silence' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -l insecure-registry -d 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker\'s `--insecure-registry` (loopback registries always are). Repeatable' -r
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -l ca-file -d 'Trust the CA certificates in FILE (PEM) for every registry, besides the system\'s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -l authfile -d 'Read credentials from FILE (podman/skopeo `auth.json`, or docker\'s `config.json`) before docker\'s and podman\'s usual files. Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -l progress -d 'Progress display: bars on a terminal, periodic log lines otherwise' -r -f -a "auto\t'Bars when stderr is a terminal, plain lines otherwise'
bars\t'Progress bars'
plain\t'Plain periodic log lines'
none\t'Nothing'"
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -l keep-host -d 'Keep the source registry host as the first path component (`REGISTRY/PREFIX/k8s.gcr.io/pause:3.10`)'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -l flatten -d 'Keep only the last path component (`REGISTRY/PREFIX/pause:3.10`)'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -l fail-fast -d 'Stop at the first failed image instead of finishing the others'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -l keep-going -d 'Finish the other images when one fails (the default). `bundle create` then also writes a bundle without the entries that failed, recording them as missing; without this flag it writes no bundle when any entry failed'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -l json -d 'Print one JSON report on stdout at the end'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -l dry-run -d 'Resolve everything and print the plan (images, blobs and bytes to copy, bytes already present) without copying'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Only errors on stderr: no progress, no summary'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from help" -f -a "sync" -d 'Copy every image of the lists to a registry, digests unchanged. Re-running transfers only what the destination lacks'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from help" -f -a "config" -d 'Write the configuration that makes a site\'s runtimes pull from the mirror (containerd, podman/CRI-O, k3s, OpenShift), a pull secret, or an image map, for the mapping `sync` used with the same lists and flags'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from help" -f -a "status" -d 'Show what of the lists is at the destination: per image `present`, `missing` (with the blobs still to copy) or `different` (the tag holds another digest). Copies nothing; exit code 0 only when every image is present. Takes `sync`\'s arguments (`--dry-run` changes nothing)'
complete -c airlift -n "__fish_airlift_using_subcommand mirror; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and not __fish_seen_subcommand_from create load verify inspect serve help" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and not __fish_seen_subcommand_from create load verify inspect serve help" -s q -l quiet -d 'Only errors on stderr: no progress, no summary'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and not __fish_seen_subcommand_from create load verify inspect serve help" -s h -l help -d 'Print help'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and not __fish_seen_subcommand_from create load verify inspect serve help" -s V -l version -d 'Print version'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and not __fish_seen_subcommand_from create load verify inspect serve help" -f -a "create" -d 'Pull the images of the lists into a bundle: one or more zstd-compressed tar volumes holding an OCI layout. Re-running after an interruption downloads only what is missing'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and not __fish_seen_subcommand_from create load verify inspect serve help" -f -a "load" -d 'Push a bundle\'s images into a registry, streaming from the volumes'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and not __fish_seen_subcommand_from create load verify inspect serve help" -f -a "verify" -d 'Check every blob\'s digest and size in the volumes given and that they belong together (exit code 3 on a problem); which images need volumes not given is reported as information (exit code 0)'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and not __fish_seen_subcommand_from create load verify inspect serve help" -f -a "inspect" -d 'List a bundle\'s images, platforms, sizes and volumes'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and not __fish_seen_subcommand_from create load verify inspect serve help" -f -a "serve" -d 'Serve a bundle\'s images as a read-only registry, straight from the volumes (no unpacking): pull with docker, podman, skopeo or containerd until stopped (Ctrl-C or SIGTERM, exit 0). Images are named as `bundle load` would name them'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and not __fish_seen_subcommand_from create load verify inspect serve help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -s l -l list -d 'Image list (text or YAML), as for `mirror sync`. Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -s o -l output -d 'The bundle file (`release.tar.zst`); several volumes are named `release.001.tar.zst`, ... Volumes of an older bundle of the same name beyond those written are removed' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l max-volume-size -d 'Split into volumes of at most this size (`4G`, `700M`)' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l zstd-level -d 'zstd compression level (1-19)' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l exclude-from -d 'Leave out blobs listed in this inventory (`airlift inventory -o FILE` at the site)' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l since -d 'Leave out blobs already in this older bundle: any of its volumes, one or several (`--since old.*.tar.zst` takes them all). Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l staging-dir -d 'No longer used (volumes are written in one pass); accepted with a warning so that older scripts keep working' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l from -d 'Fetch every image from this registry (a mirror) instead of the one its reference names, mapped as `mirror sync --to` maps (with --keep-host/--flatten); the bundle still records the names as listed' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l platform -d 'Keep only these platforms of multi-arch images (`os/arch[/variant]`, repeatable or comma-separated). The index is rewritten, so its digest changes' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -s j -l jobs -d 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l retries -d 'Attempts per blob after the first, for transient failures [default: 4, or `retries` in the config file]' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l retry-budget -d 'Retries allowed in the whole run; once spent, failures are final (a registry that stays down fails its images instead of being retried blob after blob)' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l timeout -d 'Per-request timeout, and how long a transfer may go without receiving a byte before it counts as stalled and is retried (seconds)' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l referrers -d 'Which signatures, attestations and SBOMs (OCI referrers, cosign\'s tags) travel with the images: `all`, `signatures` (cosign and notation signatures and attestations) or `none`' -r -f -a "none\t''
signatures\t''
all\t''"
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l referrer-type -d 'Carry only referrers of this artifact type (repeatable), e.g. `application/vnd.cncf.notary.signature`' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l min-rate -d 'Slowest download accepted, in bytes per second over 30 seconds (e.g. `4K`; `0` turns the check off): a registry that trickles a blob counts as stalled and is retried, where `--timeout` alone only catches silence' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l insecure-registry -d 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker\'s `--insecure-registry` (loopback registries always are). Repeatable' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l ca-file -d 'Trust the CA certificates in FILE (PEM) for every registry, besides the system\'s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l authfile -d 'Read credentials from FILE (podman/skopeo `auth.json`, or docker\'s `config.json`) before docker\'s and podman\'s usual files. Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l progress -d 'Progress display: bars on a terminal, periodic log lines otherwise' -r -f -a "auto\t'Bars when stderr is a terminal, plain lines otherwise'
bars\t'Progress bars'
plain\t'Plain periodic log lines'
none\t'Nothing'"
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l keep-host -d 'Keep the source registry host as the first path component (`REGISTRY/PREFIX/k8s.gcr.io/pause:3.10`)'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l flatten -d 'Keep only the last path component (`REGISTRY/PREFIX/pause:3.10`)'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l fail-fast -d 'Stop at the first failed image instead of finishing the others'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l keep-going -d 'Finish the other images when one fails (the default). `bundle create` then also writes a bundle without the entries that failed, recording them as missing; without this flag it writes no bundle when any entry failed'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l json -d 'Print one JSON report on stdout at the end'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -l dry-run -d 'Print the plan without downloading'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Only errors on stderr: no progress, no summary'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l to -d 'Destination `REGISTRY[/PREFIX]`' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l platform -d 'Keep only these platforms of multi-arch images (`os/arch[/variant]`, repeatable or comma-separated). The index is rewritten, so its digest changes' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -s j -l jobs -d 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l retries -d 'Attempts per blob after the first, for transient failures [default: 4, or `retries` in the config file]' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l retry-budget -d 'Retries allowed in the whole run; once spent, failures are final (a registry that stays down fails its images instead of being retried blob after blob)' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l timeout -d 'Per-request timeout, and how long a transfer may go without receiving a byte before it counts as stalled and is retried (seconds)' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l referrers -d 'Which signatures, attestations and SBOMs (OCI referrers, cosign\'s tags) travel with the images: `all`, `signatures` (cosign and notation signatures and attestations) or `none`' -r -f -a "none\t''
signatures\t''
all\t''"
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l referrer-type -d 'Carry only referrers of this artifact type (repeatable), e.g. `application/vnd.cncf.notary.signature`' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l min-rate -d 'Slowest download accepted, in bytes per second over 30 seconds (e.g. `4K`; `0` turns the check off): a registry that trickles a blob counts as stalled and is retried, where `--timeout` alone only catches silence' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l insecure-registry -d 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker\'s `--insecure-registry` (loopback registries always are). Repeatable' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l ca-file -d 'Trust the CA certificates in FILE (PEM) for every registry, besides the system\'s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l authfile -d 'Read credentials from FILE (podman/skopeo `auth.json`, or docker\'s `config.json`) before docker\'s and podman\'s usual files. Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l progress -d 'Progress display: bars on a terminal, periodic log lines otherwise' -r -f -a "auto\t'Bars when stderr is a terminal, plain lines otherwise'
bars\t'Progress bars'
plain\t'Plain periodic log lines'
none\t'Nothing'"
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l state-dir -d 'Where parts of blobs split across volumes wait for their other parts (default `$XDG_CACHE_HOME/airlift/load`, else `~/.cache/airlift/load`). Removable once every volume is loaded' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l keep-host -d 'Keep the source registry host as the first path component (`REGISTRY/PREFIX/k8s.gcr.io/pause:3.10`)'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l flatten -d 'Keep only the last path component (`REGISTRY/PREFIX/pause:3.10`)'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l fail-fast -d 'Stop at the first failed image instead of finishing the others'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l keep-going -d 'Finish the other images when one fails (the default). `bundle create` then also writes a bundle without the entries that failed, recording them as missing; without this flag it writes no bundle when any entry failed'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l json -d 'Print one JSON report on stdout at the end'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l dry-run -d 'Print the plan without pushing'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -l require-complete -d 'Exit with code 4 when some images still wait for volumes not given (by default loading some volumes only is success: those images are reported as pending)'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -s q -l quiet -d 'Only errors on stderr: no progress, no summary'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from load" -s V -l version -d 'Print version'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from verify" -l json -d 'Print the result as JSON'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from verify" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from verify" -s q -l quiet -d 'Only errors on stderr: no progress, no summary'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from verify" -s V -l version -d 'Print version'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from inspect" -l json -d 'Print JSON'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from inspect" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from inspect" -s q -l quiet -d 'Only errors on stderr: no progress, no summary'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from inspect" -s h -l help -d 'Print help'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from inspect" -s V -l version -d 'Print version'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from serve" -l listen -d 'Address to listen on, e.g. `0.0.0.0:5000`; port 0 picks a free port (printed)' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from serve" -l tls-cert -d 'Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from serve" -l tls-key -d 'The private key of --tls-cert (PEM)' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from serve" -l prefix -d 'Serve every image under this path (`mirror/site` serves `mirror/site/<source path>`), as `bundle load --to REGISTRY/PREFIX` would place it' -r
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from serve" -l keep-host -d 'Keep the source registry host as the first path component (`PREFIX/k8s.gcr.io/pause:3.10`)'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from serve" -l flatten -d 'Keep only the last path component (`PREFIX/pause:3.10`)'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from serve" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from serve" -s q -l quiet -d 'Only errors on stderr: no progress, no summary'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from serve" -s h -l help -d 'Print help'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from serve" -s V -l version -d 'Print version'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "create" -d 'Pull the images of the lists into a bundle: one or more zstd-compressed tar volumes holding an OCI layout. Re-running after an interruption downloads only what is missing'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "load" -d 'Push a bundle\'s images into a registry, streaming from the volumes'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Check every blob\'s digest and size in the volumes given and that they belong together (exit code 3 on a problem); which images need volumes not given is reported as information (exit code 0)'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "inspect" -d 'List a bundle\'s images, platforms, sizes and volumes'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "serve" -d 'Serve a bundle\'s images as a read-only registry, straight from the volumes (no unpacking): pull with docker, podman, skopeo or containerd until stopped (Ctrl-C or SIGTERM, exit 0). Images are named as `bundle load` would name them'
complete -c airlift -n "__fish_airlift_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlift -n "__fish_airlift_using_subcommand inventory" -l registry -d 'The registry (and optional prefix) to list' -r
complete -c airlift -n "__fish_airlift_using_subcommand inventory" -s o -l output -d 'Where to write the inventory (JSON)' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand inventory" -s l -l list -d 'Instead of the catalog (which Harbor, for one, allows admins only), list the repositories these image lists map to at REGISTRY[/PREFIX], as `mirror sync --to REGISTRY[/PREFIX]` places them. Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand inventory" -l insecure-registry -d 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker\'s `--insecure-registry` (loopback registries always are). Repeatable' -r
complete -c airlift -n "__fish_airlift_using_subcommand inventory" -l ca-file -d 'Trust the CA certificates in FILE (PEM) for every registry, besides the system\'s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand inventory" -l authfile -d 'Read credentials from FILE (podman/skopeo `auth.json`, or docker\'s `config.json`) before docker\'s and podman\'s usual files. Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand inventory" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
complete -c airlift -n "__fish_airlift_using_subcommand inventory" -s q -l quiet -d 'Only errors on stderr: no progress, no summary'
complete -c airlift -n "__fish_airlift_using_subcommand inventory" -s h -l help -d 'Print help'
complete -c airlift -n "__fish_airlift_using_subcommand inventory" -s V -l version -d 'Print version'
complete -c airlift -n "__fish_airlift_using_subcommand login" -s u -l username -d 'User name' -r
complete -c airlift -n "__fish_airlift_using_subcommand login" -s p -l password -d 'The password on the command line: visible to other users and kept in shell history; prefer --password-stdin' -r
complete -c airlift -n "__fish_airlift_using_subcommand login" -l insecure-registry -d 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker\'s `--insecure-registry` (loopback registries always are). Repeatable' -r
complete -c airlift -n "__fish_airlift_using_subcommand login" -l ca-file -d 'Trust the CA certificates in FILE (PEM) for every registry, besides the system\'s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand login" -l authfile -d 'Read credentials from FILE (podman/skopeo `auth.json`, or docker\'s `config.json`) before docker\'s and podman\'s usual files. Repeatable' -r -F
complete -c airlift -n "__fish_airlift_using_subcommand login" -l password-stdin -d 'Read the password (or token) from standard input'
complete -c airlift -n "__fish_airlift_using_subcommand login" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
complete -c airlift -n "__fish_airlift_using_subcommand login" -s q -l quiet -d 'Only errors on stderr: no progress, no summary'
complete -c airlift -n "__fish_airlift_using_subcommand login" -s h -l help -d 'Print help'
complete -c airlift -n "__fish_airlift_using_subcommand login" -s V -l version -d 'Print version'
complete -c airlift -n "__fish_airlift_using_subcommand logout" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
complete -c airlift -n "__fish_airlift_using_subcommand logout" -s q -l quiet -d 'Only errors on stderr: no progress, no summary'
complete -c airlift -n "__fish_airlift_using_subcommand logout" -s h -l help -d 'Print help'
complete -c airlift -n "__fish_airlift_using_subcommand logout" -s V -l version -d 'Print version'
complete -c airlift -n "__fish_airlift_using_subcommand completions" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
complete -c airlift -n "__fish_airlift_using_subcommand completions" -s q -l quiet -d 'Only errors on stderr: no progress, no summary'
complete -c airlift -n "__fish_airlift_using_subcommand completions" -s h -l help -d 'Print help'
complete -c airlift -n "__fish_airlift_using_subcommand completions" -s V -l version -d 'Print version'
complete -c airlift -n "__fish_airlift_using_subcommand help; and not __fish_seen_subcommand_from mirror bundle inventory login logout completions help" -f -a "mirror" -d 'Registry-to-registry mirroring'
complete -c airlift -n "__fish_airlift_using_subcommand help; and not __fish_seen_subcommand_from mirror bundle inventory login logout completions help" -f -a "bundle" -d 'Content bundles for air-gap media: create, load, verify, inspect'
complete -c airlift -n "__fish_airlift_using_subcommand help; and not __fish_seen_subcommand_from mirror bundle inventory login logout completions help" -f -a "inventory" -d 'Export the digests a registry already holds, for differential bundles'
complete -c airlift -n "__fish_airlift_using_subcommand help; and not __fish_seen_subcommand_from mirror bundle inventory login logout completions help" -f -a "login" -d 'Check credentials against a registry, then store them in docker\'s config.json (or its credential helper), as `docker login` does'
complete -c airlift -n "__fish_airlift_using_subcommand help; and not __fish_seen_subcommand_from mirror bundle inventory login logout completions help" -f -a "logout" -d 'Remove a registry\'s credentials from docker\'s config.json (or its credential helper)'
complete -c airlift -n "__fish_airlift_using_subcommand help; and not __fish_seen_subcommand_from mirror bundle inventory login logout completions help" -f -a "completions" -d 'Print a shell completion script'
complete -c airlift -n "__fish_airlift_using_subcommand help; and not __fish_seen_subcommand_from mirror bundle inventory login logout completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c airlift -n "__fish_airlift_using_subcommand help; and __fish_seen_subcommand_from mirror" -f -a "sync" -d 'Copy every image of the lists to a registry, digests unchanged. Re-running transfers only what the destination lacks'
complete -c airlift -n "__fish_airlift_using_subcommand help; and __fish_seen_subcommand_from mirror" -f -a "config" -d 'Write the configuration that makes a site\'s runtimes pull from the mirror (containerd, podman/CRI-O, k3s, OpenShift), a pull secret, or an image map, for the mapping `sync` used with the same lists and flags'
complete -c airlift -n "__fish_airlift_using_subcommand help; and __fish_seen_subcommand_from mirror" -f -a "status" -d 'Show what of the lists is at the destination: per image `present`, `missing` (with the blobs still to copy) or `different` (the tag holds another digest). Copies nothing; exit code 0 only when every image is present. Takes `sync`\'s arguments (`--dry-run` changes nothing)'
complete -c airlift -n "__fish_airlift_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "create" -d 'Pull the images of the lists into a bundle: one or more zstd-compressed tar volumes holding an OCI layout. Re-running after an interruption downloads only what is missing'
complete -c airlift -n "__fish_airlift_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "load" -d 'Push a bundle\'s images into a registry, streaming from the volumes'
complete -c airlift -n "__fish_airlift_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "verify" -d 'Check every blob\'s digest and size in the volumes given and that they belong together (exit code 3 on a problem); which images need volumes not given is reported as information (exit code 0)'
complete -c airlift -n "__fish_airlift_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "inspect" -d 'List a bundle\'s images, platforms, sizes and volumes'
complete -c airlift -n "__fish_airlift_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "serve" -d 'Serve a bundle\'s images as a read-only registry, straight from the volumes (no unpacking): pull with docker, podman, skopeo or containerd until stopped (Ctrl-C or SIGTERM, exit 0). Images are named as `bundle load` would name them'
