
use builtin;
use str;

set edit:completion:arg-completer[airlift] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'airlift'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'airlift'= {
            cand -v 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand --verbose 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand -q 'Only errors on stderr: no progress, no summary'
            cand --quiet 'Only errors on stderr: no progress, no summary'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand mirror 'Registry-to-registry mirroring'
            cand bundle 'Content bundles for air-gap media: create, load, verify, inspect'
            cand inventory 'Export the digests a registry already holds, for differential bundles'
            cand login 'Check credentials against a registry, then store them in docker''s config.json (or its credential helper), as `docker login` does'
            cand logout 'Remove a registry''s credentials from docker''s config.json (or its credential helper)'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'airlift;mirror'= {
            cand -v 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand --verbose 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand -q 'Only errors on stderr: no progress, no summary'
            cand --quiet 'Only errors on stderr: no progress, no summary'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand sync 'Copy every image of the lists to a registry, digests unchanged. Re-running transfers only what the destination lacks'
            cand config 'Write the configuration that makes a site''s runtimes pull from the mirror (containerd, podman/CRI-O, k3s, OpenShift), a pull secret, or an image map, for the mapping `sync` used with the same lists and flags'
            cand status 'Show what of the lists is at the destination: per image `present`, `missing` (with the blobs still to copy) or `different` (the tag holds another digest). Copies nothing; exit code 0 only when every image is present. Takes `sync`''s arguments (`--dry-run` changes nothing)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'airlift;mirror;sync'= {
            cand -l 'Image list: plain text (one reference per line, optional `SOURCE TARGET`) or YAML (`.yaml`/`.yml`). Repeatable'
            cand --list 'Image list: plain text (one reference per line, optional `SOURCE TARGET`) or YAML (`.yaml`/`.yml`). Repeatable'
            cand --to 'Destination `REGISTRY[/PREFIX]`; images land at `REGISTRY/PREFIX/<source path>:<tag>`. Overrides a YAML list''s `target`'
            cand --platform 'Keep only these platforms of multi-arch images (`os/arch[/variant]`, repeatable or comma-separated). The index is rewritten, so its digest changes'
            cand -j 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]'
            cand --jobs 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]'
            cand --retries 'Attempts per blob after the first, for transient failures [default: 4, or `retries` in the config file]'
            cand --retry-budget 'Retries allowed in the whole run; once spent, failures are final (a registry that stays down fails its images instead of being retried blob after blob)'
            cand --timeout 'Per-request timeout, and how long a transfer may go without receiving a byte before it counts as stalled and is retried (seconds)'
            cand --referrers 'Which signatures, attestations and SBOMs (OCI referrers, cosign''s tags) travel with the images: `all`, `signatures` (cosign and notation signatures and attestations) or `none`'
            cand --referrer-type 'Carry only referrers of this artifact type (repeatable), e.g. `application/vnd.cncf.notary.signature`'
            cand --min-rate 'Slowest download accepted, in bytes per second over 30 seconds (e.g. `4K`; `0` turns the check off): a registry that trickles a blob counts as stalled and is retried, where `--timeout` alone only catches silence'
            cand --insecure-registry 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker''s `--insecure-registry` (loopback registries always are). Repeatable'
            cand --ca-file 'Trust the CA certificates in FILE (PEM) for every registry, besides the system''s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable'
            cand --authfile 'Read credentials from FILE (podman/skopeo `auth.json`, or docker''s `config.json`) before docker''s and podman''s usual files. Repeatable'
            cand --progress 'Progress display: bars on a terminal, periodic log lines otherwise'
            cand --keep-host 'Keep the source registry host as the first path component (`REGISTRY/PREFIX/k8s.gcr.io/pause:3.10`)'
            cand --flatten 'Keep only the last path component (`REGISTRY/PREFIX/pause:3.10`)'
            cand --fail-fast 'Stop at the first failed image instead of finishing the others'
            cand --keep-going 'Finish the other images when one fails (the default). `bundle create` then also writes a bundle without the entries that failed, recording them as missing; without this flag it writes no bundle when any entry failed'
            cand --json 'Print one JSON report on stdout at the end'
            cand --dry-run 'Resolve everything and print the plan (images, blobs and bytes to copy, bytes already present) without copying'
            cand -v 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand --verbose 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand -q 'Only errors on stderr: no progress, no summary'
            cand --quiet 'Only errors on stderr: no progress, no summary'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'airlift;mirror;config'= {
            cand --for 'What to write'
            cand -l 'Image list, as for `mirror sync`. Repeatable'
            cand --list 'Image list, as for `mirror sync`. Repeatable'
            cand --to 'The mirror `REGISTRY[/PREFIX]`, as given to `mirror sync --to`'
            cand --platform 'Keep only these platforms of multi-arch images (`os/arch[/variant]`, repeatable or comma-separated). The index is rewritten, so its digest changes'
            cand --insecure-registry 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker''s `--insecure-registry` (loopback registries always are). Repeatable'
            cand --ca-file 'Trust the CA certificates in FILE (PEM) for every registry, besides the system''s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable'
            cand --authfile 'Read credentials from FILE (podman/skopeo `auth.json`, or docker''s `config.json`) before docker''s and podman''s usual files. Repeatable'
            cand -o 'Write into DIR (created if needed); `-` or none prints on stdout when the output is one file'
            cand --output 'Write into DIR (created if needed); `-` or none prints on stdout when the output is one file'
            cand --name 'pull-secret, openshift: the resource''s name [default: airlift-mirror]'
            cand --namespace 'pull-secret: the secret''s namespace'
            cand --keep-host 'Keep the source registry host as the first path component (`REGISTRY/PREFIX/k8s.gcr.io/pause:3.10`)'
            cand --flatten 'Keep only the last path component (`REGISTRY/PREFIX/pause:3.10`)'
            cand --mirror-by-digest-only 'containers: use the mirror only for pulls by digest (`mirror-by-digest-only`)'
            cand --with-credentials 'k3s: include the mirror''s credentials in `configs` (the file is then written 0600)'
            cand --tags 'openshift: also write an ImageTagMirrorSet, so pulls by tag use the mirror too'
            cand --digests 'image-map: look every image up on the mirror and add its digest'
            cand -v 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand --verbose 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand -q 'Only errors on stderr: no progress, no summary'
            cand --quiet 'Only errors on stderr: no progress, no summary'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'airlift;mirror;status'= {
            cand -l 'Image list: plain text (one reference per line, optional `SOURCE TARGET`) or YAML (`.yaml`/`.yml`). Repeatable'
            cand --list 'Image list: plain text (one reference per line, optional `SOURCE TARGET`) or YAML (`.yaml`/`.yml`). Repeatable'
            cand --to 'Destination `REGISTRY[/PREFIX]`; images land at `REGISTRY/PREFIX/<source path>:<tag>`. Overrides a YAML list''s `target`'
            cand --platform 'Keep only these platforms of multi-arch images (`os/arch[/variant]`, repeatable or comma-separated). The index is rewritten, so its digest changes'
            cand -j 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]'
            cand --jobs 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]'
            cand --retries 'Attempts per blob after the first, for transient failures [default: 4, or `retries` in the config file]'
            cand --retry-budget 'Retries allowed in the whole run; once spent, failures are final (a registry that stays down fails its images instead of being retried blob after blob)'
            cand --timeout 'Per-request timeout, and how long a transfer may go without receiving a byte before it counts as stalled and is retried (seconds)'
            cand --referrers 'Which signatures, attestations and SBOMs (OCI referrers, cosign''s tags) travel with the images: `all`, `signatures` (cosign and notation signatures and attestations) or `none`'
            cand --referrer-type 'Carry only referrers of this artifact type (repeatable), e.g. `application/vnd.cncf.notary.signature`'
            cand --min-rate 'Slowest download accepted, in bytes per second over 30 seconds (e.g. `4K`; `0` turns the check off): a registry that trickles a blob counts as stalled and is retried, where `--timeout` alone only catches silence'
            cand --insecure-registry 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker''s `--insecure-registry` (loopback registries always are). Repeatable'
            cand --ca-file 'Trust the CA certificates in FILE (PEM) for every registry, besides the system''s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable'
            cand --authfile 'Read credentials from FILE (podman/skopeo `auth.json`, or docker''s `config.json`) before docker''s and podman''s usual files. Repeatable'
            cand --progress 'Progress display: bars on a terminal, periodic log lines otherwise'
            cand --keep-host 'Keep the source registry host as the first path component (`REGISTRY/PREFIX/k8s.gcr.io/pause:3.10`)'
            cand --flatten 'Keep only the last path component (`REGISTRY/PREFIX/pause:3.10`)'
            cand --fail-fast 'Stop at the first failed image instead of finishing the others'
            cand --keep-going 'Finish the other images when one fails (the default). `bundle create` then also writes a bundle without the entries that failed, recording them as missing; without this flag it writes no bundle when any entry failed'
            cand --json 'Print one JSON report on stdout at the end'
            cand --dry-run 'Resolve everything and print the plan (images, blobs and bytes to copy, bytes already present) without copying'
            cand -v 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand --verbose 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand -q 'Only errors on stderr: no progress, no summary'
            cand --quiet 'Only errors on stderr: no progress, no summary'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'airlift;mirror;help'= {
            cand sync 'Copy every image of the lists to a registry, digests unchanged. Re-running transfers only what the destination lacks'
            cand config 'Write the configuration that makes a site''s runtimes pull from the mirror (containerd, podman/CRI-O, k3s, OpenShift), a pull secret, or an image map, for the mapping `sync` used with the same lists and flags'
            cand status 'Show what of the lists is at the destination: per image `present`, `missing` (with the blobs still to copy) or `different` (the tag holds another digest). Copies nothing; exit code 0 only when every image is present. Takes `sync`''s arguments (`--dry-run` changes nothing)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'airlift;mirror;help;sync'= {
        }
        &'airlift;mirror;help;config'= {
        }
        &'airlift;mirror;help;status'= {
        }
        &'airlift;mirror;help;help'= {
        }
        &'airlift;bundle'= {
            cand -v 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand --verbose 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand -q 'Only errors on stderr: no progress, no summary'
            cand --quiet 'Only errors on stderr: no progress, no summary'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand create 'Pull the images of the lists into a bundle: one or more zstd-compressed tar volumes holding an OCI layout. Re-running after an interruption downloads only what is missing'
            cand load 'Push a bundle''s images into a registry, streaming from the volumes'
            cand verify 'Check every blob''s digest and size in the volumes given and that they belong together (exit code 3 on a problem); which images need volumes not given is reported as information (exit code 0)'
            cand inspect 'List a bundle''s images, platforms, sizes and volumes'
            cand serve 'Serve a bundle''s images as a read-only registry, straight from the volumes (no unpacking): pull with docker, podman, skopeo or containerd until stopped (Ctrl-C or SIGTERM, exit 0). Images are named as `bundle load` would name them'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'airlift;bundle;create'= {
            cand -l 'Image list (text or YAML), as for `mirror sync`. Repeatable'
            cand --list 'Image list (text or YAML), as for `mirror sync`. Repeatable'
            cand -o 'The bundle file (`release.tar.zst`); several volumes are named `release.001.tar.zst`, ... Volumes of an older bundle of the same name beyond those written are removed'
            cand --output 'The bundle file (`release.tar.zst`); several volumes are named `release.001.tar.zst`, ... Volumes of an older bundle of the same name beyond those written are removed'
            cand --max-volume-size 'Split into volumes of at most this size (`4G`, `700M`)'
            cand --zstd-level 'zstd compression level (1-19)'
            cand --exclude-from 'Leave out blobs listed in this inventory (`airlift inventory -o FILE` at the site)'
            cand --since 'Leave out blobs already in this older bundle: any of its volumes, one or several (`--since old.*.tar.zst` takes them all). Repeatable'
            cand --staging-dir 'No longer used (volumes are written in one pass); accepted with a warning so that older scripts keep working'
            cand --from 'Fetch every image from this registry (a mirror) instead of the one its reference names, mapped as `mirror sync --to` maps (with --keep-host/--flatten); the bundle still records the names as listed'
            cand --platform 'Keep only these platforms of multi-arch images (`os/arch[/variant]`, repeatable or comma-separated). The index is rewritten, so its digest changes'
            cand -j 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]'
            cand --jobs 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]'
            cand --retries 'Attempts per blob after the first, for transient failures [default: 4, or `retries` in the config file]'
            cand --retry-budget 'Retries allowed in the whole run; once spent, failures are final (a registry that stays down fails its images instead of being retried blob after blob)'
            cand --timeout 'Per-request timeout, and how long a transfer may go without receiving a byte before it counts as stalled and is retried (seconds)'
            cand --referrers 'Which signatures, attestations and SBOMs (OCI referrers, cosign''s tags) travel with the images: `all`, `signatures` (cosign and notation signatures and attestations) or `none`'
            cand --referrer-type 'Carry only referrers of this artifact type (repeatable), e.g. `application/vnd.cncf.notary.signature`'
            cand --min-rate 'Slowest download accepted, in bytes per second over 30 seconds (e.g. `4K`; `0` turns the check off): a registry that trickles a blob counts as stalled and is retried, where `--timeout` alone only catches silence'
            cand --insecure-registry 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker''s `--insecure-registry` (loopback registries always are). Repeatable'
            cand --ca-file 'Trust the CA certificates in FILE (PEM) for every registry, besides the system''s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable'
            cand --authfile 'Read credentials from FILE (podman/skopeo `auth.json`, or docker''s `config.json`) before docker''s and podman''s usual files. Repeatable'
            cand --progress 'Progress display: bars on a terminal, periodic log lines otherwise'
            cand --keep-host 'Keep the source registry host as the first path component (`REGISTRY/PREFIX/k8s.gcr.io/pause:3.10`)'
            cand --flatten 'Keep only the last path component (`REGISTRY/PREFIX/pause:3.10`)'
            cand --fail-fast 'Stop at the first failed image instead of finishing the others'
            cand --keep-going 'Finish the other images when one fails (the default). `bundle create` then also writes a bundle without the entries that failed, recording them as missing; without this flag it writes no bundle when any entry failed'
            cand --json 'Print one JSON report on stdout at the end'
            cand --dry-run 'Print the plan without downloading'
            cand -v 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand --verbose 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand -q 'Only errors on stderr: no progress, no summary'
            cand --quiet 'Only errors on stderr: no progress, no summary'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'airlift;bundle;load'= {
            cand --to 'Destination `REGISTRY[/PREFIX]`'
            cand --platform 'Keep only these platforms of multi-arch images (`os/arch[/variant]`, repeatable or comma-separated). The index is rewritten, so its digest changes'
            cand -j 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]'
            cand --jobs 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]'
            cand --retries 'Attempts per blob after the first, for transient failures [default: 4, or `retries` in the config file]'
            cand --retry-budget 'Retries allowed in the whole run; once spent, failures are final (a registry that stays down fails its images instead of being retried blob after blob)'
            cand --timeout 'Per-request timeout, and how long a transfer may go without receiving a byte before it counts as stalled and is retried (seconds)'
            cand --referrers 'Which signatures, attestations and SBOMs (OCI referrers, cosign''s tags) travel with the images: `all`, `signatures` (cosign and notation signatures and attestations) or `none`'
            cand --referrer-type 'Carry only referrers of this artifact type (repeatable), e.g. `application/vnd.cncf.notary.signature`'
            cand --min-rate 'Slowest download accepted, in bytes per second over 30 seconds (e.g. `4K`; `0` turns the check off): a registry that trickles a blob counts as stalled and is retried, where `--timeout` alone only catches silence'
            cand --insecure-registry 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker''s `--insecure-registry` (loopback registries always are). Repeatable'
            cand --ca-file 'Trust the CA certificates in FILE (PEM) for every registry, besides the system''s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable'
            cand --authfile 'Read credentials from FILE (podman/skopeo `auth.json`, or docker''s `config.json`) before docker''s and podman''s usual files. Repeatable'
            cand --progress 'Progress display: bars on a terminal, periodic log lines otherwise'
            cand --state-dir 'Where parts of blobs split across volumes wait for their other parts (default `$XDG_CACHE_HOME/airlift/load`, else `~/.cache/airlift/load`). Removable once every volume is loaded'
            cand --keep-host 'Keep the source registry host as the first path component (`REGISTRY/PREFIX/k8s.gcr.io/pause:3.10`)'
            cand --flatten 'Keep only the last path component (`REGISTRY/PREFIX/pause:3.10`)'
            cand --fail-fast 'Stop at the first failed image instead of finishing the others'
            cand --keep-going 'Finish the other images when one fails (the default). `bundle create` then also writes a bundle without the entries that failed, recording them as missing; without this flag it writes no bundle when any entry failed'
            cand --json 'Print one JSON report on stdout at the end'
            cand --dry-run 'Print the plan without pushing'
            cand --require-complete 'Exit with code 4 when some images still wait for volumes not given (by default loading some volumes only is success: those images are reported as pending)'
            cand -v 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand --verbose 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand -q 'Only errors on stderr: no progress, no summary'
            cand --quiet 'Only errors on stderr: no progress, no summary'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'airlift;bundle;verify'= {
            cand --json 'Print the result as JSON'
            cand -v 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand --verbose 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand -q 'Only errors on stderr: no progress, no summary'
            cand --quiet 'Only errors on stderr: no progress, no summary'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'airlift;bundle;inspect'= {
            cand --json 'Print JSON'
            cand -v 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand --verbose 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand -q 'Only errors on stderr: no progress, no summary'
            cand --quiet 'Only errors on stderr: no progress, no summary'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'airlift;bundle;serve'= {
            cand --listen 'Address to listen on, e.g. `0.0.0.0:5000`; port 0 picks a free port (printed)'
            cand --tls-cert 'Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key'
            cand --tls-key 'The private key of --tls-cert (PEM)'
            cand --prefix 'Serve every image under this path (`mirror/site` serves `mirror/site/<source path>`), as `bundle load --to REGISTRY/PREFIX` would place it'
            cand --keep-host 'Keep the source registry host as the first path component (`PREFIX/k8s.gcr.io/pause:3.10`)'
            cand --flatten 'Keep only the last path component (`PREFIX/pause:3.10`)'
            cand -v 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand --verbose 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand -q 'Only errors on stderr: no progress, no summary'
            cand --quiet 'Only errors on stderr: no progress, no summary'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'airlift;bundle;help'= {
            cand create 'Pull the images of the lists into a bundle: one or more zstd-compressed tar volumes holding an OCI layout. Re-running after an interruption downloads only what is missing'
            cand load 'Push a bundle''s images into a registry, streaming from the volumes'
            cand verify 'Check every blob''s digest and size in the volumes given and that they belong together (exit code 3 on a problem); which images need volumes not given is reported as information (exit code 0)'
            cand inspect 'List a bundle''s images, platforms, sizes and volumes'
            cand serve 'Serve a bundle''s images as a read-only registry, straight from the volumes (no unpacking): pull with docker, podman, skopeo or containerd until stopped (Ctrl-C or SIGTERM, exit 0). Images are named as `bundle load` would name them'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'airlift;bundle;help;create'= {
        }
        &'airlift;bundle;help;load'= {
        }
        &'airlift;bundle;help;verify'= {
        }
        &'airlift;bundle;help;inspect'= {
        }
        &'airlift;bundle;help;serve'= {
        }
        &'airlift;bundle;help;help'= {
        }
        &'airlift;inventory'= {
            cand --registry 'The registry (and optional prefix) to list'
            cand -o 'Where to write the inventory (JSON)'
            cand --output 'Where to write the inventory (JSON)'
            cand -l 'Instead of the catalog (which Harbor, for one, allows admins only), list the repositories these image lists map to at REGISTRY[/PREFIX], as `mirror sync --to REGISTRY[/PREFIX]` places them. Repeatable'
            cand --list 'Instead of the catalog (which Harbor, for one, allows admins only), list the repositories these image lists map to at REGISTRY[/PREFIX], as `mirror sync --to REGISTRY[/PREFIX]` places them. Repeatable'
            cand --insecure-registry 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker''s `--insecure-registry` (loopback registries always are). Repeatable'
            cand --ca-file 'Trust the CA certificates in FILE (PEM) for every registry, besides the system''s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable'
            cand --authfile 'Read credentials from FILE (podman/skopeo `auth.json`, or docker''s `config.json`) before docker''s and podman''s usual files. Repeatable'
            cand -v 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand --verbose 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand -q 'Only errors on stderr: no progress, no summary'
            cand --quiet 'Only errors on stderr: no progress, no summary'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'airlift;login'= {
            cand -u 'User name'
            cand --username 'User name'
            cand -p 'The password on the command line: visible to other users and kept in shell history; prefer --password-stdin'
            cand --password 'The password on the command line: visible to other users and kept in shell history; prefer --password-stdin'
            cand --insecure-registry 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker''s `--insecure-registry` (loopback registries always are). Repeatable'
            cand --ca-file 'Trust the CA certificates in FILE (PEM) for every registry, besides the system''s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable'
            cand --authfile 'Read credentials from FILE (podman/skopeo `auth.json`, or docker''s `config.json`) before docker''s and podman''s usual files. Repeatable'
            cand --password-stdin 'Read the password (or token) from standard input'
            cand -v 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand --verbose 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand -q 'Only errors on stderr: no progress, no summary'
            cand --quiet 'Only errors on stderr: no progress, no summary'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'airlift;logout'= {
            cand -v 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand --verbose 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand -q 'Only errors on stderr: no progress, no summary'
            cand --quiet 'Only errors on stderr: no progress, no summary'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'airlift;completions'= {
            cand -v 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand --verbose 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides'
            cand -q 'Only errors on stderr: no progress, no summary'
            cand --quiet 'Only errors on stderr: no progress, no summary'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'airlift;help'= {
            cand mirror 'Registry-to-registry mirroring'
            cand bundle 'Content bundles for air-gap media: create, load, verify, inspect'
            cand inventory 'Export the digests a registry already holds, for differential bundles'
            cand login 'Check credentials against a registry, then store them in docker''s config.json (or its credential helper), as `docker login` does'
            cand logout 'Remove a registry''s credentials from docker''s config.json (or its credential helper)'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'airlift;help;mirror'= {
            cand sync 'Copy every image of the lists to a registry, digests unchanged. Re-running transfers only what the destination lacks'
            cand config 'Write the configuration that makes a site''s runtimes pull from the mirror (containerd, podman/CRI-O, k3s, OpenShift), a pull secret, or an image map, for the mapping `sync` used with the same lists and flags'
            cand status 'Show what of the lists is at the destination: per image `present`, `missing` (with the blobs still to copy) or `different` (the tag holds another digest). Copies nothing; exit code 0 only when every image is present. Takes `sync`''s arguments (`--dry-run` changes nothing)'
        }
        &'airlift;help;mirror;sync'= {
        }
        &'airlift;help;mirror;config'= {
        }
        &'airlift;help;mirror;status'= {
        }
        &'airlift;help;bundle'= {
            cand create 'Pull the images of the lists into a bundle: one or more zstd-compressed tar volumes holding an OCI layout. Re-running after an interruption downloads only what is missing'
            cand load 'Push a bundle''s images into a registry, streaming from the volumes'
            cand verify 'Check every blob''s digest and size in the volumes given and that they belong together (exit code 3 on a problem); which images need volumes not given is reported as information (exit code 0)'
            cand inspect 'List a bundle''s images, platforms, sizes and volumes'
            cand serve 'Serve a bundle''s images as a read-only registry, straight from the volumes (no unpacking): pull with docker, podman, skopeo or containerd until stopped (Ctrl-C or SIGTERM, exit 0). Images are named as `bundle load` would name them'
        }
        &'airlift;help;bundle;create'= {
        }
        &'airlift;help;bundle;load'= {
        }
        &'airlift;help;bundle;verify'= {
        }
        &'airlift;help;bundle;inspect'= {
        }
        &'airlift;help;bundle;serve'= {
        }
        &'airlift;help;inventory'= {
        }
        &'airlift;help;login'= {
        }
        &'airlift;help;logout'= {
        }
        &'airlift;help;completions'= {
        }
        &'airlift;help;help'= {
        }
    ]
    $completions[$command]
}
