//! Docker Hub's pull limit, stated in `RateLimit-Limit` / `RateLimit-Remaining` on every
//! manifest answer (`HEAD`s included). distribution sends no such headers, so the fault proxy
//! adds them to its answers.

use std::collections::HashSet;

use super::Images;
use crate::support::generator;
use crate::support::proxy::{Action, FaultProxy, Faults, Matcher, Rule};
use crate::support::{TestRegistry, describe};
use crate::tls::{Env, all_output, assert_copied, assert_ok};

/// Docker Hub's headers on `method` answers for manifests, with `left` pulls remaining.
fn stated(method: &str, left: u32) -> Rule {
    Rule::new(
        Matcher::any().method(method).path_contains("/manifests/"),
        Action::Rewrite {
            status: None,
            headers: vec![
                ("ratelimit-limit".into(), Some("100;w=21600".into())),
                (
                    "ratelimit-remaining".into(),
                    Some(format!("{left};w=21600")),
                ),
            ],
        },
    )
}

/// Manifest `GET`s the proxy has passed on so far.
fn manifest_gets(proxy: &FaultProxy) -> u64 {
    proxy
        .stats()
        .gets_by_path
        .iter()
        .filter(|(path, _)| path.contains("/manifests/"))
        .map(|(_, n)| n)
        .sum()
}

/// The budget is learnt from the source's `HEAD`s and checked before the `GET`s are sent:
/// one warning naming the registry, its limit, what is left and what the plan needs; the run
/// goes on (warn and continue). A no-op re-sync needs no `GET`, so it does not warn even with
/// nothing left.
#[test]
fn the_pull_budget_is_checked_before_it_is_spent() {
    let source = TestRegistry::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = rt.block_on(FaultProxy::start(
        source.addr().parse().unwrap(),
        Faults::default(),
    ));
    let from = proxy.addr().to_string();
    let images = Images::push_specs(&source, &from, &generator::small_set());
    let tops: HashSet<&str> = images.images.iter().map(|g| g.digest.as_str()).collect();
    let children: HashSet<&str> = images
        .images
        .iter()
        .flat_map(|g| g.manifests.iter().map(String::as_str))
        .collect();
    assert!(children.len() > 1, "the set has no index");
    let target = TestRegistry::start();
    let to = format!("{}/mirror", target.addr());
    let env = Env::new();
    let sync = || env.sync(&images.list, &to, &["--progress", "plain"]);
    let warnings = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("warning: pull limit: "))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };

    // No pull left, and every manifest GET refused: the warning can only come from the HEADs.
    proxy.set_faults(
        Faults::default()
            .with_rule(stated("HEAD", 0))
            .with_rule(Rule::new(
                Matcher::any().method("GET").path_contains("/manifests/"),
                Action::too_many_requests(0),
            )),
    );
    // Without a progress display (`--progress none`, not `-q`) the warning is still said.
    let out = env.sync(&images.list, &to, &["--progress", "none"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let text = all_output(&out);
    let w = warnings(&text);
    assert_eq!(w.len(), 1, "one warning per registry: {text}");
    assert_eq!(
        w[0],
        format!(
            "warning: pull limit: {from} allows 100 pulls per 6 h and has 0 left, but this run \
             needs at least {} manifest GETs there: it goes on, and what is past the limit \
             fails with 429 (Too Many Requests); run it again once the limit resets to copy \
             the rest",
            tops.len()
        )
    );
    let stats = proxy.stats();
    assert_eq!(
        manifest_gets(&proxy),
        stats.faults_by_action.get("respond").copied().unwrap_or(0),
        "a manifest GET got through: {stats}"
    );

    // The HEADs leave enough for the top manifests; the GETs of those say one is left, which
    // does not cover the index children still to fetch. The run goes on and copies all.
    proxy.set_faults(
        Faults::default()
            .with_rule(stated("HEAD", tops.len() as u32))
            .with_rule(stated("GET", 1)),
    );
    let out = sync();
    assert_ok(&out);
    assert_copied(&target, &images.images);
    let w = warnings(&all_output(&out));
    assert_eq!(w.len(), 1, "{}", describe(&out));
    assert!(
        w[0].contains(&format!(
            "has 1 left, but this run needs {} more manifest GETs there",
            children.len()
        )),
        "{}",
        w[0]
    );

    // Nothing to copy: no GET needed, no warning, even with nothing left.
    proxy.set_faults(Faults::default().with_rule(stated("HEAD", 0)));
    let before = manifest_gets(&proxy);
    let out = sync();
    assert_ok(&out);
    assert!(warnings(&all_output(&out)).is_empty(), "{}", describe(&out));
    assert_eq!(manifest_gets(&proxy) - before, 0, "{}", proxy.stats());
}
