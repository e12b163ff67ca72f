//! `faultproxy`: the integration tests' fault-injection proxy as a standalone program, for the
//! benchmark scripts.
//!
//! ```text
//! cargo run --release --example faultproxy -- --listen 127.0.0.1:0 --upstream 127.0.0.1:5000 \
//!     [--latency-ms 20] [--conn-rate 10M] [--total-rate 80M] [--seed 1] \
//!     [--rule 'method=GET,path=/blobs/,status=429,retry-after=1,prob=0.05'] ... [--stats-every 5]
//! ```
//!
//! Prints `listening on 127.0.0.1:PORT` as its first line on stdout, then runs until killed;
//! on SIGINT/SIGTERM it prints its counters to stderr and exits 0. The rule syntax is documented
//! on `Rule::parse` in `tests/it/support/proxy.rs`; rates accept `10M` (10^7 B/s), `4Mi`, `512K`.

#[path = "../tests/it/support/proxy.rs"]
mod proxy;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

use proxy::{FaultProxy, Faults, Rule};

/// Fault-injecting HTTP/1.1 proxy in front of one registry.
#[derive(Parser)]
#[command(name = "faultproxy")]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The registry to forward to.
    #[arg(long)]
    upstream: SocketAddr,
    /// One-way latency added to each direction, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Bandwidth cap per connection and direction (e.g. 10M = 10 MB/s).
    #[arg(long, value_parser = proxy::parse_rate)]
    conn_rate: Option<u64>,
    /// Bandwidth cap shared by all connections, per direction (e.g. 80M).
    #[arg(long, value_parser = proxy::parse_rate)]
    total_rate: Option<u64>,
    /// A request fault, e.g. `method=GET,path=/blobs/,reset-after=100000,times=2`; repeatable,
    /// first match wins.
    #[arg(long = "rule", value_parser = Rule::parse)]
    rules: Vec<Rule>,
    /// Seed for probabilistic rules.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also print the counters to stderr every this many seconds.
    #[arg(long)]
    stats_every: Option<u64>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut faults = Faults::default()
        .with_latency(Duration::from_millis(args.latency_ms))
        .with_seed(args.seed);
    faults.conn_rate = args.conn_rate;
    faults.total_rate = args.total_rate;
    faults.rules = args.rules;

    let proxy = FaultProxy::bind(args.listen, args.upstream, faults).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", proxy.addr())?;
        out.flush()?;
    }

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let period = Duration::from_secs(args.stats_every.unwrap_or(0).max(1));
    let mut ticker = tokio::time::interval(period);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = ticker.tick(), if args.stats_every.is_some() => {
                eprintln!("faultproxy: {}", proxy.stats());
            }
        }
    }
    eprintln!("faultproxy: {}", proxy.stats());
    Ok(())
}
