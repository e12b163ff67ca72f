//! A real `nginx` (Debian `nginx-light`) on loopback, as the proxies and CDNs registries sit
//! behind: run in the foreground as one process with its prefix, temp paths and logs in a
//! temporary directory. Its access logs use the `airlift` format, which records the method,
//! URI, status and the `Authorization` header received, so a test can prove that no
//! credential reached a server.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::require_program;

/// A running nginx, killed on drop.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx with `servers` (the `server { ... }` blocks of the `http` section, each
    /// listening on one of `ports`); `{dir}` in them stands for its directory, where
    /// `access_log {dir}/NAME.log airlift;` puts a log [`Nginx::log`] reads.
    pub fn start(servers: &str, ports: &[u16]) -> Nginx {
        require_program("nginx", "nginx-light");
        let dir = tempfile::Builder::new()
            .prefix("airlift-nginx-")
            .tempdir()
            .unwrap();
        let d = dir.path().display().to_string();
        let temp = |name: &str| format!("{d}/tmp-{name}");
        let config = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{ worker_connections 512; }}\nhttp {{\n\
             client_body_temp_path {};\nproxy_temp_path {};\nfastcgi_temp_path {};\n\
             uwsgi_temp_path {};\nscgi_temp_path {};\n\
             log_format airlift '$request_method $request_uri $status auth=[$http_authorization]';\n\
             access_log off;\nclient_max_body_size 0;\nproxy_request_buffering off;\n\
             proxy_buffering off;\nproxy_http_version 1.1;\n{}\n}}\n",
            temp("body"),
            temp("proxy"),
            temp("fastcgi"),
            temp("uwsgi"),
            temp("scgi"),
            servers.replace("{dir}", &d),
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .spawn()
            .expect("cannot run nginx");
        let mut nginx = Nginx { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in ports {
            while TcpStream::connect(("127.0.0.1", *port)).is_err() {
                if let Ok(Some(status)) = nginx.child.try_wait() {
                    panic!("nginx exited with {status}: {}", nginx.errors());
                }
                assert!(
                    Instant::now() < deadline,
                    "nginx did not listen on {port}: {}",
                    nginx.errors()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        nginx
    }

    /// Its directory (for files the configuration names, e.g. an htpasswd file).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A file in its directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The lines of `access_log {dir}/NAME.log airlift` so far.
    pub fn log(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.path(&format!("{name}.log")))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// What nginx complained about.
    pub fn errors(&self) -> String {
        let mut s = std::fs::read_to_string(self.path("error.log")).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(self.path("stderr.log")).unwrap_or_default());
        s
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
