//! Credential helpers whose short-lived tokens the registry rejects: a `docker-credential-*`
//! script on `PATH` in front of nginx's Basic auth.

use std::process::Output;

use super::{Images, htpasswd};
use crate::support::generator;
use crate::support::nginx::Nginx;
use crate::support::{TestRegistry, describe, free_port};
use crate::tls::{Env, PASSWORD, USER, all_output, assert_copied, assert_ok};

/// A credential helper (`docker-credential-NAME` on `PATH`) for a registry behind nginx's
/// Basic auth. Its answers are numbered in `calls`; `good_from` is the first answer with
/// the right password (earlier ones are an expired token).
struct Helper {
    dir: tempfile::TempDir,
}

impl Helper {
    fn new(good_from: u32) -> Helper {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("calls");
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread -r server\n\
             n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n\
             if [ $n -ge {good_from} ]; then pw='{PASSWORD}'; else pw=expired-$n; fi\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"%s\"}}' \"$server\" \"$pw\"\n",
            c = count.display()
        );
        let path = dir.path().join("docker-credential-airlifttest");
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Helper { dir }
    }

    fn calls(&self) -> u32 {
        std::fs::read_to_string(self.dir.path().join("calls"))
            .map(|s| s.trim().parse().unwrap())
            .unwrap_or(0)
    }

    /// Routes `registry` to the helper in `env`, and runs `airlift ARGS` with it on `PATH`.
    fn run(&self, env: &Env, registry: &str, args: &[&str]) -> Output {
        std::fs::write(
            env.docker_config(),
            format!(r#"{{"credHelpers":{{"{registry}":"airlifttest"}}}}"#),
        )
        .unwrap();
        let path = format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = env.airlift(args);
        cmd.env("PATH", path);
        crate::support::run_with_timeout(&mut cmd, crate::tls::RUN_TIMEOUT)
    }
}

/// `docker-credential-ecr-login` and `-gcloud` hand out tokens that live 1–12 h: when the
/// registry rejects one, the helper is asked again (bounded), and a helper that keeps giving
/// rejected credentials is named in the hint instead of `airlift login`.
#[test]
fn credential_helpers_are_asked_again_when_rejected() {
    let source = TestRegistry::start();
    let images = Images::push_specs(
        &source,
        &source.addr(),
        &generator::small_set()
            .into_iter()
            .take(2)
            .collect::<Vec<_>>(),
    );
    let registry = TestRegistry::start();
    let front = free_port();
    let pw = tempfile::tempdir().unwrap();
    let servers = format!(
        "server {{ listen 127.0.0.1:{front}; access_log {{dir}}/front.log airlift;
           auth_basic \"registry\"; auth_basic_user_file {};
           location / {{ proxy_pass {}; proxy_set_header Host $http_host; }} }}",
        htpasswd(pw.path()).display(),
        registry.url(),
    );
    let _nginx = Nginx::start(&servers, &[front]);
    let to = format!("127.0.0.1:{front}");
    let list = images.list.to_str().unwrap();
    let sync = [
        "mirror",
        "sync",
        "--list",
        list,
        "--to",
        &to,
        "--progress",
        "none",
    ];

    // The first answer has expired; the second works.
    let helper = Helper::new(2);
    let out = helper.run(&Env::new(), &to, &sync);
    assert_ok(&out);
    assert_copied(&registry, &images.images);
    assert_eq!(helper.calls(), 2, "{}", describe(&out));

    // A helper that never gives a working password: bounded, and named in the hint.
    let helper = Helper::new(u32::MAX);
    let out = helper.run(&Env::new(), &to, &sync);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let shown = all_output(&out);
    assert!(
        shown.contains("from docker-credential-airlifttest were rejected")
            && !shown.contains("airlift login"),
        "{}",
        describe(&out)
    );
    assert!(helper.calls() <= 33, "{} helper calls", helper.calls());
}
