
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'airlift' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'airlift'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'airlift' {
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('mirror', 'mirror', [CompletionResultType]::ParameterValue, 'Registry-to-registry mirroring')
            [CompletionResult]::new('bundle', 'bundle', [CompletionResultType]::ParameterValue, 'Content bundles for air-gap media: create, load, verify, inspect')
            [CompletionResult]::new('inventory', 'inventory', [CompletionResultType]::ParameterValue, 'Export the digests a registry already holds, for differential bundles')
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Check credentials against a registry, then store them in docker''s config.json (or its credential helper), as `docker login` does')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Remove a registry''s credentials from docker''s config.json (or its credential helper)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'airlift;mirror' {
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('sync', 'sync', [CompletionResultType]::ParameterValue, 'Copy every image of the lists to a registry, digests unchanged. Re-running transfers only what the destination lacks')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Write the configuration that makes a site''s runtimes pull from the mirror (containerd, podman/CRI-O, k3s, OpenShift), a pull secret, or an image map, for the mapping `sync` used with the same lists and flags')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show what of the lists is at the destination: per image `present`, `missing` (with the blobs still to copy) or `different` (the tag holds another digest). Copies nothing; exit code 0 only when every image is present. Takes `sync`''s arguments (`--dry-run` changes nothing)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'airlift;mirror;sync' {
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Image list: plain text (one reference per line, optional `SOURCE TARGET`) or YAML (`.yaml`/`.yml`). Repeatable')
            [CompletionResult]::new('--list', '--list', [CompletionResultType]::ParameterName, 'Image list: plain text (one reference per line, optional `SOURCE TARGET`) or YAML (`.yaml`/`.yml`). Repeatable')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Destination `REGISTRY[/PREFIX]`; images land at `REGISTRY/PREFIX/<source path>:<tag>`. Overrides a YAML list''s `target`')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Keep only these platforms of multi-arch images (`os/arch[/variant]`, repeatable or comma-separated). The index is rewritten, so its digest changes')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Attempts per blob after the first, for transient failures [default: 4, or `retries` in the config file]')
            [CompletionResult]::new('--retry-budget', '--retry-budget', [CompletionResultType]::ParameterName, 'Retries allowed in the whole run; once spent, failures are final (a registry that stays down fails its images instead of being retried blob after blob)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Per-request timeout, and how long a transfer may go without receiving a byte before it counts as stalled and is retried (seconds)')
            [CompletionResult]::new('--referrers', '--referrers', [CompletionResultType]::ParameterName, 'Which signatures, attestations and SBOMs (OCI referrers, cosign''s tags) travel with the images: `all`, `signatures` (cosign and notation signatures and attestations) or `none`')
            [CompletionResult]::new('--referrer-type', '--referrer-type', [CompletionResultType]::ParameterName, 'Carry only referrers of this artifact type (repeatable), e.g. `application/vnd.cncf.notary.signature`')
            [CompletionResult]::new('--min-rate', '--min-rate', [CompletionResultType]::ParameterName, 'Slowest download accepted, in bytes per second over 30 seconds (e.g. `4K`; `0` turns the check off): a registry that trickles a blob counts as stalled and is retried, where `--timeout` alone only catches silence')
            [CompletionResult]::new('--insecure-registry', '--insecure-registry', [CompletionResultType]::ParameterName, 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker''s `--insecure-registry` (loopback registries always are). Repeatable')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust the CA certificates in FILE (PEM) for every registry, besides the system''s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable')
            [CompletionResult]::new('--authfile', '--authfile', [CompletionResultType]::ParameterName, 'Read credentials from FILE (podman/skopeo `auth.json`, or docker''s `config.json`) before docker''s and podman''s usual files. Repeatable')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Progress display: bars on a terminal, periodic log lines otherwise')
            [CompletionResult]::new('--keep-host', '--keep-host', [CompletionResultType]::ParameterName, 'Keep the source registry host as the first path component (`REGISTRY/PREFIX/k8s.gcr.io/pause:3.10`)')
            [CompletionResult]::new('--flatten', '--flatten', [CompletionResultType]::ParameterName, 'Keep only the last path component (`REGISTRY/PREFIX/pause:3.10`)')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Stop at the first failed image instead of finishing the others')
            [CompletionResult]::new('--keep-going', '--keep-going', [CompletionResultType]::ParameterName, 'Finish the other images when one fails (the default). `bundle create` then also writes a bundle without the entries that failed, recording them as missing; without this flag it writes no bundle when any entry failed')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON report on stdout at the end')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Resolve everything and print the plan (images, blobs and bytes to copy, bytes already present) without copying')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'airlift;mirror;config' {
            [CompletionResult]::new('--for', '--for', [CompletionResultType]::ParameterName, 'What to write')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Image list, as for `mirror sync`. Repeatable')
            [CompletionResult]::new('--list', '--list', [CompletionResultType]::ParameterName, 'Image list, as for `mirror sync`. Repeatable')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'The mirror `REGISTRY[/PREFIX]`, as given to `mirror sync --to`')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Keep only these platforms of multi-arch images (`os/arch[/variant]`, repeatable or comma-separated). The index is rewritten, so its digest changes')
            [CompletionResult]::new('--insecure-registry', '--insecure-registry', [CompletionResultType]::ParameterName, 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker''s `--insecure-registry` (loopback registries always are). Repeatable')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust the CA certificates in FILE (PEM) for every registry, besides the system''s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable')
            [CompletionResult]::new('--authfile', '--authfile', [CompletionResultType]::ParameterName, 'Read credentials from FILE (podman/skopeo `auth.json`, or docker''s `config.json`) before docker''s and podman''s usual files. Repeatable')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write into DIR (created if needed); `-` or none prints on stdout when the output is one file')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write into DIR (created if needed); `-` or none prints on stdout when the output is one file')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'pull-secret, openshift: the resource''s name [default: airlift-mirror]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'pull-secret: the secret''s namespace')
            [CompletionResult]::new('--keep-host', '--keep-host', [CompletionResultType]::ParameterName, 'Keep the source registry host as the first path component (`REGISTRY/PREFIX/k8s.gcr.io/pause:3.10`)')
            [CompletionResult]::new('--flatten', '--flatten', [CompletionResultType]::ParameterName, 'Keep only the last path component (`REGISTRY/PREFIX/pause:3.10`)')
            [CompletionResult]::new('--mirror-by-digest-only', '--mirror-by-digest-only', [CompletionResultType]::ParameterName, 'containers: use the mirror only for pulls by digest (`mirror-by-digest-only`)')
            [CompletionResult]::new('--with-credentials', '--with-credentials', [CompletionResultType]::ParameterName, 'k3s: include the mirror''s credentials in `configs` (the file is then written 0600)')
            [CompletionResult]::new('--tags', '--tags', [CompletionResultType]::ParameterName, 'openshift: also write an ImageTagMirrorSet, so pulls by tag use the mirror too')
            [CompletionResult]::new('--digests', '--digests', [CompletionResultType]::ParameterName, 'image-map: look every image up on the mirror and add its digest')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'airlift;mirror;status' {
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Image list: plain text (one reference per line, optional `SOURCE TARGET`) or YAML (`.yaml`/`.yml`). Repeatable')
            [CompletionResult]::new('--list', '--list', [CompletionResultType]::ParameterName, 'Image list: plain text (one reference per line, optional `SOURCE TARGET`) or YAML (`.yaml`/`.yml`). Repeatable')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Destination `REGISTRY[/PREFIX]`; images land at `REGISTRY/PREFIX/<source path>:<tag>`. Overrides a YAML list''s `target`')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Keep only these platforms of multi-arch images (`os/arch[/variant]`, repeatable or comma-separated). The index is rewritten, so its digest changes')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Attempts per blob after the first, for transient failures [default: 4, or `retries` in the config file]')
            [CompletionResult]::new('--retry-budget', '--retry-budget', [CompletionResultType]::ParameterName, 'Retries allowed in the whole run; once spent, failures are final (a registry that stays down fails its images instead of being retried blob after blob)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Per-request timeout, and how long a transfer may go without receiving a byte before it counts as stalled and is retried (seconds)')
            [CompletionResult]::new('--referrers', '--referrers', [CompletionResultType]::ParameterName, 'Which signatures, attestations and SBOMs (OCI referrers, cosign''s tags) travel with the images: `all`, `signatures` (cosign and notation signatures and attestations) or `none`')
            [CompletionResult]::new('--referrer-type', '--referrer-type', [CompletionResultType]::ParameterName, 'Carry only referrers of this artifact type (repeatable), e.g. `application/vnd.cncf.notary.signature`')
            [CompletionResult]::new('--min-rate', '--min-rate', [CompletionResultType]::ParameterName, 'Slowest download accepted, in bytes per second over 30 seconds (e.g. `4K`; `0` turns the check off): a registry that trickles a blob counts as stalled and is retried, where `--timeout` alone only catches silence')
            [CompletionResult]::new('--insecure-registry', '--insecure-registry', [CompletionResultType]::ParameterName, 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker''s `--insecure-registry` (loopback registries always are). Repeatable')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust the CA certificates in FILE (PEM) for every registry, besides the system''s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable')
            [CompletionResult]::new('--authfile', '--authfile', [CompletionResultType]::ParameterName, 'Read credentials from FILE (podman/skopeo `auth.json`, or docker''s `config.json`) before docker''s and podman''s usual files. Repeatable')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Progress display: bars on a terminal, periodic log lines otherwise')
            [CompletionResult]::new('--keep-host', '--keep-host', [CompletionResultType]::ParameterName, 'Keep the source registry host as the first path component (`REGISTRY/PREFIX/k8s.gcr.io/pause:3.10`)')
            [CompletionResult]::new('--flatten', '--flatten', [CompletionResultType]::ParameterName, 'Keep only the last path component (`REGISTRY/PREFIX/pause:3.10`)')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Stop at the first failed image instead of finishing the others')
            [CompletionResult]::new('--keep-going', '--keep-going', [CompletionResultType]::ParameterName, 'Finish the other images when one fails (the default). `bundle create` then also writes a bundle without the entries that failed, recording them as missing; without this flag it writes no bundle when any entry failed')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON report on stdout at the end')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Resolve everything and print the plan (images, blobs and bytes to copy, bytes already present) without copying')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'airlift;mirror;help' {
            [CompletionResult]::new('sync', 'sync', [CompletionResultType]::ParameterValue, 'Copy every image of the lists to a registry, digests unchanged. Re-running transfers only what the destination lacks')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Write the configuration that makes a site''s runtimes pull from the mirror (containerd, podman/CRI-O, k3s, OpenShift), a pull secret, or an image map, for the mapping `sync` used with the same lists and flags')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show what of the lists is at the destination: per image `present`, `missing` (with the blobs still to copy) or `different` (the tag holds another digest). Copies nothing; exit code 0 only when every image is present. Takes `sync`''s arguments (`--dry-run` changes nothing)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'airlift;mirror;help;sync' {
            break
        }
        'airlift;mirror;help;config' {
            break
        }
        'airlift;mirror;help;status' {
            break
        }
        'airlift;mirror;help;help' {
            break
        }
        'airlift;bundle' {
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Pull the images of the lists into a bundle: one or more zstd-compressed tar volumes holding an OCI layout. Re-running after an interruption downloads only what is missing')
            [CompletionResult]::new('load', 'load', [CompletionResultType]::ParameterValue, 'Push a bundle''s images into a registry, streaming from the volumes')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check every blob''s digest and size in the volumes given and that they belong together (exit code 3 on a problem); which images need volumes not given is reported as information (exit code 0)')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'List a bundle''s images, platforms, sizes and volumes')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve a bundle''s images as a read-only registry, straight from the volumes (no unpacking): pull with docker, podman, skopeo or containerd until stopped (Ctrl-C or SIGTERM, exit 0). Images are named as `bundle load` would name them')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'airlift;bundle;create' {
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Image list (text or YAML), as for `mirror sync`. Repeatable')
            [CompletionResult]::new('--list', '--list', [CompletionResultType]::ParameterName, 'Image list (text or YAML), as for `mirror sync`. Repeatable')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'The bundle file (`release.tar.zst`); several volumes are named `release.001.tar.zst`, ... Volumes of an older bundle of the same name beyond those written are removed')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'The bundle file (`release.tar.zst`); several volumes are named `release.001.tar.zst`, ... Volumes of an older bundle of the same name beyond those written are removed')
            [CompletionResult]::new('--max-volume-size', '--max-volume-size', [CompletionResultType]::ParameterName, 'Split into volumes of at most this size (`4G`, `700M`)')
            [CompletionResult]::new('--zstd-level', '--zstd-level', [CompletionResultType]::ParameterName, 'zstd compression level (1-19)')
            [CompletionResult]::new('--exclude-from', '--exclude-from', [CompletionResultType]::ParameterName, 'Leave out blobs listed in this inventory (`airlift inventory -o FILE` at the site)')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Leave out blobs already in this older bundle: any of its volumes, one or several (`--since old.*.tar.zst` takes them all). Repeatable')
            [CompletionResult]::new('--staging-dir', '--staging-dir', [CompletionResultType]::ParameterName, 'No longer used (volumes are written in one pass); accepted with a warning so that older scripts keep working')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Fetch every image from this registry (a mirror) instead of the one its reference names, mapped as `mirror sync --to` maps (with --keep-host/--flatten); the bundle still records the names as listed')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Keep only these platforms of multi-arch images (`os/arch[/variant]`, repeatable or comma-separated). The index is rewritten, so its digest changes')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Attempts per blob after the first, for transient failures [default: 4, or `retries` in the config file]')
            [CompletionResult]::new('--retry-budget', '--retry-budget', [CompletionResultType]::ParameterName, 'Retries allowed in the whole run; once spent, failures are final (a registry that stays down fails its images instead of being retried blob after blob)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Per-request timeout, and how long a transfer may go without receiving a byte before it counts as stalled and is retried (seconds)')
            [CompletionResult]::new('--referrers', '--referrers', [CompletionResultType]::ParameterName, 'Which signatures, attestations and SBOMs (OCI referrers, cosign''s tags) travel with the images: `all`, `signatures` (cosign and notation signatures and attestations) or `none`')
            [CompletionResult]::new('--referrer-type', '--referrer-type', [CompletionResultType]::ParameterName, 'Carry only referrers of this artifact type (repeatable), e.g. `application/vnd.cncf.notary.signature`')
            [CompletionResult]::new('--min-rate', '--min-rate', [CompletionResultType]::ParameterName, 'Slowest download accepted, in bytes per second over 30 seconds (e.g. `4K`; `0` turns the check off): a registry that trickles a blob counts as stalled and is retried, where `--timeout` alone only catches silence')
            [CompletionResult]::new('--insecure-registry', '--insecure-registry', [CompletionResultType]::ParameterName, 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker''s `--insecure-registry` (loopback registries always are). Repeatable')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust the CA certificates in FILE (PEM) for every registry, besides the system''s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable')
            [CompletionResult]::new('--authfile', '--authfile', [CompletionResultType]::ParameterName, 'Read credentials from FILE (podman/skopeo `auth.json`, or docker''s `config.json`) before docker''s and podman''s usual files. Repeatable')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Progress display: bars on a terminal, periodic log lines otherwise')
            [CompletionResult]::new('--keep-host', '--keep-host', [CompletionResultType]::ParameterName, 'Keep the source registry host as the first path component (`REGISTRY/PREFIX/k8s.gcr.io/pause:3.10`)')
            [CompletionResult]::new('--flatten', '--flatten', [CompletionResultType]::ParameterName, 'Keep only the last path component (`REGISTRY/PREFIX/pause:3.10`)')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Stop at the first failed image instead of finishing the others')
            [CompletionResult]::new('--keep-going', '--keep-going', [CompletionResultType]::ParameterName, 'Finish the other images when one fails (the default). `bundle create` then also writes a bundle without the entries that failed, recording them as missing; without this flag it writes no bundle when any entry failed')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON report on stdout at the end')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan without downloading')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'airlift;bundle;load' {
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Destination `REGISTRY[/PREFIX]`')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Keep only these platforms of multi-arch images (`os/arch[/variant]`, repeatable or comma-separated). The index is rewritten, so its digest changes')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Blobs transferred at once, across all images [default: 8, or `jobs` in the config file]')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Attempts per blob after the first, for transient failures [default: 4, or `retries` in the config file]')
            [CompletionResult]::new('--retry-budget', '--retry-budget', [CompletionResultType]::ParameterName, 'Retries allowed in the whole run; once spent, failures are final (a registry that stays down fails its images instead of being retried blob after blob)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Per-request timeout, and how long a transfer may go without receiving a byte before it counts as stalled and is retried (seconds)')
            [CompletionResult]::new('--referrers', '--referrers', [CompletionResultType]::ParameterName, 'Which signatures, attestations and SBOMs (OCI referrers, cosign''s tags) travel with the images: `all`, `signatures` (cosign and notation signatures and attestations) or `none`')
            [CompletionResult]::new('--referrer-type', '--referrer-type', [CompletionResultType]::ParameterName, 'Carry only referrers of this artifact type (repeatable), e.g. `application/vnd.cncf.notary.signature`')
            [CompletionResult]::new('--min-rate', '--min-rate', [CompletionResultType]::ParameterName, 'Slowest download accepted, in bytes per second over 30 seconds (e.g. `4K`; `0` turns the check off): a registry that trickles a blob counts as stalled and is retried, where `--timeout` alone only catches silence')
            [CompletionResult]::new('--insecure-registry', '--insecure-registry', [CompletionResultType]::ParameterName, 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker''s `--insecure-registry` (loopback registries always are). Repeatable')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust the CA certificates in FILE (PEM) for every registry, besides the system''s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable')
            [CompletionResult]::new('--authfile', '--authfile', [CompletionResultType]::ParameterName, 'Read credentials from FILE (podman/skopeo `auth.json`, or docker''s `config.json`) before docker''s and podman''s usual files. Repeatable')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Progress display: bars on a terminal, periodic log lines otherwise')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where parts of blobs split across volumes wait for their other parts (default `$XDG_CACHE_HOME/airlift/load`, else `~/.cache/airlift/load`). Removable once every volume is loaded')
            [CompletionResult]::new('--keep-host', '--keep-host', [CompletionResultType]::ParameterName, 'Keep the source registry host as the first path component (`REGISTRY/PREFIX/k8s.gcr.io/pause:3.10`)')
            [CompletionResult]::new('--flatten', '--flatten', [CompletionResultType]::ParameterName, 'Keep only the last path component (`REGISTRY/PREFIX/pause:3.10`)')
            [CompletionResult]::new('--fail-fast', '--fail-fast', [CompletionResultType]::ParameterName, 'Stop at the first failed image instead of finishing the others')
            [CompletionResult]::new('--keep-going', '--keep-going', [CompletionResultType]::ParameterName, 'Finish the other images when one fails (the default). `bundle create` then also writes a bundle without the entries that failed, recording them as missing; without this flag it writes no bundle when any entry failed')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON report on stdout at the end')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan without pushing')
            [CompletionResult]::new('--require-complete', '--require-complete', [CompletionResultType]::ParameterName, 'Exit with code 4 when some images still wait for volumes not given (by default loading some volumes only is success: those images are reported as pending)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'airlift;bundle;verify' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the result as JSON')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'airlift;bundle;inspect' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'airlift;bundle;serve' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on, e.g. `0.0.0.0:5000`; port 0 picks a free port (printed)')
            [CompletionResult]::new('--tls-cert', '--tls-cert', [CompletionResultType]::ParameterName, 'Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key')
            [CompletionResult]::new('--tls-key', '--tls-key', [CompletionResultType]::ParameterName, 'The private key of --tls-cert (PEM)')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Serve every image under this path (`mirror/site` serves `mirror/site/<source path>`), as `bundle load --to REGISTRY/PREFIX` would place it')
            [CompletionResult]::new('--keep-host', '--keep-host', [CompletionResultType]::ParameterName, 'Keep the source registry host as the first path component (`PREFIX/k8s.gcr.io/pause:3.10`)')
            [CompletionResult]::new('--flatten', '--flatten', [CompletionResultType]::ParameterName, 'Keep only the last path component (`PREFIX/pause:3.10`)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'airlift;bundle;help' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Pull the images of the lists into a bundle: one or more zstd-compressed tar volumes holding an OCI layout. Re-running after an interruption downloads only what is missing')
            [CompletionResult]::new('load', 'load', [CompletionResultType]::ParameterValue, 'Push a bundle''s images into a registry, streaming from the volumes')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check every blob''s digest and size in the volumes given and that they belong together (exit code 3 on a problem); which images need volumes not given is reported as information (exit code 0)')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'List a bundle''s images, platforms, sizes and volumes')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve a bundle''s images as a read-only registry, straight from the volumes (no unpacking): pull with docker, podman, skopeo or containerd until stopped (Ctrl-C or SIGTERM, exit 0). Images are named as `bundle load` would name them')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'airlift;bundle;help;create' {
            break
        }
        'airlift;bundle;help;load' {
            break
        }
        'airlift;bundle;help;verify' {
            break
        }
        'airlift;bundle;help;inspect' {
            break
        }
        'airlift;bundle;help;serve' {
            break
        }
        'airlift;bundle;help;help' {
            break
        }
        'airlift;inventory' {
            [CompletionResult]::new('--registry', '--registry', [CompletionResultType]::ParameterName, 'The registry (and optional prefix) to list')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Where to write the inventory (JSON)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Where to write the inventory (JSON)')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Instead of the catalog (which Harbor, for one, allows admins only), list the repositories these image lists map to at REGISTRY[/PREFIX], as `mirror sync --to REGISTRY[/PREFIX]` places them. Repeatable')
            [CompletionResult]::new('--list', '--list', [CompletionResultType]::ParameterName, 'Instead of the catalog (which Harbor, for one, allows admins only), list the repositories these image lists map to at REGISTRY[/PREFIX], as `mirror sync --to REGISTRY[/PREFIX]` places them. Repeatable')
            [CompletionResult]::new('--insecure-registry', '--insecure-registry', [CompletionResultType]::ParameterName, 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker''s `--insecure-registry` (loopback registries always are). Repeatable')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust the CA certificates in FILE (PEM) for every registry, besides the system''s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable')
            [CompletionResult]::new('--authfile', '--authfile', [CompletionResultType]::ParameterName, 'Read credentials from FILE (podman/skopeo `auth.json`, or docker''s `config.json`) before docker''s and podman''s usual files. Repeatable')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'airlift;login' {
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'User name')
            [CompletionResult]::new('--username', '--username', [CompletionResultType]::ParameterName, 'User name')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'The password on the command line: visible to other users and kept in shell history; prefer --password-stdin')
            [CompletionResult]::new('--password', '--password', [CompletionResultType]::ParameterName, 'The password on the command line: visible to other users and kept in shell history; prefer --password-stdin')
            [CompletionResult]::new('--insecure-registry', '--insecure-registry', [CompletionResultType]::ParameterName, 'Reach HOST[:PORT] over plain HTTP or unverified HTTPS, as docker''s `--insecure-registry` (loopback registries always are). Repeatable')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust the CA certificates in FILE (PEM) for every registry, besides the system''s. Per-registry CAs go in `/etc/docker/certs.d/HOST[:PORT]/ca.crt`. Repeatable')
            [CompletionResult]::new('--authfile', '--authfile', [CompletionResultType]::ParameterName, 'Read credentials from FILE (podman/skopeo `auth.json`, or docker''s `config.json`) before docker''s and podman''s usual files. Repeatable')
            [CompletionResult]::new('--password-stdin', '--password-stdin', [CompletionResultType]::ParameterName, 'Read the password (or token) from standard input')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'airlift;logout' {
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'airlift;completions' {
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output on stderr (-v info, -vv debug). `RUST_LOG` overrides')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr: no progress, no summary')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'airlift;help' {
            [CompletionResult]::new('mirror', 'mirror', [CompletionResultType]::ParameterValue, 'Registry-to-registry mirroring')
            [CompletionResult]::new('bundle', 'bundle', [CompletionResultType]::ParameterValue, 'Content bundles for air-gap media: create, load, verify, inspect')
            [CompletionResult]::new('inventory', 'inventory', [CompletionResultType]::ParameterValue, 'Export the digests a registry already holds, for differential bundles')
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Check credentials against a registry, then store them in docker''s config.json (or its credential helper), as `docker login` does')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Remove a registry''s credentials from docker''s config.json (or its credential helper)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'airlift;help;mirror' {
            [CompletionResult]::new('sync', 'sync', [CompletionResultType]::ParameterValue, 'Copy every image of the lists to a registry, digests unchanged. Re-running transfers only what the destination lacks')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Write the configuration that makes a site''s runtimes pull from the mirror (containerd, podman/CRI-O, k3s, OpenShift), a pull secret, or an image map, for the mapping `sync` used with the same lists and flags')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show what of the lists is at the destination: per image `present`, `missing` (with the blobs still to copy) or `different` (the tag holds another digest). Copies nothing; exit code 0 only when every image is present. Takes `sync`''s arguments (`--dry-run` changes nothing)')
            break
        }
        'airlift;help;mirror;sync' {
            break
        }
        'airlift;help;mirror;config' {
            break
        }
        'airlift;help;mirror;status' {
            break
        }
        'airlift;help;bundle' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Pull the images of the lists into a bundle: one or more zstd-compressed tar volumes holding an OCI layout. Re-running after an interruption downloads only what is missing')
            [CompletionResult]::new('load', 'load', [CompletionResultType]::ParameterValue, 'Push a bundle''s images into a registry, streaming from the volumes')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check every blob''s digest and size in the volumes given and that they belong together (exit code 3 on a problem); which images need volumes not given is reported as information (exit code 0)')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'List a bundle''s images, platforms, sizes and volumes')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve a bundle''s images as a read-only registry, straight from the volumes (no unpacking): pull with docker, podman, skopeo or containerd until stopped (Ctrl-C or SIGTERM, exit 0). Images are named as `bundle load` would name them')
            break
        }
        'airlift;help;bundle;create' {
            break
        }
        'airlift;help;bundle;load' {
            break
        }
        'airlift;help;bundle;verify' {
            break
        }
        'airlift;help;bundle;inspect' {
            break
        }
        'airlift;help;bundle;serve' {
            break
        }
        'airlift;help;inventory' {
            break
        }
        'airlift;help;login' {
            break
        }
        'airlift;help;logout' {
            break
        }
        'airlift;help;completions' {
            break
        }
        'airlift;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
