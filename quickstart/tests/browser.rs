//! The WebSocket playground in a real browser: headless Chromium, driven
//! by playwright-core from `tests/browser/playground.mjs`, against a
//! running `quickstart serve`. Alice logs in on the page, chats in a room
//! with bob (a Node WebSocket client), pings, and uses EchoConsumer; the
//! page's history must show each answer.
//!
//! Needs Node (20 or later), npm (for `npm ci` of `tests/node/`, pinned by
//! its `package-lock.json`; installed once under `CARGO_TARGET_TMPDIR/node`
//! and again only when the lock file changes) and Chromium: `CHROMIUM`, or
//! `/usr/bin/chromium` (`apt-get install -y chromium`). A full-page
//! screenshot of the end state is saved to
//! `CARGO_TARGET_TMPDIR/playground.png`, also when the test fails.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{Served, chromium, node_modules, run_to_success};

/// How long the browser script may run; it stops itself after 120 s.
const SCRIPT_BOUND: Duration = Duration::from_secs(180);

#[test]
fn the_playground_works_in_headless_chromium() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let chromium = chromium();
    let modules = node_modules();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/playground.mjs");
    let screenshot = tmp.join("playground.png");
    let _ = std::fs::remove_file(&screenshot);
    println!("screenshot: {}", screenshot.display());

    let served = Served::start();
    let printed = run_to_success(
        Command::new("node")
            .arg(&script)
            .arg(format!("http://{}", served.addr))
            .arg(&screenshot)
            .env("NODE_MODULES_DIR", &modules)
            .env("CHROMIUM", &chromium)
            // Plain text in playwright's error messages.
            .env("FORCE_COLOR", "0"),
        SCRIPT_BOUND,
        Some(&served),
    );
    println!("{printed}");
    assert!(
        screenshot.is_file(),
        "the script saved no screenshot at {}",
        screenshot.display()
    );
}
