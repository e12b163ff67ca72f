//! A real `docker-registry` behind htpasswd Basic auth, started here rather than in `support`
//! because only these tests need it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// User and password accepted by [`BasicRegistry`].
pub const USER: &str = "alice";
pub const PASSWORD: &str = "s3cret-pw";
/// bcrypt (cost 4) of [`PASSWORD`], made once with `crypt(3)` so no tool is needed at test time.
const HASH: &str = "$2b$04$coJo09mMLZeumeG7/FI76e1GrwPpx99DgMji1FDQH/yEHiKmC14FW";

/// A running registry requiring Basic auth; killed on drop.
pub struct BasicRegistry {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl BasicRegistry {
    pub fn start() -> BasicRegistry {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let htpasswd = dir.path().join("htpasswd");
        std::fs::write(&htpasswd, format!("{USER}:{HASH}\n")).unwrap();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\nauth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                dir.path().join("storage").display(),
                htpasswd.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `docker-registry` ({e}); install it with `apt-get install docker-registry`"));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = TcpStream::connect(&addr) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 12];
                if s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").is_ok()
                    && s.read_exact(&mut buf).is_ok()
                {
                    break;
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log =
                    std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
                panic!("docker-registry exited with {status}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        BasicRegistry {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for BasicRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
