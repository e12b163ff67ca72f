//! go-containerregistry's registry (`crane registry serve`, from the forky chroot) on
//! loopback: the registry many CI set-ups use, which answers a chunk `PATCH` with `204`. It
//! keeps everything in memory and logs one line per request to its log.

use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::{Forky, free_port};

/// A running `crane registry serve`, killed on drop.
pub struct CraneRegistry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl CraneRegistry {
    /// Starts it on a random loopback port.
    pub fn start() -> CraneRegistry {
        let forky = Forky::get();
        let dir = tempfile::Builder::new()
            .prefix("airlift-crane-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("crane.log")).unwrap();
        let child = forky
            .program("crane")
            .args(["registry", "serve", "--address"])
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot run crane in the forky chroot");
        let mut crane = CraneRegistry { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = crane.child.try_wait() {
                panic!("crane registry serve exited with {status}: {}", crane.log());
            }
            assert!(
                Instant::now() < deadline,
                "crane registry serve did not listen: {}",
                crane.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        crane
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What it logged so far (one line per request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("crane.log")).unwrap_or_default()
    }
}

impl Drop for CraneRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
